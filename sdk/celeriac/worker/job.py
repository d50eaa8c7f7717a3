"""What travels through the worker: a :class:`Job` built once at dispatch, and the
:class:`Outcome` a pool reports for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from celeriac.protocol import TaskMessage
from celeriac.protocol.states import SUCCESS
from celeriac.transports import Delivery

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["Action", "Job", "Outcome"]

#: How the loop settles a message: ack it, give it back (counted), dead-letter it, or ack it
#: because the task sent its own retry.
Action = Literal["ack", "requeue", "dead-letter", "retry"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the loop does with the message after the call, and what the events say."""

    action: Action
    reason: str = ""
    state: str = SUCCESS
    #: The formatted traceback, for the task-failed and task-retried events.
    traceback: str = ""
    #: The task's return value, for the task-succeeded event.
    value: Any = None

    def __reduce__(self) -> tuple[type[Outcome], tuple[Any, ...]]:
        # Every prefork child pickles one per task to its parent: by its fields, about half
        # the time of the frozen slots dataclass's default (its getstate/setstate).
        return (Outcome, (self.action, self.reason, self.state, self.traceback, self.value))


@dataclass(frozen=True, slots=True)
class Job:
    """One task call, as every pool receives it: decoded, checked and with its limits read."""

    delivery: Delivery
    message: TaskMessage
    #: None for a task this worker does not know (the pool stores NotRegistered).
    task: Task[Any, Any] | None
    #: False: the message was acked before the task ran (its outcome settles nothing).
    acks_late: bool
    #: (soft, hard) seconds, checked where read; None: no limit.
    soft_limit: float | None
    hard_limit: float | None
    #: The worker's name, which the task sees as ``request.hostname``.
    hostname: str

    @property
    def id(self) -> str:
        """The task id."""
        return self.message.id

    @property
    def name(self) -> str:
        """The task name."""
        return self.message.task

    @property
    def queue(self) -> str:
        """The queue the message came from."""
        return self.delivery.queue

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` task."""
        return self.task is not None and self.task.is_async
