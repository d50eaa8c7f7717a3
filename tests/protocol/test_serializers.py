"""Serializers and compression: Kombu's tagged JSON, exact big integers, safe defaults."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from celeriac.protocol import (
    SAFE_CONTENT_TYPES,
    ContentDisallowed,
    LimitExceeded,
    Limits,
    ValidationError,
)
from celeriac.protocol.compression import compress, decompress
from celeriac.protocol.serializers import dumps, loads
from celeriac.protocol.tagged import to_tagged


def test_tagged_forms_are_kombus() -> None:
    u = uuid.UUID("12345678-1234-4678-9234-567812345678")
    tagged = to_tagged([datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC), date(2020, 1, 2), time(3, 4),
                        u, Decimal("1.10"), b"hi", b"\xff\x00"])  # fmt: skip
    assert tagged == [
        {"__type__": "datetime", "__value__": "2020-01-02T03:04:05+00:00"},
        {"__type__": "date", "__value__": "2020-01-02"},
        {"__type__": "time", "__value__": "03:04:00"},
        {"__type__": "uuid", "__value__": {"hex": u.hex, "version": 4}},
        {"__type__": "decimal", "__value__": "1.10"},
        {"__type__": "bytes", "__value__": "hi"},
        {"__type__": "base64", "__value__": "/wA="},
    ]


def test_uuid_without_version_is_read() -> None:
    data = b'[{"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}]'
    assert loads(data, "application/json") == [uuid.UUID("12345678123456781234567812345678")]


@pytest.mark.parametrize("n", [2**63, 2**64, 2**100, -(2**70), 10**40])
def test_big_integers_stay_exact(n: int) -> None:
    data, ct, ce = dumps([n, {"n": n}])
    assert loads(data, ct, ce) == [n, {"n": n}]


def test_nan_is_read_from_kombu_but_never_written() -> None:
    value = loads(b"[NaN, Infinity, -Infinity]", "application/json")
    assert value[0] != value[0] and value[1] == float("inf")
    with pytest.raises(ValidationError, match=r"body\[1\]"):
        dumps([1, float("nan")])


def test_sets_are_refused_with_the_path() -> None:
    with pytest.raises(ValidationError) as info:
        dumps([1, {"s": {1, 2}}])
    assert info.value.path == "body[1].s"


def test_pickle_is_refused_unless_accepted() -> None:
    data, ct, ce = dumps([1], "pickle")
    with pytest.raises(ContentDisallowed, match="can run code"):
        loads(data, ct, ce)
    assert loads(data, ct, ce, accept={"application/x-python-serialize"}) == [1]


def test_other_text_encodings_are_converted() -> None:
    assert loads('["é"]'.encode("utf-16"), "application/json", "utf-16") == ["é"]


@pytest.mark.parametrize("method", ["zlib", "bzip2", "lzma", "application/x-gzip"])
def test_compression_round_trips(method: str) -> None:
    data, content_type = compress(b"x" * 10_000, method)
    assert decompress(data, content_type, 10_000) == b"x" * 10_000


@pytest.mark.parametrize("method", ["zlib", "bzip2", "lzma"])
def test_decompression_is_bounded(method: str) -> None:
    bomb, content_type = compress(b"\0" * 5_000_000, method)
    with pytest.raises(LimitExceeded):
        decompress(bomb, content_type, 1_000_000)


def test_depth_limit_applies_to_every_serializer() -> None:
    deep: list[object] = []
    for _ in range(50):
        deep = [deep]
    for name in ("json", "msgpack", "yaml"):
        data, ct, ce = dumps(deep, name)
        with pytest.raises(LimitExceeded):
            loads(data, ct, ce, accept=SAFE_CONTENT_TYPES, limits=Limits(max_depth=20))
        assert loads(data, ct, ce, accept=SAFE_CONTENT_TYPES) == deep


def test_yaml_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, 20)]
    with pytest.raises(LimitExceeded, match="aliases"):
        loads("\n".join(lines).encode(), "application/x-yaml", accept=SAFE_CONTENT_TYPES)


# Bodies from 4 KiB on are decoded first and walked; what the walk finds sends them to the
# byte scans. Each case pads the body past that size with a long string.
_PAD = "x" * 8192


@pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 10**40])
def test_big_integers_in_large_bodies_stay_exact(n: int) -> None:
    data = dumps([_PAD, {"n": [n]}])[0]
    read = loads(data, "application/json")[1]["n"][0]
    assert type(read) is int and read == n


def test_floats_and_long_digit_strings_in_large_bodies() -> None:
    value = [_PAD, "1" * 40, 0.5, 2**63 - 1]
    data = dumps(value)[0]
    assert loads(data, "application/json") == value


def test_tagged_values_in_large_bodies_are_read() -> None:
    value = [_PAD, {"when": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC), "d": Decimal("1.10")}]
    data = dumps(value)[0]
    assert loads(data, "application/json") == value


def test_depth_limit_applies_to_large_bodies() -> None:
    nested: object = "leaf"
    for _ in range(30):
        nested = [nested]
    data = dumps([_PAD, nested])[0]
    with pytest.raises(LimitExceeded):
        loads(data, "application/json", limits=Limits(max_depth=20))
    assert loads(data, "application/json", limits=Limits(max_depth=40)) == [_PAD, nested]


def test_large_bodies_of_many_items_are_read_past_the_walk_budget() -> None:
    # More items than the walk may visit: the byte scans decide, and still find the tag.
    value = [list(range(5000)), {"u": uuid.UUID(int=7)}, _PAD]
    data = dumps(value)[0]
    assert loads(data, "application/json") == value


def test_item_limit_is_counted_before_decoding() -> None:
    data = dumps([[0] * 50, "s"])[0]
    with pytest.raises(LimitExceeded, match="values"):
        loads(data, "application/json", limits=Limits(max_items=20))
    # Commas inside strings are not values.
    text = dumps(["," * 100])[0]
    assert loads(text, "application/json", limits=Limits(max_items=20)) == ["," * 100]
