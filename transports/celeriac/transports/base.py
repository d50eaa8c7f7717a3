"""The transport contract: the whole seam between the SDK and a broker.

A transport moves :class:`~celeriac.protocol.WireMessage` objects (serialized body, content type,
headers, properties) in and out of one broker, in that broker's envelope. It knows nothing of
tasks. Every transport passes the same contract suite (``tests/transports``) on a real broker.

Threading: a transport and the consumers it makes are used from one thread each; open one
transport per thread that publishes. Consumers hand out deliveries that the same thread acks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from types import TracebackType
from typing import Any, ClassVar

from celeriac.protocol import ProtocolError, WireMessage

from .capabilities import Capabilities

__all__ = [
    "REJECT_REASON_HEADER",
    "Consumer",
    "Delivery",
    "QueueSpec",
    "Subscription",
    "Transport",
    "dead_letter_queue",
]

#: Header that carries the reason a message was dead-lettered (SPEC.md §11).
REJECT_REASON_HEADER = "x-celeriac-reject-reason"


def dead_letter_queue(queue: str) -> str:
    """The queue a rejected message of ``queue`` goes to (SPEC.md §11.3)."""
    return f"{queue}.dlq"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue to declare. Defaults match what Celery declares, so both can share a queue."""

    name: str
    durable: bool = True
    #: Highest priority the queue orders by (AMQP ``x-max-priority``); None: no priorities.
    max_priority: int | None = None
    #: Queue that rejected messages go to; None means ``<name>.dlq``.
    dead_letter: str | None = None

    @property
    def dead_letter_queue(self) -> str:
        """The dead-letter queue's name."""
        return self.dead_letter or dead_letter_queue(self.name)


