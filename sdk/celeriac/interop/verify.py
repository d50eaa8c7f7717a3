"""The conformance runner behind ``celeriac interop verify`` (both roles)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from celeriac.protocol import DEFAULT_LIMITS, Limits, ProtocolError

from .capabilities import Capabilities, builtin_capabilities
from .cases import CLIENT_CASES, cases_for, expected_messages
from .checks import (
    FAIL,
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
from .execute import Executor, wire_of
from .raw import open_reader
from .report import STATUS_STYLE, Report

__all__ = ["STATUS_STYLE", "Report", "capture_vector", "verify_client", "verify_worker"]


def client_capabilities(client: str | None, capabilities: Capabilities | None) -> Capabilities:
    """What the client declared; else the built-in file of ``client``; else every case but
    ``read_back`` (which needs a client that reads its results)."""
    if capabilities is not None:
        return capabilities
    found = builtin_capabilities(client) if client else None
    if found is not None:
        return found
    every = frozenset(c["name"] for c in CLIENT_CASES if not c.get("report"))
    return Capabilities(every, client)


def _headers_of(raw: RawMessage) -> Mapping[str, Any]:
    try:
        headers = wire_of(raw).headers
    except ProtocolError:
        return {}
    return headers if isinstance(headers, Mapping) else {}


def _is_child(raw: RawMessage, executor: Executor) -> bool:
    """A message the verifying worker sent on (a chain's next step, a chord's body)."""
    headers = _headers_of(raw)
    return executor.knows(headers.get("parent_id")) or (
        executor.knows(headers.get("root_id")) and not executor.knows(headers.get("id"))
    )


def verify_client(
    broker: str,
    queue: str,
    *,
    client: str | None = None,
    capabilities: Capabilities | None = None,
    cases: Sequence[str] | None = None,
    timeout: float = 30.0,
    limits: Limits = DEFAULT_LIMITS,
    execute: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Report:
    """Listen on ``queue`` and check every message the client under test sends there.

    Cases the client does not declare (:func:`client_capabilities`) are not applicable at once.
    With ``execute`` (a ``redis://`` or ``rpc://`` result backend) a Celeriac worker runs each
    message after its checks and stores the result, so a client waiting for results completes.
    Waits at most ``timeout`` seconds in all; a call that does not arrive is a failed
    ``case.received`` check, never a hang.
    """
    started = time.monotonic()
    declared = client_capabilities(client, capabilities)
    client = client or declared.client
    report = Report("client", broker, client)
    expected: dict[tuple[str, int], str] = {}
    active = []
    for case in cases_for("client", cases):
        name = case["name"]
        if name not in declared.supports:
            report.outcomes.append(skipped_case(name, declared.reason(name)))
        elif case.get("report") and not execute:
            report.outcomes.append(skipped_case(name, "read_back needs --execute (results)"))
        else:
            active.append(case)
            for i, (task, _bound) in enumerate(expected_messages(case)):
                expected[(name, i)] = f"{name} message {i} ({task})"

    def emit(outcomes: list[Outcome]) -> None:
        outcomes = apply_deviations(outcomes, client)
        for o in outcomes:
            o.elapsed = round(time.monotonic() - started, 3)
        report.outcomes.extend(outcomes)
        if on_outcome:
            for o in outcomes:
                on_outcome(o)

    not_applicable, report.outcomes = report.outcomes, []
    emit(not_applicable)  # known at once: said before waiting for anything
    executor = Executor(broker, execute, queue) if execute else None
    reader = open_reader(broker, queue)
    number = 0
    try:
        if on_ready:
            on_ready()
        deadline = time.monotonic() + timeout
        while expected and (left := deadline - time.monotonic()) > 0:
            raw = reader.read(min(1.0, max(left, 0.05)))
            if raw is None:
                continue
            if executor is not None and _is_child(raw, executor):
                executor.forward(raw)
                continue
            number += 1
            report.captured.append(raw)
            outcomes, which = check_message(raw, active, limits=limits)
            if which is not None:
                if which in expected:
                    expected.pop(which)
                else:
                    outcomes.append(
                        Outcome("case.identified", "§2.5", which[0], "body", FAIL, "sent twice")
                    )
            for o in outcomes:
                o.message = number
            emit(outcomes)
            if executor is not None:
                executor.forward(raw)
        # Keep running what the client sent until every call has its final record (a chain's
        # later steps come back through the queue: pass them on).
        while executor is not None and (left := deadline - time.monotonic()) > 0:
            if executor.settled():
                break
            raw = reader.read(min(0.5, max(left, 0.05)))
            if raw is not None:
                executor.forward(raw)
    finally:
        reader.close()
        if executor is not None:
            executor.close()
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
