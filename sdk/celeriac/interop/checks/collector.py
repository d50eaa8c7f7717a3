"""The outcomes of the checks applied to one message or record, gathered as they run."""

from __future__ import annotations

import json
from typing import Any

from .catalog import CHECKS, FAIL, NA, PASS, WARN, Outcome


class _Collector:
    def __init__(self, case: str = "-") -> None:
        self.case = case
        self.outcomes: list[Outcome] = []

    def add(
        self, check: str, path: str, ok: bool | None, reason: str = "", tolerated: bool = False
    ) -> bool:
        """Record one outcome; a failure receivers tolerate (SPEC §11.4) is a warning."""
        status = NA if ok is None else PASS if ok else WARN if tolerated else FAIL
        if status == WARN:
            reason = f"{reason} (tolerated, §11.4)"
        self.outcomes.append(
            Outcome(check, CHECKS[check].section, self.case, path, status, "" if ok else reason)
        )
        return bool(ok)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 and True from 1."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
