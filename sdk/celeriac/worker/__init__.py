"""The worker: consumes queues, runs tasks in a pool, stores results, acks."""

from .consumer import Worker

__all__ = ["Worker"]
