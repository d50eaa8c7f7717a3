"""The faster header-table encoder (``celeriac.transports.amqp.pika_floats``) writes the bytes
pika's own writes, for Celery's header tables and for every plain value; floats as doubles."""

from __future__ import annotations

import datetime
import decimal
import random
import struct
from typing import Any

import pika.data
import pika.exceptions
import pytest

from celeriac.protocol import encode_task, new_task_message
from celeriac.protocol.envelopes import amqp as amqp_envelope
from celeriac.transports.amqp import pika_floats
from tests.transports.amqp_shared import pristine_pika_tables

PRISTINE = pristine_pika_tables()


def _ours(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    size = pika_floats._encode_table(pieces, table)
    data = b"".join(pieces)
    assert size == len(data)
    return data


def _pika(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    size = PRISTINE.encode_table(pieces, table)
    data = b"".join(pieces)
    assert size == len(data)
    return data


def test_the_patch_is_what_pika_uses() -> None:
    assert pika.data.encode_table is pika_floats._encode_table
    assert pika.data.encode_value is pika_floats._encode_value


def _plain(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "big", "none", "bool", "unicode"]
    if depth < 3:
        kinds += ["list", "dict"]
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice("abc xyz-_.:") for _ in range(rng.randrange(0, 40)))
    if kind == "unicode":
        return "é✓𝄞" * rng.randrange(0, 5)
    if kind == "int":
        return rng.randrange(-(2**31), 2**31)
    if kind == "big":
        return rng.choice([2**63 - 1, -(2**63), 2**40])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [_plain(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {f"k{i}": _plain(rng, depth + 1) for i in range(rng.randrange(0, 5))}


def test_random_plain_tables_encode_as_pika_encodes_them() -> None:
    rng = random.Random(23)
    for _ in range(2000):
        table = {f"key{i}": _plain(rng) for i in range(rng.randrange(0, 8))}
        assert _ours(table) == _pika(table), table


def test_celery_header_tables_encode_as_pika_encodes_them() -> None:
    message = new_task_message(
        "proj.add",
        (1, "two", None),
        {"k": [True, 2**40]},
        retries=3,
        eta=datetime.datetime(2026, 12, 5, 4, 0, tzinfo=datetime.UTC),
        expires=datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC),
    )
    headers = amqp_envelope.pack_wire(encode_task(message)).properties["headers"]
    floatless = {k: v for k, v in headers.items() if not isinstance(v, float)}
    assert _ours(floatless) == _pika(floatless)


def test_what_pika_writes_itself_still_goes_to_pika() -> None:
    when = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)
    table = {"d": decimal.Decimal("1.25"), "t": when, "b": b"\x00raw", "s": "x"}
    assert _ours(table) == _pika(table)


def test_floats_are_doubles_and_bad_values_are_refused_as_pika_refuses_them() -> None:
    assert _ours({"f": 20.5}) == b"\x00\x00\x00\x0b\x01fd" + struct.pack(">d", 20.5)
    with pytest.raises(struct.error):
        _ours({"n": 2**64})
    with pytest.raises(pika.exceptions.ShortStringTooLong):
        _ours({"k" * 256: 1})
    with pytest.raises(pika.exceptions.UnsupportedAMQPFieldException):
        _ours({"o": object()})
