"""The per-message policy a user can extend: a :class:`Step` sees each job before the pool
runs it and each outcome before the loop settles it (as Dramatiq's middleware does).

The worker's own checks run first, in this order, each a small method of the loop that may
settle the message itself (``Worker.admission``): decode (envelope, signature, content type,
limits), delivery count (poison), counting a redelivery the broker only flags (the message
moves to the back of its queue, counted), the task-received event, time limits, ETA (parked at the
broker until due), rate limit. Revocation and expiry are checked by the pool just before the
call (``execute.prepare``), so a revoke that arrives while a job waits still counts. A message
none of the checks after decode can act on skips them (``Worker._plain_job``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .job import Job, Outcome

if TYPE_CHECKING:
    from celeriac.protocol import TaskMessage
    from celeriac.transports import Consumer, Delivery, Transport

    from ..task import Task

__all__ = ["Admission", "Step"]


class Step:
    """A step of the per-message policy; override either hook. Both run in the loop's thread,
    so they must be quick; what one raises is logged and the message goes on as if the step
    had not been there.

    ``before`` may return an Outcome to settle the job without running it (``dead-letter`` with
    a reason, ``ack``, ``requeue``, counted); ``after`` may return a different outcome.
    """

    def before(self, job: Job) -> Outcome | None:
        """Called once the job is admitted, before a pool runs it; None: run it."""
        return None

    def after(self, job: Job, outcome: Outcome) -> Outcome:
        """Called with what the pool reported, before the message is settled."""
        return outcome


@dataclass(slots=True)
class Admission:
    """One delivery on its way through the worker's own checks, filled in as they pass."""

    transport: Transport
    consumer: Consumer
    delivery: Delivery
    message: TaskMessage | None = None
    task: Task[Any, Any] | None = None
    soft_limit: float | None = None
    hard_limit: float | None = None
    #: Seconds its rate limit makes it wait before it starts.
    wait: float = 0.0
