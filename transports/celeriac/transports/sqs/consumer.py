"""The SQS consumer: long polls, batch receive and delete, held visibility (SPEC.md §6.4)."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import json_envelope
from celeriac.protocol.envelopes import sqs as envelope

from ..base import Consumer, Delivery
from ..dead_letter import dead_letter_message
from . import attributes as attrs
from .errors import CONNECTION_ERRORS, is_missing_queue
from .holds import Hold, Holds, change_visibility
from .queues import SqsQueue

if TYPE_CHECKING:
    from .transport import SQSTransport

__all__ = ["SQSConsumer"]

log = logging.getLogger("celeriac.transports.sqs")

#: Pause between short polls when less than a second is left (long polls take whole seconds).
_POLL = 0.05
_MAX_BACKOFF = 5.0


class SQSConsumer(Consumer):
    """Receives in batches of up to 10; what it holds is kept invisible by :class:`Holds`."""

    def __init__(self, transport: SQSTransport, queues: Sequence[str], prefetch: int) -> None:
        super().__init__(queues, prefetch)
        self.transport = transport
        self.client = transport.client
        self.settings = transport.settings
        self.holds = Holds(self.client, self.settings.visibility_timeout)
        self._turn = 0
        self._backoff = 0.0
        self._closed = False
        self._wake = threading.Event()  # set on close, cutting a short-poll pause short
        for queue in self.queues:  # created now, as Kombu does, so a wrong name fails here
            transport.call(f"find queue {queue!r}", queue, lambda q: q)

    # -- receiving ------------------------------------------------------------------------------
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        room = min(max_messages, self.prefetch - len(self.holds))
        if room <= 0 or self._closed:
            return []
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                order = [*self.queues[self._turn :], *self.queues[: self._turn]]
                self._turn = (self._turn + 1) % len(self.queues)
                got: list[Delivery] = []
                for queue in order:
                    if len(got) >= room:
                        break
                    got += self._receive(queue, room - len(got), wait=0)
                if got:
                    self._backoff = 0.0
                    return _in_send_order(got)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return []
                if left is None or left >= 1:
                    # Long poll one queue (in turn, so none is preferred); with several queues
                    # for a second at most, so the others are polled again soon.
                    cap = self.settings.wait_time_seconds if len(self.queues) == 1 else 1
                    wait = min(cap, int(left) if left is not None else cap)
                    got = self._receive(order[0], room, wait=wait)
                    if got:
                        self._backoff = 0.0
                        return _in_send_order(got)
                elif self._wake.wait(min(_POLL, left)):
                    return []
        except CONNECTION_ERRORS as exc:
            self._outage(exc, deadline)
            return []
        except (BotoCoreError, ClientError) as exc:
            raise self.transport.unavailable(f"receive from {', '.join(self.queues)}", exc) from exc

    def _outage(self, exc: Exception, deadline: float | None) -> None:
        """Wait (with backoff, within the caller's timeout) before the next try."""
        self._backoff = min(_MAX_BACKOFF, max(0.2, self._backoff * 2))
        log.warning(
            "SQS at %s unreachable (%s); retrying in %.1fs",
            self.settings.address,
            exc,
            self._backoff,
        )
        left = self._backoff if deadline is None else deadline - time.monotonic()
        self._wake.wait(max(0.0, min(self._backoff, left)))

    def _receive(self, queue: str, count: int, wait: int) -> list[Delivery]:
        def run(q: SqsQueue) -> list[dict[str, Any]]:
            client = self.client if wait else self.transport.quick_client
            answer = client.receive_message(
                QueueUrl=q.url,
                MaxNumberOfMessages=min(count, 10),
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.settings.visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            return list(answer.get("Messages") or [])

        out: list[Delivery] = []
        while len(out) < count:
            q = self.transport.queues.get(queue)
            try:
                messages = run(q)
            except CONNECTION_ERRORS as exc:
                if not out:
                    raise
                # Hand out what was received: held by nobody, it would wait out its timeout.
                log.warning("SQS: receive from %s broke off (%s)", queue, exc)
                break
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise
                messages = self.transport.call(f"receive from {queue!r}", queue, run)
                q = self.transport.queues.get(queue)
            for m in messages:
                delivery = self._delivery(q, m)
                if delivery is not None:
                    out.append(delivery)
            if len(messages) < 10:
                break
            wait = 0  # a full batch: more may be ready at once
        return out

    def _delivery(self, q: SqsQueue, m: dict[str, Any]) -> Delivery | None:
        receipt = m["ReceiptHandle"]
        received = m.get("MessageAttributes") or {}
        if self.transport.send_on_if_early(q, m):
            return None
        system = m.get("Attributes") or {}
        body = m.get("Body", "")
        extra = {
            "url": q.url,
            "sent": int(system.get("SentTimestamp") or 0),
            "seq": attrs.sequence(received),
        }
        try:
            received_count = max(int(system.get("ApproximateReceiveCount") or 1), 1)
        except ValueError:
            received_count = 1
        redelivered = received_count > 1
        self.holds.add(Hold(q.url, receipt))
        try:
            raw = envelope.body_bytes(body)
        except ProtocolError as exc:
            raw = body.encode("utf-8")
            return Delivery(q.name, None, receipt, redelivered, raw, exc, extra)
        try:
            wire, marked = json_envelope.unpack_consumed(raw)
        except ProtocolError as exc:
            return Delivery(q.name, None, receipt, redelivered, raw, exc, extra)
        return Delivery(
            q.name, wire, receipt, redelivered or marked, raw, None, extra, received_count
        )

    # -- settling -------------------------------------------------------------------------------
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """DeleteMessageBatch per queue; a receipt gone stale (the server restarted, or it was
        settled already) is skipped: the message is then gone or delivered again."""
        by_url: dict[str, list[str]] = defaultdict(list)
        for d in deliveries:
            hold = self.holds.pop(d.tag)
            by_url[hold.queue_url if hold else d.extra["url"]].append(d.tag)
        for url, receipts in by_url.items():
            for start in range(0, len(receipts), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": r}
                    for i, r in enumerate(receipts[start : start + 10])
                ]
                self._settle(
                    "ack",
                    lambda e=entries, u=url: self.client.delete_message_batch(
                        QueueUrl=u, Entries=e
                    ),
                )

    def _settle(self, what: str, call: Any) -> None:
        try:
            result = call()
        except ClientError as exc:
            # A queue lost with its messages: nothing is left to settle.
            if not is_missing_queue(exc):
                raise self.transport.unavailable(what, exc) from exc
            log.warning("SQS: %s skipped, the queue is gone (%s)", what, exc)
            return
        except CONNECTION_ERRORS as exc:
            # Not settled: the message comes back after the visibility timeout (at least once).
            log.warning("SQS: %s not sent, %s unreachable (%s)", what, self.settings.address, exc)
            return
        except BotoCoreError as exc:
            raise self.transport.unavailable(what, exc) from exc
        failed = (result or {}).get("Failed") or []
        if failed:
            log.info("SQS: %s: %d receipts no longer valid (%s)", what, len(failed), failed[0])

    def reject(self, delivery: Delivery, reason: str) -> None:
        """Send to the dead-letter queue (``<queue>.dlq`` unless declared otherwise) with the
        reason (header and attribute), then delete."""
        dead = dead_letter_message(delivery, reason)
        reason_attr = {envelope.REJECT_REASON_ATTRIBUTE: attrs.text(reason[:1024] or "-")}
        target = self.transport.queues.dead_letter_of(delivery.queue)
        self.transport.send(target, dead, extra=reason_attr)
        self.ack([delivery])

    def requeue(self, delivery: Delivery) -> None:
        """Visible again at once (visibility timeout 0)."""
        hold = self.holds.pop(delivery.tag) or Hold(delivery.extra["url"], delivery.tag)
        self._settle(
            "requeue",
            lambda: self.client.change_message_visibility(
                QueueUrl=hold.queue_url, ReceiptHandle=hold.receipt, VisibilityTimeout=0
            ),
        )

    def close(self) -> None:
        """Stop renewing and make every unsettled delivery visible again."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self.holds.stop()
        held = self.holds.pop_all()
        if held:
            try:
                change_visibility(self.client, held, 0)
            except (BotoCoreError, ClientError) as exc:
                log.warning("SQS: %d deliveries come back after their timeout: %s", len(held), exc)
        self.transport.forget_consumer(self)


def _in_send_order(deliveries: list[Delivery]) -> list[Delivery]:
    # A standard queue keeps no order among messages sent in the same millisecond; the
    # publisher's sequence number restores it.
    return sorted(deliveries, key=lambda d: (d.extra["sent"], d.extra["seq"]))
