"""A client that writes the same ``delivery_tag`` on every message loses nothing (issue 17,
item 5), on every transport.

The envelope's ``delivery_tag`` is the client's to write; each transport settles by a handle
its broker assigns (a row id, a node path, a receipt handle, an offset, an AMQP tag, or, on
Redis, a tag of its own when the client's repeats). Each test puts messages that all carry
one tag straight where the transport stores them, as a careless client would, then settles
them every way and checks each is settled exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celeriac.protocol import WireMessage
from celeriac.protocol.envelopes import json_envelope
from celeriac.transports import (
    REJECT_REASON_HEADER,
    Consumer,
    Delivery,
    Transport,
    dead_letter_queue,
)
from celeriac.transports.memory import MemoryTransport

from .conftest import SHARED, MakeTransport, inject_raw, new_queue, url_for
from .test_contract import REPO, _read_line, drain, number, wire

TAG = "same-tag-every-time"


def put_same_tag(name: str, transport: Transport, url: str, queue: str, count: int) -> None:
    """``count`` messages numbered 0.. on ``queue``, every envelope carrying :data:`TAG`."""
    for n in range(count):
        message = wire(n)
        if name == "amqp":
            # AMQP has no such envelope field: the tag is the broker's, per channel. A client
            # can still write one among the properties; it must not reach anything.
            tagged = WireMessage(
                message.body,
                message.content_type,
                message.content_encoding,
                message.headers,
                {**message.properties, "delivery_tag": TAG},
            )
            transport.publish(queue, tagged)
            continue
        raw = json_envelope.pack_wire(message, routing_key=queue, delivery_tag=TAG)
        if name == "memory":
            assert isinstance(transport, MemoryTransport)
            broker = transport.broker
            with broker.lock:  # as stored, tag and all: publish() would write a fresh one
                broker.put(queue, broker.message(raw, 0, time.monotonic()))
        else:
            inject_raw(name, url, queue, raw)


def fetch_all(consumer: Consumer, count: int, timeout: float = 15.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.fetch(count - len(got), timeout=0.5)
    return got


def test_each_message_of_a_repeated_tag_is_settled_once(
    name: str, tmp_path: Path, transport: Transport
) -> None:
    queue = new_queue(transport)
    url = url_for(name, tmp_path) if name == "sqlite" else transport.url
    put_same_tag(name, transport, url, queue, 5)
    with transport.consumer([queue], prefetch=10) as consumer:
        got = fetch_all(consumer, 5)
        assert sorted(number(d) for d in got) == [0, 1, 2, 3, 4]
        assert len({d.tag for d in got}) == 5, [d.tag for d in got]
        rejected, requeued, acked = got[0], got[1], got[2:]
        # Settled in an order where a map keyed on the client's tag would settle the wrong one.
        consumer.requeue(requeued)
        consumer.reject(rejected, "a reason")
        consumer.ack(acked)
        (again,) = fetch_all(consumer, 1)
        assert number(again) == number(requeued) and again.redelivered
        consumer.ack([again])
        assert consumer.fetch(5, timeout=1.0) == []  # none comes twice
    dead = drain(transport, dead_letter_queue(queue), 1)
    assert [number(d) for d in dead] == [number(rejected)]
    assert dead[0].message is not None
    assert dead[0].message.headers[REJECT_REASON_HEADER] == "a reason"
    assert transport.queue_length(queue) == 0


@pytest.mark.parametrize("name", SHARED)
def test_a_repeated_tag_loses_nothing_when_its_consumer_is_sigkilled(
    name: str, tmp_path: Path, make_transport: MakeTransport
) -> None:
    transport = make_transport()
    queue = new_queue(transport)
    url = url_for(name, tmp_path) if name == "sqlite" else transport.url
    put_same_tag(name, transport, url, queue, 5)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("consumer_proc.py")), transport.url, queue,
         "5"],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        line = _read_line(proc, timeout=30)
        assert line == "HOLDING 5", line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    got = drain(transport, queue, 5, timeout=30)
    assert sorted(number(d) for d in got) == [0, 1, 2, 3, 4]
    with transport.consumer([queue], prefetch=5) as consumer:
        assert consumer.fetch(5, timeout=1.0) == []  # and none comes twice
