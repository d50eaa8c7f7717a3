"""The windowed publish builds its frames itself (``celeriac.transports.amqp.frames``): the same
bytes pika's ``basic_publish`` writes, for Celery's messages and for every basic property; what
it does not build (unusual property types, a body over one frame) goes to pika; and RabbitMQ,
read back through pika, hands out exactly what was published."""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.data
import pika.frame
import pika.spec
import pytest

from celeriac.protocol import WireMessage, encode_task, new_task_message
from celeriac.transports import QueueSpec
from celeriac.transports.amqp import frames as frames_module
from celeriac.transports.amqp.connection import connect
from celeriac.transports.amqp.frames import publish_frames
from celeriac.transports.amqp.transport import AmqpTransport, properties
from tests.brokers import AMQP_URL
from tests.transports.amqp_shared import pristine_pika_tables, windowed

PRISTINE = pristine_pika_tables()
BODY_MAX = 131_072 - 8


def _pika_bytes(
    channel: int, exchange: str, key: str, mandatory: bool, wire: WireMessage, body_max: int
) -> bytes:
    """What pika's ``Connection._send_message`` marshals for this publish."""
    method = pika.spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory)
    out = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(wire.body), properties(wire)).marshal(),
    ]
    for start in range(0, len(wire.body), body_max):
        out.append(pika.frame.Body(channel, wire.body[start : start + body_max]).marshal())
    return b"".join(out)


def _celery_wire(**options: Any) -> WireMessage:
    message = new_task_message(
        "proj.add",
        (1, "two", None, "é✓"),
        {"k": [True, 2**40]},
        retries=3,
        eta=datetime.datetime(2026, 12, 5, 4, 0, tzinfo=datetime.UTC),
        **options,
    )
    return encode_task(message)


def _wire(body: bytes = b"{}", headers: Any = None, **props: Any) -> WireMessage:
    return WireMessage(
        body=body,
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers if headers is not None else {"task": "t", "id": "1"},
        properties=props,
    )


@pytest.fixture
def pristine_pika(monkeypatch: pytest.MonkeyPatch) -> None:
    """pika's properties encode their header table with pika's own, unpatched encoder."""
    monkeypatch.setattr(pika.spec, "data", PRISTINE)


def test_celery_messages_are_the_bytes_pika_writes(pristine_pika: None) -> None:
    for options in ({}, {"priority": 7}, {"reply_to": "r", "delivery_mode": 1}, {"time_limit": 30}):
        wire = _celery_wire(**options)
        headers = {k: v for k, v in wire.headers.items() if not isinstance(v, float)}
        wire = WireMessage(
            wire.body, wire.content_type, wire.content_encoding, headers, wire.properties
        )
        for channel, exchange, key, mandatory in ((1, "", "celery", True), (7, "ex", "k.é", False)):
            ours = publish_frames(channel, exchange, key, mandatory, wire, BODY_MAX)
            assert ours == _pika_bytes(channel, exchange, key, mandatory, wire, BODY_MAX), options


def test_floats_in_headers_are_written_as_the_patched_pika_writes_them() -> None:
    wire = _wire(headers={"timelimit": [30, 20.5], "x": 1.0})
    assert publish_frames(1, "", "q", True, wire, BODY_MAX) == _pika_bytes(
        1, "", "q", True, wire, BODY_MAX
    )


def test_every_basic_property_in_any_order_is_the_bytes_pika_writes(pristine_pika: None) -> None:
    values: dict[str, Any] = {
        "delivery_mode": 2,
        "priority": 255,
        "correlation_id": "c" * 255,
        "reply_to": "r",
        "expiration": "60000",
        "message_id": "m-✓",
        "timestamp": 2**64 - 1,
        "type": "t",
        "user_id": "guest",
        "app_id": "app",
        "cluster_id": "",
    }
    rng = random.Random(23)
    for _ in range(300):
        names = rng.sample(sorted(values), rng.randrange(0, len(values) + 1))
        props: dict[str, Any] = {name: values[name] for name in names}
        if rng.random() < 0.3:
            props[rng.choice(sorted(values))] = None  # unset: left out, as pika leaves it out
        if rng.random() < 0.3:
            props["correlationId"] = "foreign"  # no such AMQP property: left out (pack_wire)
        body = rng.choice([b"", b"x", bytes(range(256)) * 3])
        wire = _wire(body, **props)
        assert publish_frames(3, "", "q", True, wire, BODY_MAX) == _pika_bytes(
            3, "", "q", True, wire, BODY_MAX
        ), props


