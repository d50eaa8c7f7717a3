"""Held deliveries and the heartbeat thread that keeps them invisible to other consumers."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["Hold", "Holds"]

log = logging.getLogger("celeriac.transports.sqs")


@dataclass(frozen=True, slots=True)
class Hold:
    """One received, unsettled message."""

    queue_url: str
    receipt: str


class Holds:
    """The receipts a consumer holds, renewed every third of the visibility timeout.

    The thread runs only while something is held; when the consumer's process dies nothing
    renews its holds and SQS makes the messages visible again after the visibility timeout.
    """

    def __init__(self, client: Any, visibility_timeout: int) -> None:
        self.client = client
        self.visibility_timeout = visibility_timeout
        self._held: dict[str, Hold] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._held)

    def add(self, hold: Hold) -> None:
        with self._lock:
            self._held[hold.receipt] = hold
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="celeriac-sqs-visibility", daemon=True
                )
                self._thread.start()

    def pop(self, receipt: str) -> Hold | None:
        with self._lock:
            return self._held.pop(receipt, None)

    def pop_all(self) -> list[Hold]:
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
            return held

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _run(self) -> None:
        every = max(0.2, self.visibility_timeout / 3)
        while not self._stop.wait(every):
            with self._lock:
                held = list(self._held.values())
            if not held:
                continue
            try:
                change_visibility(self.client, held, self.visibility_timeout)
            except (BotoCoreError, ClientError) as exc:
                # The next round tries again; if the server is down, so are the messages.
                log.warning("SQS: could not extend %d held deliveries: %s", len(held), exc)


def change_visibility(client: Any, holds: list[Hold], seconds: int) -> None:
    """ChangeMessageVisibilityBatch per queue, 10 at a time; receipts gone stale are skipped
    (settled meanwhile, or the server restarted)."""
    by_queue: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_queue[hold.queue_url].append(hold)
    for url, group in by_queue.items():
        for start in range(0, len(group), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h.receipt, "VisibilityTimeout": seconds}
                for i, h in enumerate(group[start : start + 10])
            ]
            try:
                client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            except ClientError as exc:
                log.debug("SQS: visibility change on %s refused: %s", url, exc)
