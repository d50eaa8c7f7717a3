"""Queue URLs by name: created on first use with Kombu's attributes and a redrive policy."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from celeriac.protocol import ProtocolError
from celeriac.protocol.envelopes import sqs as envelope

from ..base import QueueSpec, dead_letter_queue
from .errors import error_code
from .options import Settings

__all__ = ["QueueDirectory", "SqsQueue"]

log = logging.getLogger("celeriac.transports.sqs")


@dataclass(frozen=True, slots=True)
class SqsQueue:
    """One queue as SQS knows it."""

    name: str  # ours (``jobs.fifo``)
    sqs_name: str  # after Kombu's mangling (``jobs.fifo``, ``my-queue``)
    url: str
    fifo: bool
    #: The queue's ``MaximumMessageSize``: body plus attributes.
    max_bytes: int


class QueueDirectory:
    """Finds (and creates when missing) the SQS queues behind our queue names.

    Names resolve once and stay cached; :meth:`forget` drops them when a queue turned out gone
    (the server restarted without its data), so the next use creates it again.
    """

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._cache: dict[str, SqsQueue] = {}
        self._specs: dict[str, QueueSpec] = {}
        self._lock = threading.Lock()

    def sqs_name(self, name: str) -> str:
        return envelope.queue_name(name, self.settings.queue_name_prefix)

    def declare(self, spec: QueueSpec) -> SqsQueue:
        """Create the queue and its dead-letter queue (if missing) and remember the spec."""
        with self._lock:
            self._specs[spec.name] = spec
            self._cache.pop(spec.name, None)
        return self.get(spec.name)

    def get(self, name: str) -> SqsQueue:
        """The queue named ``name``, created with the default spec when it does not exist."""
        found = self._cache.get(name)
        if found is not None:
            return found
        spec = self._specs.get(name) or QueueSpec(name)
        queue = self._create(spec)
        with self._lock:
            self._cache[name] = queue
        return queue

    def dead_letter_of(self, name: str) -> str:
        """The dead-letter queue of ``name`` as declared (``<name>.dlq`` by default)."""
        spec = self._specs.get(name)
        return spec.dead_letter_queue if spec is not None else dead_letter_queue(name)

    def forget(self) -> None:
        """Drop every cached URL: a server that lost one queue (an in-memory ElasticMQ that
        restarted) lost the others too, dead-letter queues included."""
        with self._lock:
            self._cache.clear()

    def _create(self, spec: QueueSpec) -> SqsQueue:
        predefined = self.settings.predefined_queues
        if predefined:
            # Made by whoever owns the account, redrive policy included: look, never create.
            url = predefined.get(spec.name)
            if url is None:
                raise ProtocolError(
                    "queue",
                    f"{spec.name!r} is not one of the predefined_queues "
                    f"({', '.join(sorted(predefined))}); add its URL there",
                )
            return self._describe(spec.name, url)
        sqs_name = self.sqs_name(spec.name)
        fifo = sqs_name.endswith(".fifo")
        attributes = {"VisibilityTimeout": str(self.settings.queue_visibility_timeout)}
        if fifo:
            attributes["FifoQueue"] = "true"
        dlq_name = spec.dead_letter_queue
        # A dead-letter queue has none of its own (SQS would refuse a chain back to itself).
        if not spec.name.endswith(".dlq") and self.settings.max_receive_count > 0:
            dlq = self.get(dlq_name)
            arn = self.client.get_queue_attributes(QueueUrl=dlq.url, AttributeNames=["QueueArn"])
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                    "maxReceiveCount": str(self.settings.max_receive_count),
                }
            )
        try:
            url = self.client.create_queue(QueueName=sqs_name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if error_code(exc) not in ("QueueNameExists", "QueueAlreadyExists"):
                raise
            # Someone (Celery, say) made it with other attributes: use it as it is.
            log.debug("SQS queue %s exists with other attributes; using it", sqs_name)
            url = self.client.get_queue_url(QueueName=sqs_name)["QueueUrl"]
        return self._describe(spec.name, url)

    def _describe(self, name: str, url: str) -> SqsQueue:
        attrs = self.client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["MaximumMessageSize", "FifoQueue"]
        ).get("Attributes", {})
        sqs_name = url.rstrip("/").rsplit("/", 1)[-1]
        return SqsQueue(
            name=name,
            sqs_name=sqs_name,
            url=url,
            fifo=attrs.get("FifoQueue") == "true" or sqs_name.endswith(".fifo"),
            max_bytes=int(attrs.get("MaximumMessageSize") or envelope.MAX_BODY_BYTES),
        )
