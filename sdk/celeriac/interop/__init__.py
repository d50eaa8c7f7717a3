"""The conformance suite for foreign Celery-protocol clients and workers (CONFORMANCE.md)."""

from .cases import CLIENT_CASES, TASK_PARAMS, WORKER_CASES
from .checks import CHECKS, DEVIATIONS, Outcome
from .verify import CLIENT_PROFILES, Report, verify_client, verify_worker

__all__ = [
    "CHECKS",
    "CLIENT_CASES",
    "CLIENT_PROFILES",
    "DEVIATIONS",
    "TASK_PARAMS",
    "WORKER_CASES",
    "Outcome",
    "Report",
    "verify_client",
    "verify_worker",
]
