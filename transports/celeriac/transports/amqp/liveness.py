"""Counting a silent RabbitMQ connection dead within two heartbeats.

A frozen node (a paused VM, a SIGSTOPped process) keeps its TCP connections open and sends
nothing. pika checks for silence in windows of ``heartbeat + 5`` s and closes the connection
after one whole silent window, so it notices 7-14 s after the freeze with 2 s heartbeats, and
longer while the thread waits on another connection. RabbitMQ looks every ``heartbeat / 2`` s
whether it sent anything and sends a heartbeat frame if not, so a live node is never silent
much longer than ``heartbeat`` s: the watch below closes the connection after twice that, and
the caller's retry moves to another node.

The watch runs as a timer of the connection's own I/O loop, so it also fires while pika blocks
in a call on that connection (a publish waiting for its confirm). The loop reads the socket
before it runs timers, so bytes that arrived while the process was busy elsewhere count.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions

__all__ = ["SILENT_HEARTBEATS", "watch_silence"]

#: Heartbeat intervals without a byte from the broker after which the connection is dead.
SILENT_HEARTBEATS = 2.0


class _SilenceWatch:
    def __init__(self, conn: pika.BlockingConnection, limit: float) -> None:
        self.impl = conn._impl
        self.limit = limit
        self.every = max(limit / 8, 0.1)
        self.seen = self.impl.bytes_received
        self.heard_at = time.monotonic()
        self._schedule()

    def _schedule(self) -> None:
        self.impl._adapter_call_later(self.every, self._tick)

    def _tick(self) -> None:
        if not self.impl.is_open:
            return  # closed or closing: pika says why on its own
        now = time.monotonic()
        if self.impl.bytes_received != self.seen:
            self.seen = self.impl.bytes_received
            self.heard_at = now
        elif now - self.heard_at > self.limit:
            self.impl._terminate_stream(
                pika.exceptions.AMQPHeartbeatTimeout(
                    f"nothing from the broker for {now - self.heard_at:.1f} s (more than "
                    f"{SILENT_HEARTBEATS:g} heartbeat intervals): the node is frozen or cut off"
                )
            )
            return
        self._schedule()


def watch_silence(conn: pika.BlockingConnection) -> None:
    """Close ``conn`` once the broker has said nothing for ``SILENT_HEARTBEATS`` intervals of
    the heartbeat negotiated on it (nothing to watch with heartbeats off)."""
    heartbeat = conn._impl.params.heartbeat or 0
    if heartbeat > 0:
        _SilenceWatch(conn, SILENT_HEARTBEATS * heartbeat)
