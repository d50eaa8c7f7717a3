"""A wait for publisher confirms (``flush()``, a full window) ends when the confirms are in, not
when pika's time limit for one round of its I/O loop (50 ms) runs out."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator

import pytest

from celeriac.transports import QueueSpec
from celeriac.transports.amqp.transport import AmqpTransport
from tests.transports.amqp_shared import small_message, windowed

#: pika's time limit for one round of the wait (``_pump_until``); a wait that ignored the
#: confirms would last at least this long.
ROUND_S = 0.05


@pytest.fixture
def transport() -> Iterator[AmqpTransport]:
    with windowed(100) as t:
        yield t


def test_flush_returns_once_the_confirms_are_in(transport: AmqpTransport) -> None:
    queue = f"confirm-wait.{uuid.uuid4().hex[:8]}"
    transport.declare_queue(QueueSpec(queue))
    took = []
    try:
        for i in range(20):
            transport.publish(queue, small_message(i))
            start = time.monotonic()
            transport.flush()
            took.append(time.monotonic() - start)
            assert not transport.batch.pending
        assert transport.queue_length(queue) == 20
    finally:
        transport.purge(queue)
    # Each flush waited for a confirm that was not in yet (the message had only just been
    # written): with the time limit as the only way out, every one took ROUND_S or more.
    assert statistics.median(took) < ROUND_S * 0.8, took


def test_a_full_window_waits_only_for_the_confirms(transport: AmqpTransport) -> None:
    queue = f"confirm-wait.{uuid.uuid4().hex[:8]}"
    transport.declare_queue(QueueSpec(queue))
    transport.set_publish_window(10)
    rounds = 0
    original = transport.conn.process_data_events  # type: ignore[union-attr]

    def counted(time_limit: float | None = 0) -> None:
        nonlocal rounds
        rounds += 1
        original(time_limit=time_limit)

    transport.conn.process_data_events = counted  # type: ignore[union-attr]
    try:
        start = time.monotonic()
        for i in range(200):
            transport.publish(queue, small_message(i))
        transport.flush()
        took = time.monotonic() - start
        assert transport.queue_length(queue) == 200
    finally:
        transport.purge(queue)
    # The window filled about 200 / 5 times; a wait of a whole round each would take 2 s.
    assert rounds > 0
    assert took < rounds * ROUND_S * 0.8, (took, rounds)
