"""Checks of the result record a worker wrote for one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from celeriac.protocol import ProtocolError
from celeriac.protocol.results import CELERY_EXCEPTIONS
from celeriac.protocol.validate import parse_time

from .catalog import _ISOFORMAT, READY_STATES, RESULT_FIELDS, Outcome
from .collector import _Collector, _kind, _same


def check_result(
    case: Mapping[str, Any],
    task_id: str,
    record: bytes | None,
    states: Sequence[str],
    *,
    sent_at: datetime,
) -> list[Outcome]:
    """The checks of the record a worker wrote for one call (``None``: none appeared)."""
    c = _Collector(str(case["name"]))
    if not c.add("result.present", f"celery-task-meta-{task_id}", record is not None, "no record"):
        return c.outcomes
    assert record is not None
    try:
        meta = orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        c.add("result.decode", "record", False, f"not JSON: {exc}")
        return c.outcomes
    if not c.add("result.decode", "record", isinstance(meta, dict), f"a {_kind(meta)}"):
        return c.outcomes
    for key in RESULT_FIELDS:
        c.add("result.field", f"record.{key}", key in meta, "missing")
    want_status = case.get("status", "SUCCESS")
    status = meta.get("status")
    c.add(
        "result.status",
        "record.status",
        status == want_status,
        f"{status!r}, expected {want_status}",
    )
    c.add(
        "result.task_id",
        "record.task_id",
        meta.get("task_id") == task_id,
        f"{meta.get('task_id')!r}",
    )
    result = meta.get("result")
    if want_status == "SUCCESS":
        c.add(
            "result.value",
            "record.result",
            _same(result, case["result"]),
            f"{result!r:.120} != {case['result']!r:.120}",
        )
        tb = meta.get("traceback")
        c.add("result.traceback", "record.traceback", tb is None, f"is {tb!r:.80}, not null")
    else:
        problem = ""
        if not isinstance(result, dict):
            problem = f"result is {_kind(result)}, not an exception object"
        else:
            missing = [k for k in ("exc_type", "exc_message", "exc_module") if k not in result]
            if missing:
                problem = f"exception lacks {missing}"
            elif want_status == "REVOKED" and result.get("exc_type") != "TaskRevokedError":
                problem = f"exc_type {result.get('exc_type')!r}, expected TaskRevokedError"
            elif (
                result.get("exc_type") in CELERY_EXCEPTIONS
                and result.get("exc_module") != "celery.exceptions"
            ):
                # Celery's exception_to_python resolves exc_module in sys.modules: any other
                # module gives a Celery client a look-alike class, and isinstance fails.
                problem = (
                    f"exc_module {result.get('exc_module')!r} for {result.get('exc_type')}, "
                    "expected 'celery.exceptions'"
                )
        c.add("result.exception", "record.result", not problem, problem)
        if want_status == "FAILURE":
            tb = meta.get("traceback")
            c.add("result.traceback", "record.traceback", isinstance(tb, str), f"is {_kind(tb)}")
    done = meta.get("date_done")
    if status in READY_STATES:
        ok = isinstance(done, str) and bool(_ISOFORMAT.match(done))
        c.add(
            "result.date_done",
            "record.date_done",
            ok,
            f"{done!r} is not isoformat() with an offset",
        )
    seen = [s for s in states if s]
    bad = ""
    for i, s in enumerate(seen[:-1]):
        if s in READY_STATES:
            bad = f"{s} was followed by {seen[i + 1]}"
            break
    c.add("result.transitions", "states", not bad, f"{' -> '.join(seen)}: {bad}")
    delay = case.get("options", {}).get("countdown")
    if delay and isinstance(done, str):
        try:
            finished = parse_time(done, "record.date_done")
        except ProtocolError:
            finished = None
        if finished is not None:
            if finished.tzinfo is None:
                finished = finished.replace(tzinfo=UTC)
            early = (finished - sent_at).total_seconds()
            c.add(
                "result.eta_respected",
                "record.date_done",
                early >= float(delay) - 0.5,
                f"finished {early:.2f} s after sending, before its {delay} s countdown",
            )
    return c.outcomes
