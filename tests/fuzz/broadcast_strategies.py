"""Hypothesis strategies for what arrives by broadcast: remote-control (pidbox) requests for a
worker, and events for the dashboard. Valid ones mutated field by field, wrong types, numbers
at and past every range, and bodies that are not what their content type says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from celeriac.protocol import WireMessage
from tests.fuzz.strategies import EDGE_FLOATS, EDGE_NUMBERS, EDGE_STRINGS, limits, values

#: Every command a worker answers, but ``shutdown``, which would end the run, and a few
#: Celery names it does not know.
METHODS = ["ping", "stats", "active", "reserved", "scheduled", "registered", "active_queues",
           "revoked", "query_task", "revoke", "terminate", "rate_limit", "time_limit",
           "add_consumer", "cancel_consumer", "pool_grow", "pool_shrink", "enable_events",
           "disable_events", "heartbeat", "conf", "report", "clock", "memsample", "memdump",
           "dump_tasks", "objgraph", "autoscale", "pool_restart", "election",
           "revoke_by_stamped_headers", "dump_conf", "hello", "__init__", "_reply",
           "handlers"]  # fmt: skip
ARGUMENT_KEYS = ["task_name", "rate_limit", "soft", "hard", "task_id", "terminate", "signal",
                 "queue", "n", "max", "min", "ids", "taskinfoitems", "samples", "with_defaults",
                 "headers", "exchange", "exchange_type", "routing_key", "options",
                 "celeriac_probe", "self"]  # fmt: skip
#: Task names a command may change: never the probe the harness uses to see the worker work.
TASK_NAMES = ["fz.ok", "fz.unknown", "", "x" * 300]
NUMBERS = st.one_of(
    st.sampled_from(EDGE_NUMBERS), st.sampled_from(EDGE_FLOATS), st.integers(-3, 6), st.floats()
)
_argument = st.one_of(
    st.sampled_from(TASK_NAMES), NUMBERS, st.sampled_from(EDGE_STRINGS), limits, values
)


def mostly(valid: st.SearchStrategy[Any], *junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` about four times in five, else a wrong value (``junk``, or any value)."""
    wrong = st.one_of(*(junk or (values,)))
    return st.sampled_from([True] * 4 + [False]).flatmap(lambda ok: valid if ok else wrong)


arguments = mostly(st.dictionaries(st.sampled_from(ARGUMENT_KEYS), _argument, max_size=4))


@dataclass(frozen=True)
class Command:
    """A control message to broadcast, and whether the worker must answer it in our queue."""

    wire: WireMessage
    body: Any


@st.composite
def control_commands(draw: Any, hostname: str, reply_key: str) -> Command:
    """A request for ``hostname`` (mostly) whose reply, when it asks for one, comes to the
    queue of routing key ``reply_key`` (mostly)."""
    body: dict[str, Any] = {
        "method": draw(mostly(st.sampled_from(METHODS))),
        "arguments": draw(arguments),
        "destination": draw(mostly(st.sampled_from([[hostname]] * 4 + [None]))),
    }
    if draw(st.sampled_from([False, False, False, True])):
        body["pattern"] = draw(mostly(st.sampled_from(["*", hostname, "fuzz-*", "["])))
        body["matcher"] = draw(mostly(st.sampled_from(["glob", "pcre", None])))
    if draw(st.sampled_from([True, True, True, False])):
        body["ticket"] = draw(mostly(st.uuids().map(str)))
        body["reply_to"] = draw(
            mostly(
                st.just({"exchange": "reply.celery.pidbox", "routing_key": reply_key}),
                st.fixed_dictionaries({"exchange": values, "routing_key": values}),
            )
        )
    extra = draw(st.dictionaries(st.text(max_size=8), values, max_size=2))
    whole = {**extra, **body}
    encoded = draw(
        st.sampled_from(["json"] * 8 + ["bytes", "typed"]).flatmap(lambda how: _encoded(whole, how))
    )
    return Command(encoded, whole)


def _encoded(body: Any, how: str) -> st.SearchStrategy[WireMessage]:
    if how == "bytes":
        return st.binary(max_size=64).map(
            lambda data: WireMessage(data, "application/json", "utf-8", {}, {})
        )
    try:
        data = json.dumps(body).encode()
    except (ValueError, TypeError):
        data = b"{}"
    if how == "typed":  # the right body under a content type or encoding that says otherwise
        return st.tuples(
            st.sampled_from(["application/x-python-serialize", "application/x-yaml", "text/x",
                             "application/x-msgpack", ""]),
            st.sampled_from(["utf-8", "binary", "bogus"]),
        ).map(lambda pair: WireMessage(data, pair[0], pair[1], {}, {}))  # fmt: skip
    return st.just(WireMessage(data, "application/json", "utf-8", {"clock": 0}, {}))


#: Event types the dashboard knows, and some it does not.
EVENT_TYPES = ["task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
               "task-retried", "task-revoked", "task-rejected", "worker-online",
               "worker-heartbeat", "worker-offline", "task-custom", "worker-", "task-",
               ""]  # fmt: skip
EVENT_KEYS = ["uuid", "hostname", "timestamp", "name", "args", "kwargs", "eta", "expires",
              "root_id", "parent_id", "retries", "queue", "routing_key", "result", "runtime",
              "exception", "traceback", "expired", "freq", "loadavg", "processed", "active",
              "pid", "sw_ident", "sw_ver", "clock", "utcoffset", "local_received",
              # the numbers the state keeps, drawn more often
              "retries", "runtime", "timestamp", "freq", "loadavg", "processed", "active",
              "pid"]  # fmt: skip
#: Integers JSON carries and 64-bit encoders (orjson) or floats do not.
BIG_INTEGERS = [2**63, 2**64, -(2**63) - 1, 10**30, 10**400, -(10**400)]
_event_value = st.one_of(
    NUMBERS,
    st.sampled_from(BIG_INTEGERS),
    st.integers(),
    st.sampled_from(EDGE_STRINGS),
    st.text(max_size=20),
    st.text(min_size=5_000, max_size=20_000),
    st.lists(NUMBERS, max_size=5),
    values,
)


@st.composite
def events(draw: Any) -> dict[str, Any]:
    """One event as a dict: a known type mostly, a handful of fields of any type."""
    event: dict[str, Any] = {
        "type": draw(mostly(st.sampled_from(EVENT_TYPES))),
        "uuid": draw(mostly(st.sampled_from(["t-1", "t-2", "t-3"]) | st.uuids().map(str))),
        "hostname": draw(mostly(st.sampled_from(["w1@h", "w2@h"]) | st.text(max_size=300))),
    }
    event.update(draw(st.dictionaries(st.sampled_from(EVENT_KEYS), _event_value, max_size=6)))
    return event


@st.composite
def event_messages(draw: Any) -> WireMessage:
    """Events on the wire: one, a batch (as Celery's workers buffer them), or a body that is
    not an event at all."""
    shape = draw(st.sampled_from(["one", "one", "batch", "other", "bytes"]))
    if shape == "bytes":
        return WireMessage(draw(st.binary(max_size=64)), "application/json", "utf-8", {}, {})
    body: Any
    if shape == "one":
        body = draw(events())
    elif shape == "batch":
        body = draw(st.lists(events() | values, max_size=5))
    else:
        body = draw(values)
    try:
        data = json.dumps(body).encode()
    except (ValueError, TypeError):
        data = b"[]"
    return WireMessage(data, "application/json", "utf-8", {}, {})
