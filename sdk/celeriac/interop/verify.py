"""The conformance runner behind ``celeriac interop verify`` (both roles) and its reports."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from celeriac.protocol import DEFAULT_LIMITS, Limits

from .cases import cases_for, expected_messages
from .checks import (
    DEVIATION,
    FAIL,
    NA,
    PASS,
    Outcome,
    RawMessage,
    apply_deviations,
    b64,
    check_message,
    check_result,
    missing_case,
    new_id,
    now_utc,
    skipped_case,
)
from .raw import open_reader

__all__ = ["CLIENT_PROFILES", "Report", "verify_client", "verify_worker"]

#: The cases each known client can express when it sends (the rest are reported n/a).
CLIENT_PROFILES: dict[str, dict[str, str]] = {
    "celery": {},
    "celeriac": {},
    "celery-node": {
        c: "celery-node 0.5.9's Client.sendTask takes no options and no canvas"
        for c in (
            "countdown eta_expires priority retries time_limits link chain group chord".split()
        )
    },
    "rusty-celery": {
        c: "rusty-celery 0.5.5 cannot send this (no priority, retries or canvas)"
        for c in "priority retries link chain group chord".split()
    },
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

    def failed(self, check: str | None = None) -> list[Outcome]:
        return [
            o for o in self.outcomes if o.status == FAIL and (check is None or o.check == check)
        ]

    def by_case(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = {}
        for o in self.outcomes:
            table.setdefault(o.case, Counter())[o.status] += 1
        return table

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "broker": self.broker,
            "client": self.client,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "counts": dict(self.counts()),
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
                ET.SubElement(tc, "failure", message=f"{o.section} {o.path}: {o.reason}")
            elif o.status == NA:
                ET.SubElement(tc, "skipped", message=o.reason or "not applicable")
            elif o.status == DEVIATION:
                out = ET.SubElement(tc, "system-out")
                out.text = f"known deviation {o.deviation} ({o.section} {o.path}: {o.reason})"
        data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
        return data

    def write(self, json_path: str | None = None, junit_path: str | None = None) -> None:
        if json_path:
            Path(json_path).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False))
        if junit_path:
            Path(junit_path).write_bytes(self.to_junit())


def verify_client(
    broker: str,
    queue: str,
    *,
    client: str | None = None,
    cases: Sequence[str] | None = None,
    timeout: float = 30.0,
    limits: Limits = DEFAULT_LIMITS,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Report:
    """Listen on ``queue`` and check every message the client under test sends there.

    Waits at most ``timeout`` seconds in all for the messages of the set; a call that does not
    arrive is a failed ``case.received`` check, never a hang.
    """
    started = time.monotonic()
    report = Report("client", broker, client)
    selected = cases_for("client", cases)
    skips = CLIENT_PROFILES.get(client or "", {})
    expected: dict[tuple[str, int], str] = {}
    for case in selected:
        if case["name"] in skips:
            report.outcomes.append(skipped_case(case["name"], skips[case["name"]]))
            continue
        for i, (task, _bound) in enumerate(expected_messages(case)):
            expected[(case["name"], i)] = f"{case['name']} message {i} ({task})"
    active = [c for c in selected if c["name"] not in skips]

    def emit(outcomes: list[Outcome]) -> None:
        outcomes = apply_deviations(outcomes, client)
        report.outcomes.extend(outcomes)
        if on_outcome:
            for o in outcomes:
                on_outcome(o)

    reader = open_reader(broker, queue)
    try:
        if on_ready:
            on_ready()
        deadline = time.monotonic() + timeout
        while expected and (left := deadline - time.monotonic()) > 0:
            raw = reader.read(min(1.0, max(left, 0.05)))
            if raw is None:
                continue
            report.captured.append(raw)
            outcomes, which = check_message(raw, active, limits=limits)
            if which is not None:
                if which in expected:
                    expected.pop(which)
                else:
                    outcomes.append(
                        Outcome("case.identified", "§2.5", which[0], "body", FAIL, "sent twice")
                    )
            emit(outcomes)
    finally:
        reader.close()
    emit([missing_case(name, what, timeout) for (name, _i), what in expected.items()])
    report.seconds = time.monotonic() - started
    return report


def _send_worker_case(app: Any, case: Mapping[str, Any], queue: str) -> str:
    """Send one worker case with Celeriac; return the id whose record holds the outcome."""
    from celeriac.canvas import chain, signature

    opts = case.get("options", {})
    options: dict[str, Any] = {"queue": queue}
    if "countdown" in opts:
        options["countdown"] = opts["countdown"]
    if "expires_in" in opts:
        options["expires"] = now_utc() + timedelta(seconds=float(opts["expires_in"]))
    if case.get("canvas") == "chain":
        ids = [new_id() for _ in case["steps"]]
        steps = [
            signature(s["task"], s["args"], options={"task_id": i, "queue": queue})
            for s, i in zip(case["steps"], ids, strict=True)
        ]
        chain(*steps, app=app).apply_async(**options)
        return ids[-1]  # the last step's record holds the chain's outcome
    task_id = new_id()
    app.send_task(case["task"], case["args"], case["kwargs"], task_id=task_id, **options)
    return task_id


def verify_worker(
    broker: str,
    backend: str,
    queue: str,
    *,
    client: str | None = None,
    cases: Sequence[str] | None = None,
    timeout: float = 60.0,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Send the worker set to the worker under test; check each record and state change.

    The worker must write results to ``backend`` (a ``redis://`` URL: the states it publishes
    are watched there). Waits at most ``timeout`` seconds in all.
    """
    import redis

    from celeriac import App

    if not backend.startswith(("redis://", "rediss://")):
        raise ValueError("--role worker reads results from a redis:// result backend")
    started = time.monotonic()
    report = Report("worker", broker, client)
    selected = cases_for("worker", cases)
    r = redis.Redis.from_url(backend)
    pubsub = r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
    pubsub.psubscribe("celery-task-meta-*")
    app = App(
        "celeriac-interop-verify",
        broker=broker,
        backend=backend,
        task_default_queue=queue,
        task_eta_in_broker=False,
    )
    sent: dict[str, tuple[Mapping[str, Any], datetime]] = {}  # id -> (case, sent at)
    states: dict[str, list[str]] = {}
    try:
        for case in selected:
            sent_at = now_utc()
            task_id = _send_worker_case(app, case, queue)
            sent[task_id] = (case, sent_at)
            states[task_id] = []
        deadline = time.monotonic() + timeout
        pending = set(sent)
        while pending and time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=0.2)
            while msg is not None:
                channel = msg.get("channel", b"").decode("utf-8", "replace")
                task_id = channel.removeprefix("celery-task-meta-")
                if task_id in states:
                    try:
                        states[task_id].append(str(json.loads(msg["data"]).get("status")))
                    except (ValueError, AttributeError):
                        states[task_id].append("<unreadable>")
                msg = pubsub.get_message(timeout=0)
            for task_id in list(pending):
                raw = r.get(f"celery-task-meta-{task_id}")
                if isinstance(raw, bytes) and any(
                    f'"{s}"'.encode() in raw for s in ("SUCCESS", "FAILURE", "REVOKED")
                ):
                    pending.discard(task_id)
        for task_id, (sent_case, sent_at) in sent.items():
            got = r.get(f"celery-task-meta-{task_id}")
            record = got if isinstance(got, bytes) or got is None else str(got).encode()
            outcomes = check_result(sent_case, task_id, record, states[task_id], sent_at=sent_at)
            outcomes = apply_deviations(outcomes, client)
            report.outcomes.extend(outcomes)
            if on_outcome:
                for o in outcomes:
                    on_outcome(o)
    finally:
        pubsub.close()
        r.close()
        app.close()
    report.seconds = time.monotonic() - started
    return report


def capture_vector(raw: RawMessage, client: str, case: str) -> dict[str, Any]:
    """A foreign vector (SPEC Appendix A's format) for one captured message."""
    if raw.envelope == "amqp":
        props = {k: v for k, v in raw.amqp_properties.items() if v is not None}
        wire: dict[str, Any] = {
            "queue": raw.queue,
            "body_b64": b64(raw.data),
            "properties": props,
        }
    else:
        wire = {"queue": raw.queue, "key": raw.list_key, "payload": raw.data.decode("utf-8")}
    return {
        "format": 1,
        "name": f"foreign/{client}/{raw.broker}/{case}",
        "description": f"A {case} call as {client} puts it on {raw.broker}.",
        "source": {"producer": client, "captured_by": "celeriac interop verify --capture"},
        "envelope": raw.broker,
        "wire": wire,
    }


STATUS_STYLE = {PASS: "green", FAIL: "bold red", NA: "dim", DEVIATION: "yellow"}
