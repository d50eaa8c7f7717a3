"""Broadcast through one watched node per exchange: ``<base>/.celeriac/broadcast/<exchange>``.

A message is a sequential child ``msg-<sent ms>-<seq>``. A subscriber learns the counter's value
when it subscribes (from a marker node it creates and deletes) and reads, in sequence order, every
message created after that, each exactly once. Senders delete messages older than BROADCAST_TTL.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import zookeeper as envelope

from ..base import Subscription
from ..errors import TransportError
from .client import gather, guarded

if TYPE_CHECKING:
    from .transport import ZooKeeperTransport

__all__ = ["BROADCAST_TTL", "ZooKeeperSubscription", "sweep"]

#: Seconds a broadcast stays readable: a subscriber that does not read for longer misses it.
BROADCAST_TTL = 300.0


def sweep(client: KazooClient, folder: str, now_ms: int) -> int:
    """Delete the broadcasts of ``folder`` older than BROADCAST_TTL; return how many went."""
    horizon = now_ms - int(BROADCAST_TTL * 1000)
    names = client.retry(client.get_children, folder)
    old = [
        n for n in names if (sent := envelope.broadcast_time_ms(n)) is not None and sent < horizon
    ]
    results = gather([client.delete_async(f"{folder}/{name}") for name in old])
    return sum(1 for r in results if not isinstance(r, Exception))


class ZooKeeperSubscription(Subscription):
    """Reads the messages sent to one exchange after it subscribed, woken by a child watch."""

    def __init__(self, transport: ZooKeeperTransport, exchange: str) -> None:
        self.client = client = transport.client_or_raise()
        self.where = transport.where
        self.folder = transport.layout.broadcast(exchange)
        client.retry(client.ensure_path, self.folder)
        # The parent's counter orders every child: messages made after the marker come after it.
        marker = client.retry(
            client.create, f"{self.folder}/sub-", b"", ephemeral=True, sequence=True
        )
        client.retry(client.delete, marker)
        self.after: int = envelope.sequence_of(marker) or 0
        self.pending: list[tuple[int, str]] = []
        wake = self._wake = threading.Event()
        self._watch: Callable[[Any], None] = lambda _event: wake.set()
        client.add_listener(self._watch)
        self._finalizer = weakref.finalize(self, client.remove_listener, self._watch)

    @guarded
    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        if not self._finalizer.alive:
            raise TransportError(f"{self.where}: subscription used after close()")
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            while self.pending:
                sequence, name = self.pending.pop(0)
                self.after = sequence
                try:
                    data, _ = self.client.retry(self.client.get, f"{self.folder}/{name}")
                except NoNodeError:
                    continue  # swept before we read it
                try:
                    wire, _ = envelope.unpack_wire(data)
                except ProtocolError:
                    continue  # an unreadable broadcast is skipped, as on the other transports
                return wire
            self._wake.clear()
            names = self.client.retry(self.client.get_children, self.folder, watch=self._watch)
            self.pending = sorted(
                (seq, name)
                for name in names
                if envelope.broadcast_time_ms(name) is not None
                and (seq := envelope.sequence_of(name)) is not None
                and seq > self.after
            )
            if self.pending:
                continue
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._wake.wait(left)

    def close(self) -> None:
        self._finalizer()