class _NoExtra(dict[str, Any]):
    """The ``extra`` of every delivery made without one: shared, so it refuses writes (a
    transport that keeps bookkeeping passes its own dict). Saves a dict per delivery."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this delivery was made without extra=: it has no bookkeeping to change")

    __setitem__ = __delitem__ = __ior__ = _refuse
    setdefault = update = pop = popitem = clear = _refuse


_NO_EXTRA = _NoExtra()


@dataclass(slots=True)
class Delivery:
    """One received message, held until it is acked, rejected or requeued.

    ``message`` is None when the envelope itself could not be read; ``error`` then says why and
    ``raw`` holds the bytes, so the receiver can dead-letter them with the reason.
    """

    queue: str
    message: WireMessage | None
    #: Transport-specific handle used to ack (a delivery tag, an offset, a receipt handle).
    tag: Any
    redelivered: bool = False
    raw: bytes | None = None
    error: ProtocolError | None = None
    #: Transport bookkeeping that must survive until the delivery is settled (without one, a
    #: shared empty dict that refuses writes).
    extra: dict[str, Any] = field(default_factory=repeat(_NO_EXTRA).__next__)
    #: How many times the broker handed this message out, this time included, where the broker
    #: counts (SQS ``ApproximateReceiveCount``, SQLite, memory); None where it does not.
    deliveries: int | None = None


class Consumer(ABC):
    """Receives from one or more queues, with at most ``prefetch`` deliveries unsettled."""

    def __init__(self, queues: Sequence[str], prefetch: int) -> None:
        if not queues:
            raise ValueError("a consumer needs at least one queue")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.queues = tuple(queues)
        self.prefetch = prefetch

    @abstractmethod
    def fetch(self, max_messages: int = 1, timeout: float | None = 1.0) -> list[Delivery]:
        """Up to ``max_messages`` deliveries, waiting at most ``timeout`` seconds for the first.

        Never returns more than the prefetch limit leaves room for; returns ``[]`` on timeout.
        """

    @abstractmethod
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """Settle deliveries as done (batched where the broker allows)."""

    @abstractmethod
    def reject(self, delivery: Delivery, reason: str) -> None:
        """Dead-letter a delivery, with ``reason`` in header ``x-celeriac-reject-reason``."""

    @abstractmethod
    def requeue(self, delivery: Delivery) -> None:
        """Give a delivery back to its queue, to be delivered again."""

    @abstractmethod
    def close(self) -> None:
        """Stop consuming; unsettled deliveries go back to their queues."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Subscription(ABC):
    """A subscriber to a broadcast exchange: every subscriber gets every message."""

    @abstractmethod
    def get(self, timeout: float | None = 1.0) -> WireMessage | None:
        """The next broadcast message, or None after ``timeout`` seconds."""

    @abstractmethod
    def close(self) -> None:
        """Stop receiving."""

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Transport(ABC):
    """One connection to one broker, named by URL (``redis://host:6379/0``)."""

    #: URL schemes this transport serves (``("redis", "rediss")``).
    schemes: ClassVar[tuple[str, ...]]
    #: What the broker does natively; the SDK routes around what it cannot.
    capabilities: ClassVar[Capabilities]
    #: Whether a message that comes back because its consumer died arrives counted: by the
    #: broker (``Delivery.deliveries``, a quorum queue's ``x-delivery-count``) or by the
    #: transport's own restore (Redis increments ``x-delivery-count``). False where it is only
    #: flagged ``redelivered`` (classic RabbitMQ queues, Kafka offsets): the worker counts it.
    counts_redeliveries: bool = True

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options

    @abstractmethod
    def connect(self) -> None:
        """Open the connection; raises BrokerUnavailable naming the host and what to check."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection and everything opened through it."""

    @abstractmethod
    def declare_queue(self, spec: QueueSpec) -> None:
        """Create a queue (and its dead-letter queue) if it does not exist yet."""

    @abstractmethod
    def publish(self, queue: str, message: WireMessage, *, delay: float | None = None) -> None:
        """Put a message on ``queue``; with ``delay``, not deliverable before that many seconds."""

    def flush(self) -> None:
        """Return once the broker acknowledged every message this thread published.

        Every publish waits for that by default. With the transport option ``publish_window=N``
        (Redis and RabbitMQ), a publish returns once the message is written, and waits only
        when N messages are still unacknowledged; ``flush`` (and ``close``) waits for the rest.
        Unacknowledged messages are written again if the connection breaks (at least once).
        """
        return  # the default: every publish already waited

    #: The ``publish_window`` the SDK's clients publish tasks with when none is given (RabbitMQ:
    #: confirms read in bulk, each ``delay()`` not waiting for a disk sync); 0: each waits.
    client_publish_window: ClassVar[int] = 0

    def set_publish_window(self, window: int) -> int:
        """Change ``publish_window`` (see :meth:`flush`; flush first when lowering it); returns
        the window it replaces. Transports without windows keep 0: each publish waits."""
        return 0

    def publish_many(self, queue: str, messages: Sequence[WireMessage]) -> None:
        """Put several messages on ``queue``, in one round trip where the broker allows."""
        for message in messages:
            self.publish(queue, message)

    @abstractmethod
    def consumer(self, queues: Sequence[str], prefetch: int = 100) -> Consumer:
        """A consumer of ``queues`` (earlier queues are not preferred over later ones)."""

    @abstractmethod
    def purge(self, queue: str) -> int:
        """Delete every ready message of ``queue``; return how many there were."""

    @abstractmethod
    def queue_length(self, queue: str) -> int:
        """How many messages of ``queue`` are ready (not counting delayed or unacked ones)."""

    def declare_reply_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Declare ``queue`` to receive what is published to direct exchange ``exchange`` with
        ``routing_key``: remote-control replies (SPEC.md §10.3). Replies always reach it by
        ``publish(queue)`` too; brokers with exchanges also route the exchange's messages to it,
        as Celery workers send them."""
        self.declare_queue(QueueSpec(queue, durable=False))

    @abstractmethod
    def broadcast(self, exchange: str, message: WireMessage) -> None:
        """Send a message to every current subscriber of ``exchange``."""

    @abstractmethod
    def subscribe(self, exchange: str) -> Subscription:
        """Receive every message broadcast to ``exchange`` from now on."""

    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
