"""Collects each fault scenario's row and prints the table at the end of the run."""

from __future__ import annotations

from typing import Any

from .scenarios import Row

ROWS: list[Row] = []

_COLUMNS = (
    "transport",
    "scenario",
    "accepted",
    "ran",
    "lost",
    "duplicated",
    "faults",
    "recover_s",
    "note",
)


def table(rows: list[Row]) -> str:
    cells = [
        [f"{getattr(r, c):.1f}" if c == "recover_s" else str(getattr(r, c)) for c in _COLUMNS]
        for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROWS:
        terminalreporter.section("fault scenarios: every accepted task must run (lost = 0)")
        terminalreporter.write_line(table(ROWS))
