"""Hypothesis strategies for hostile task messages: valid ones, mutated field by field
(envelope, header values and types, nesting, signatures, content type and encoding, numbers
at and past every range, bodies that expand)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from celeriac.protocol import WireMessage, encode_task, new_task_message

#: Numbers at and past the edges the worker checks (time limits, delays, counts, priorities).
EDGE_NUMBERS = [0, -1, 1, 5, 255, 256, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, 10_000_000,
                10_000_001, 0.0, -0.0, 1e-300, 0.05, 1e7, 1e300, 1e308]  # fmt: skip
EDGE_FLOATS = [float("nan"), float("inf"), float("-inf")]
EDGE_STRINGS = ["", "x" * 300, "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                "2020-01-01T00:00:00", "2020-13-45T99:99:99", "not a date", "10/s", "1/h",
                "0.0000001/h", "1e309", "\x00", "é", "%h", "fz.ok"]  # fmt: skip
HEADER_KEYS = ["eta", "expires", "timelimit", "retries", "group", "group_index", "root_id",
               "parent_id", "argsrepr", "kwargsrepr", "ignore_result", "stamped_headers",
               "stamps", "shadow", "lang", "origin", "x-delivery-count", "redelivered",
               "x-celeriac-signature", "compression", "replaced_task_nesting", "task",
               "id"]  # fmt: skip
OPTION_KEYS = ["countdown", "eta", "expires", "time_limit", "soft_time_limit", "priority",
               "queue", "task_id", "headers", "link", "link_error", "serializer",
               "compression", "shadow"]  # fmt: skip
CONTENT_TYPES = ["application/json", "application/json", "application/x-python-serialize",
                 "application/x-msgpack", "application/x-yaml", "text/plain", "",
                 "x/y"]  # fmt: skip
ENCODINGS = ["utf-8", "utf-8", "binary", "latin-1", "bogus", ""]


def near(seconds: float) -> str:
    """An ISO date-time ``seconds`` from now."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_STRINGS),
    st.sampled_from([-5.0, 0.5, 3600.0]).map(near),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)
limits = st.one_of(st.sampled_from(EDGE_NUMBERS), st.none(), values)
signature = st.fixed_dictionaries(
    {
        "task": st.sampled_from(["fz.ok", "fz.ok", "fz.unknown"]) | values,
        "args": st.lists(values, max_size=3) | values,
        "kwargs": st.just({}) | values,
        "options": st.dictionaries(st.sampled_from(OPTION_KEYS), limits, max_size=3) | values,
        "subtask_type": st.none(),
        "immutable": st.booleans(),
    }
)
embed = st.fixed_dictionaries(
    {},
    optional={
        "callbacks": st.lists(signature, max_size=2) | values,
        "errbacks": st.lists(signature, max_size=2),
        "chain": st.lists(signature, max_size=2),
        "chord": signature,
    },
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.tuples(
        st.lists(values, max_size=4),
        st.dictionaries(st.text(max_size=5), values, max_size=3),
        embed,
    ).map(lambda t: json.dumps(list(t)).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    st.integers(min_value=1, max_value=2_000).map(nested),
    # Past 4 KiB the JSON decoder walks the decoded body instead of scanning its bytes: the
    # same hostile values (tagged objects, floats, big numbers) and deep nesting behind a long
    # string.
    st.tuples(st.lists(values, max_size=4), st.integers(min_value=4_096, max_value=9_000)).map(
        lambda t: json.dumps([["x" * t[1], *t[0]], {}, {}]).encode()
    ),
    st.tuples(
        st.integers(min_value=4_096, max_value=9_000),
        st.integers(min_value=1, max_value=3_000),
    ).map(lambda t: b'[["' + b"x" * t[0] + b'",' + nested(t[1]) + b"],{},{}]"),
    # Bodies that expand: many tiny items, a few bytes each.
    st.integers(min_value=1_000, max_value=1_300_000).map(
        lambda n: b"[[" + b",".join([b"{}"] * n) + b"],{},{}]"
    ),
)


@dataclass(frozen=True)
class Hostile:
    """One message to send, and the id the worker will know it by (None: it has no usable id)."""

    wire: WireMessage
    task_id: str | None
    #: True when a valid ETA in the future may park it at the broker (it then runs later).
    may_park: bool


@st.composite
def hostile_messages(draw: Any) -> Hostile:
    task_id = str(uuid.uuid4())
    base = encode_task(new_task_message("fz.ok", (1,), task_id=task_id))
    headers: dict[str, Any] = dict(base.headers)
    changes = draw(st.dictionaries(st.sampled_from(HEADER_KEYS), values, max_size=4))
    if draw(st.booleans()):
        changes["timelimit"] = [draw(limits), draw(limits)]
    if "id" in changes and isinstance(changes["id"], str):
        changes["id"] = task_id + changes["id"]  # a usable id stays unique to this example
    headers.update(changes)
    body = draw(st.just(base.body) | bodies)
    content_type = draw(st.just(base.content_type) | st.sampled_from(CONTENT_TYPES))
    encoding = draw(st.just(base.content_encoding) | st.sampled_from(ENCODINGS))
    properties: dict[str, Any] = dict(base.properties)
    if draw(st.booleans()):
        properties.update(draw(st.dictionaries(st.sampled_from(
            ["priority", "delivery_mode", "correlation_id", "reply_to", "body_encoding"]),
            values, max_size=2)))  # fmt: skip
    final_id = headers.get("id")
    return Hostile(
        WireMessage(body, content_type, encoding, headers, properties),
        final_id if isinstance(final_id, str) and final_id else None,
        _in_future(headers.get("eta")),
    )


def _in_future(eta: Any) -> bool:
    if not isinstance(eta, str):
        return False
    try:
        when = datetime.fromisoformat(eta)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return when > datetime.now(UTC)
    except (ValueError, OverflowError):
        return False
