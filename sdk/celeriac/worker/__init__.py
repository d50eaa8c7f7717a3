"""The worker: consumes queues, runs tasks in a pool, stores results, acks (README.md here)."""

from .core import Worker, run_worker, stop_worker
from .job import Job, Outcome
from .policy import Step
from .pool import Pool

__all__ = ["Job", "Outcome", "Pool", "Step", "Worker", "run_worker", "stop_worker"]
