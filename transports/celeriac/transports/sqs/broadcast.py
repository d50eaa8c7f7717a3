"""Broadcast without a fanout primitive: one leased queue per subscriber (SPEC.md §6.4).

A subscriber creates ``<prefix>celeriac-bcast-<exchange stem>-<hash>-<id>`` tagged with
``celeriac-lease-until`` (Unix seconds), renewed every third of the lease while it lives.
A broadcaster lists the queues with that name prefix and sends to each whose lease holds;
one whose lease has run out (its subscriber died) is deleted by whoever finds it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from celeriac.protocol import ProtocolError, WireMessage
from celeriac.protocol.envelopes import sqs as envelope

from ..base import Subscription
from ..errors import TransportError
from .errors import CONNECTION_ERRORS, is_missing_queue

if TYPE_CHECKING:
    from .transport import SQSTransport

__all__ = ["LEASE_TAG", "Broadcaster", "SQSSubscription"]

log = logging.getLogger("celeriac.transports.sqs")

#: Queue tag holding until when a subscriber queue is live (Unix seconds).
LEASE_TAG = "celeriac-lease-until"
#: Queue tag naming the exchange, for people reading the queue list.
EXCHANGE_TAG = "celeriac-exchange"


class Broadcaster:
    """Lists an exchange's live subscriber queues and sends to each."""

    def __init__(self, transport: SQSTransport) -> None:
        self.transport = transport
        self.client = transport.client
        self.settings = transport.settings

    def _guard(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except CONNECTION_ERRORS as exc:
            raise self.transport.unavailable(what, exc) from exc
        except (BotoCoreError, ClientError) as exc:
            raise self.transport.unavailable(what, exc) from exc

    def live_queues(self, exchange: str) -> list[str]:
        """URLs of the subscriber queues of ``exchange`` whose lease holds; the lapsed ones
        are deleted on the way."""
        prefix = envelope.broadcast_queue_prefix(exchange, self.settings.queue_name_prefix)
        urls: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueueNamePrefix": prefix, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.list_queues(**kwargs)
            urls += page.get("QueueUrls") or []
            token = page.get("NextToken")
            if not token:
                break
        now = time.time()
        live: list[str] = []
        for url in urls:
            try:
                tags = self.client.list_queue_tags(QueueUrl=url).get("Tags") or {}
            except ClientError as exc:
                if is_missing_queue(exc):
                    continue  # its subscriber closed just now
                raise
            try:
                until = float(tags.get(LEASE_TAG, "0"))
            except ValueError:
                until = 0.0
            if until >= now:
                live.append(url)
            else:
                log.info("SQS: deleting lapsed broadcast subscriber queue %s", url)
                self._delete(url)
        return live

    def _delete(self, url: str) -> None:
        try:
            self.client.delete_queue(QueueUrl=url)
        except ClientError as exc:
            if not is_missing_queue(exc):
                raise

    def broadcast(self, exchange: str, message: WireMessage) -> None:
        try:
            body = envelope.pack_wire(message, exchange, exchange=exchange, routing_key="")
            envelope.check_size(body)
        except ProtocolError as exc:
            raise TransportError(f"cannot broadcast to {exchange!r}: {exc}") from None

        def run() -> None:
            for url in self.live_queues(exchange):
                try:
                    self.client.send_message(QueueUrl=url, MessageBody=body)
                except ClientError as exc:
                    if not is_missing_queue(exc):
                        raise

        self._guard(f"broadcast to {exchange!r}", run)

    def subscribe(self, exchange: str) -> SQSSubscription:
        name = envelope.broadcast_queue_name(
            exchange, uuid.uuid4().hex[:12], self.settings.queue_name_prefix
        )
        url = self._guard(f"subscribe to {exchange!r}", lambda: self.create(name, exchange))
        return SQSSubscription(self, exchange, name, url)

    def create(self, name: str, exchange: str) -> str:
        """Create a subscriber queue with a fresh lease; return its URL."""
        until = time.time() + self.settings.subscriber_lease
        url: str = self.client.create_queue(
            QueueName=name,
            Attributes={"VisibilityTimeout": "30", "MessageRetentionPeriod": "3600"},
            tags={LEASE_TAG: repr(until), EXCHANGE_TAG: exchange[:256]},
        )["QueueUrl"]
        return url


class SQSSubscription(Subscription):
    """One subscriber's queue, its lease renewed by a thread until :meth:`close` deletes it."""

    def __init__(self, broadcaster: Broadcaster, exchange: str, name: str, url: str) -> None:
        self.broadcaster = broadcaster
        self.client = broadcaster.client
        self.exchange = exchange
        self.name = name
        self.url = url
        self._lease = broadcaster.settings.subscriber_lease
        self._buffer: list[WireMessage] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="celeriac-sqs-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                until = time.time() + self._lease
                self.client.tag_queue(QueueUrl=self.url, Tags={LEASE_TAG: repr(until)})
            except (BotoCoreError, ClientError) as exc:
                log.warning("SQS: could not renew the lease of %s: %s", self.url, exc)

    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        polled = False  # a zero timeout still polls once
        while not self._buffer:
            left = 20.0 if deadline is None else deadline - time.monotonic()
            if self._stop.is_set() or (left <= 0 and polled):
                return None
            polled = True
            try:
                got = (
                    self.client.receive_message(
                        QueueUrl=self.url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=max(0, min(20, int(left))),
                    ).get("Messages")
                    or []
                )
            except CONNECTION_ERRORS as exc:
                log.warning("SQS: broadcast receive failed: %s", exc)
                self._stop.wait(min(1.0, max(0.0, left)))
                continue
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise self.broadcaster.transport.unavailable("receive broadcasts", exc) from exc
                # Deleted as lapsed (renewals failed for a while) or lost by the server.
                log.warning("SQS: subscriber queue %s is gone; creating it again", self.name)
                self.url = self.broadcaster.create(self.name, self.exchange)
                continue
            if not got:
                if 0 < left < 1:
                    self._stop.wait(min(0.05, left))
                continue
            # Broadcasts are not acked one by one: taken off the queue as soon as received.
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ]
            self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            for m in got:
                try:
                    wire, _ = envelope.unpack_wire(m.get("Body", ""))
                except ProtocolError as exc:
                    log.warning("SQS: dropped an unreadable broadcast on %s: %s", self.url, exc)
                    continue
                self._buffer.append(wire)
        return self._buffer.pop(0)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.broadcaster._delete(self.url)
        except (BotoCoreError, ClientError) as exc:
            log.warning("SQS: subscriber queue %s left for its lease to lapse: %s", self.url, exc)
