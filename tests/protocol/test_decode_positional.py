"""The decoder builds TaskHeaders, Properties and TaskMessage positionally (keyword arguments
cost more than the rest of a decode): every field must land where its name says."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.protocol.message import Properties, TaskHeaders, TaskMessage


def test_field_order_is_what_the_decoder_passes() -> None:
    # The order validate.parse_headers, parse_properties and wire.decode_task pass values in.
    assert [f.name for f in fields(TaskHeaders)] == [
        "task", "id", "lang", "shadow", "eta", "expires", "group", "group_index", "retries",
        "time_limit", "soft_time_limit", "root_id", "parent_id", "argsrepr", "kwargsrepr",
        "origin", "ignore_result", "replaced_task_nesting", "stamped_headers", "stamps", "extra",
    ]  # fmt: skip
    assert [f.name for f in fields(Properties)] == [
        "correlation_id", "reply_to", "priority", "delivery_mode", "extra",
    ]  # fmt: skip
    assert [f.name for f in fields(TaskMessage)] == [
        "headers", "args", "kwargs", "embed", "properties", "content_type", "compression",
        "protocol",
    ]  # fmt: skip


def test_every_field_lands_in_its_place() -> None:
    eta = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    expires = datetime(2030, 1, 3, 3, 4, 5, tzinfo=UTC)
    sent = new_task_message(
        "t.name",
        (1, 2),
        {"k": "v"},
        task_id="the-id",
        eta=eta,
        expires=expires,
        priority=7,
        retries=3,
        time_limit=30.0,
        soft_time_limit=20.0,
        shadow="shadowed",
        group="g-id",
        group_index=4,
        root_id="root",
        parent_id="parent",
        origin="host-1",
        ignore_result=True,
        reply_to="reply-queue",
        headers={"custom": 1},
        compression="zlib",
    )
    wire = encode_task(sent)
    headers = {
        **wire.headers,
        "stamped_headers": ["s"],
        "stamps": {"s": "x"},
        "replaced_task_nesting": 2,
    }
    properties = {**wire.properties, "app_id": "app"}
    got = decode_task(
        WireMessage(wire.body, wire.content_type, wire.content_encoding, headers, properties)
    )
    h = got.headers
    assert (h.task, h.id, h.lang, h.shadow) == ("t.name", "the-id", "py", "shadowed")
    assert (h.eta, h.expires, h.group, h.group_index) == (eta, expires, "g-id", 4)
    assert (h.retries, h.time_limit, h.soft_time_limit) == (3, 30.0, 20.0)
    assert (h.root_id, h.parent_id, h.origin) == ("root", "parent", "host-1")
    assert (h.argsrepr, h.kwargsrepr) == ("(1, 2)", "{'k': 'v'}")
    assert (h.ignore_result, h.replaced_task_nesting) == (True, 2)
    assert (h.stamped_headers, dict(h.stamps), dict(h.extra)) == (("s",), {"s": "x"}, {"custom": 1})
    p = got.properties
    assert (p.correlation_id, p.reply_to, p.priority, p.delivery_mode) == (
        "the-id",
        "reply-queue",
        7,
        2,
    )
    assert dict(p.extra) == {"app_id": "app"}
    assert (got.args, dict(got.kwargs), got.protocol) == ((1, 2), {"k": "v"}, 2)
    assert sent.compression is not None
    assert (got.content_type, got.compression) == ("application/json", sent.compression)