def test_an_empty_body_has_no_body_frame_and_a_full_one_fits() -> None:
    empty = publish_frames(1, "", "q", True, _wire(b""), BODY_MAX)
    assert empty is not None and empty == _pika_bytes(1, "", "q", True, _wire(b""), BODY_MAX)
    assert empty.count(b"\xce") >= 2 and empty[-1:] == b"\xce"
    full = _wire(b"y" * 100)
    assert publish_frames(1, "", "q", True, full, 100) == _pika_bytes(1, "", "q", True, full, 100)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (_wire(b"y" * 101), "a body over one frame"),
        (_wire(delivery_mode=pika.DeliveryMode.Persistent), "pika's enum"),
        (_wire(priority=True), "a bool"),
        (_wire(priority=256), "an octet out of range"),
        (_wire(timestamp=1.5), "a float timestamp"),
        (_wire(reply_to=b"bytes"), "bytes"),
        (_wire(message_id="m" * 256), "a string pika refuses"),
        (_wire(body=bytearray(b"{}")), "a bytearray body"),  # type: ignore[arg-type]
    ],
)
def test_what_is_not_plain_is_left_to_pika(wire: WireMessage, why: str) -> None:
    assert publish_frames(1, "", "q", True, wire, 100) is None, why


def test_a_routing_key_pika_refuses_is_left_to_pika() -> None:
    assert publish_frames(1, "", "k" * 256, True, _wire(), BODY_MAX) is None


def test_method_frames_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames_module, "_methods", {})
    monkeypatch.setattr(frames_module, "_METHODS_KEPT", 3)
    for i in range(10):
        assert publish_frames(1, "", f"q{i}", True, _wire(), BODY_MAX) == _pika_bytes(
            1, "", f"q{i}", True, _wire(), BODY_MAX
        )
    assert len(frames_module._methods) == 3


# -- on RabbitMQ -------------------------------------------------------------------------------


@pytest.fixture
def transport() -> Iterator[AmqpTransport]:
    with windowed(100) as t:
        yield t


def _received(queue: str, count: int) -> list[tuple[pika.spec.BasicProperties, bytes]]:
    conn = connect(AMQP_URL)  # a connection of its own, pika decoding what it reads
    try:
        ch = conn.channel()
        got: list[tuple[pika.spec.BasicProperties, bytes]] = []
        for _ in range(count):
            method, props, body = ch.basic_get(queue, auto_ack=True)
            assert method is not None, f"only {len(got)} of {count} messages in {queue}"
            got.append((props, body))
        return got
    finally:
        conn.close()


def test_rabbitmq_hands_out_what_the_built_frames_carry(
    transport: AmqpTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"frames.{uuid.uuid4().hex[:8]}"
    transport.declare_queue(QueueSpec(queue))
    through_pika: list[object] = []
    impl = transport.batch_ch._impl
    original = impl.basic_publish

    def counted(*args: Any, **kwargs: Any) -> None:
        through_pika.append(args)
        original(*args, **kwargs)

    monkeypatch.setattr(impl, "basic_publish", counted)
    sent = [
        _celery_wire(),
        _celery_wire(priority=3),
        _wire(
            b"",
            headers={"f": 20.5, "n": None, "l": [1, "x"]},
            message_id="m",
            timestamp=1_700_000_000,
        ),
        _wire(b"z" * 300_000, delivery_mode=2),  # over one frame: through pika
    ]
    try:
        for wire in sent:
            transport.publish(queue, wire)
        transport.flush()
        assert len(through_pika) == 1  # only the large one: the others were built here
        got = _received(queue, len(sent))
    finally:
        transport.purge(queue)
    for wire, (props, body) in zip(sent, got, strict=True):
        assert body == wire.body
        assert props.content_type == wire.content_type
        assert props.content_encoding == wire.content_encoding
        assert props.headers == dict(wire.headers)
        for name, value in wire.properties.items():
            assert getattr(props, name) == value, name
    assert not transport.batch.pending
