"""What ``celeriac interop verify`` found: every outcome, a roll-up by check, JSON and JUnit."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .checks import CHECKS, DEVIATION, FAIL, NA, PASS, SEVERITIES, WARN, Outcome, RawMessage

__all__ = ["STATUS_STYLE", "Report", "RollupRow", "severity_at_least"]

STATUS_STYLE = {PASS: "green", FAIL: "bold red", NA: "dim", DEVIATION: "yellow", WARN: "yellow"}


def severity_at_least(severity: str, threshold: str) -> bool:
    """True when ``severity`` is ``threshold`` or worse (data-loss is the worst)."""
    if threshold not in SEVERITIES:
        raise ValueError(f"--fail-on: {threshold!r} is not one of {', '.join(SEVERITIES)}")
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


@dataclass
class RollupRow:
    """One check that did not pass: how often, on how many messages, and one example."""

    check: str
    status: str  # fail, warn or deviation
    severity: str
    section: str
    title: str
    count: int
    messages: int
    example: Outcome

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "severity": self.severity,
            "section": self.section,
            "title": self.title,
            "count": self.count,
            "messages": self.messages,
            "example": self.example.as_dict(),
        }


@dataclass
class Report:
    role: str
    broker: str
    client: str | None
    outcomes: list[Outcome] = field(default_factory=list)
    captured: list[RawMessage] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not any(o.status == FAIL for o in self.outcomes)

    def fails_at(self, threshold: str) -> bool:
        """True when a failed check is of severity ``threshold`` or worse (``--fail-on``)."""
        return any(
            o.status == FAIL and severity_at_least(o.severity, threshold) for o in self.outcomes
        )

    def failed(self, check: str | None = None) -> list[Outcome]:
        return [
            o for o in self.outcomes if o.status == FAIL and (check is None or o.check == check)
        ]

    def by_case(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {}
        for o in self.outcomes:
            table.setdefault(o.case, Counter())[o.status] += 1
        return table

    def rollup(self) -> list[RollupRow]:
        """The checks that failed, warned or deviated, worst first, one example each."""
        groups: dict[tuple[str, str], list[Outcome]] = {}
        for o in self.outcomes:
            if o.status in (FAIL, WARN, DEVIATION):
                groups.setdefault((o.status, o.check), []).append(o)
        order = {FAIL: 0, DEVIATION: 1, WARN: 2}
        rows = []
        for (status, check), found in groups.items():
            known = CHECKS.get(check)
            rows.append(
                RollupRow(
                    check=check,
                    status=status,
                    severity=found[0].severity,
                    section=known.section if known else found[0].section,
                    title=known.title if known else "",
                    count=len(found),
                    messages=len({(o.case, o.message) for o in found}),
                    example=found[0],
                )
            )
        rows.sort(key=lambda r: (order[r.status], SEVERITIES.index(r.severity), -r.count))
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "broker": self.broker,
            "client": self.client,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "counts": dict(self.counts()),
            "rollup": [r.as_dict() for r in self.rollup()],
            "outcomes": [o.as_dict() for o in self.outcomes],
        }

    def to_junit(self) -> bytes:
        counts = self.counts()
        suite = ET.Element(
            "testsuite",
            name=f"celeriac-interop-{self.role}" + (f"-{self.client}" if self.client else ""),
            tests=str(len(self.outcomes)),
            failures=str(counts[FAIL]),
            skipped=str(counts[NA]),
            time=f"{self.seconds:.3f}",
        )
        for o in self.outcomes:
            tc = ET.SubElement(
                suite, "testcase", classname=f"{self.role}.{o.case}", name=f"{o.check} {o.path}"
            )
            if o.status == FAIL:
                ET.SubElement(
                    tc, "failure", message=f"{o.section} {o.path}: {o.reason}", type=o.severity
                )
            elif o.status == NA:
                ET.SubElement(tc, "skipped", message=o.reason or "not applicable")
            elif o.status in (DEVIATION, WARN):
                out = ET.SubElement(tc, "system-out")
                what = f"known deviation {o.deviation}" if o.status == DEVIATION else "warning"
                out.text = f"{what} ({o.section} {o.path}: {o.reason})"
        data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
        return data

    def write(self, json_path: str | None = None, junit_path: str | None = None) -> None:
        if json_path:
            Path(json_path).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False))
        if junit_path:
            Path(junit_path).write_bytes(self.to_junit())
