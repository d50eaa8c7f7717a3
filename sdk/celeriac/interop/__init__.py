"""The conformance suite for foreign Celery-protocol clients and workers (CONFORMANCE.md)."""

from .capabilities import Capabilities, load_capabilities, parse_supports
from .cases import CLIENT_CASES, TASK_PARAMS, WORKER_CASES
from .checks import CHECKS, DEVIATIONS, SEVERITIES, Outcome
from .report import Report
from .verify import client_capabilities, verify_client, verify_worker

__all__ = [
    "CHECKS",
    "CLIENT_CASES",
    "DEVIATIONS",
    "SEVERITIES",
    "TASK_PARAMS",
    "WORKER_CASES",
    "Capabilities",
    "Outcome",
    "Report",
    "client_capabilities",
    "load_capabilities",
    "parse_supports",
    "verify_client",
    "verify_worker",
]
