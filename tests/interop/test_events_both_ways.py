"""Events between real Celery 5.7 and Celeriac, on Redis and RabbitMQ: a Celeriac receiver (what
``celeriac events`` and the dashboard read) sees a Celery worker's events, and ``celery events``
sees a Celeriac worker's."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from celeriac import App
from celeriac.events import EventReceiver
from celeriac.worker import run_worker, stop_worker
from interop import celery_env
from tests.brokers import unique
from tests.waiting import collect

pytestmark = [pytest.mark.celery, pytest.mark.broker]


def test_celeriac_receiver_sees_a_celery_workers_events(broker: str) -> None:
    work_queue = unique("celery-events")
    hostname = f"celery-{uuid.uuid4().hex[:6]}@test"
    app = App("events-reader", broker=broker, backend=None, task_default_queue=work_queue)
    try:
        with (
            EventReceiver(app) as receiver,
            celery_env.e2e_worker(broker, work_queue, hostname, extra_args=["-E"]),
        ):
            sent = app.send_task("e2e.add", (2, 3))

            def done(seen: list[dict[str, Any]]) -> bool:
                return any(e["type"] == "task-succeeded" and e.get("uuid") == sent.id for e in seen)

            events = collect(receiver.next, done, 60)
    finally:
        app.close()
    # (The harness runs Celery --without-heartbeat, so its worker events are off.)
    task = [e for e in events if e.get("hostname") == hostname and e.get("uuid") == sent.id]
    assert [e["type"] for e in task][-1] == "task-succeeded", task
    assert "task-received" in {e["type"] for e in task}
    succeeded = task[-1]
    assert succeeded["result"] == "5" and succeeded["runtime"] >= 0


def test_celery_events_sees_a_celeriac_workers_events(broker: str) -> None:
    hostname = f"celeriac-{uuid.uuid4().hex[:6]}@test"
    app = App(
        "events-writer",
        broker=broker,
        backend=None,
        task_default_queue=unique("celeriac-events"),
        worker_send_task_events=True,
    )

    @app.task(name="ev.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    python = str(celery_env.ensure(quiet=True))
    dump = subprocess.Popen(
        [python, "-m", "celery", "-b", broker, "events", "--dump"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=celery_env._clean_env(None),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in dump.stdout or ()], daemon=True).start()
    seen: list[str] = []

    def wait_for(predicate: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"celery events printed no such line in {timeout} s: {seen[-20:]}")

    worker = None
    try:
        wait_for(lambda line: "Dumping events" in line or "-> evdump" in line)
        worker = run_worker(app, concurrency=1, hostname=hostname)
        # Kombu subscribes on Redis only once it drains, maybe after our worker-online: the first
        # of our events it prints (a heartbeat at the latest) shows it is listening.
        first = wait_for(lambda line: hostname in line)
        assert "] started:" in first or "] heartbeat:" in first, first
        sent = mul.delay(6, 7)
        line = wait_for(lambda line: sent.id in line and "succeeded" in line)
        assert "42" in line
    finally:
        if worker is not None:
            stop_worker(worker)
        dump.terminate()
        dump.wait(20)
        app.close()


# -- the same scenarios on a Celery 5.7 worker and a Celeriac worker, streams compared ------------

#: Fields whose values differ by nature (ids, times, processes, clocks): compared by type only.
_VOLATILE = {
    "uuid", "hostname", "timestamp", "pid", "clock", "local_received", "runtime",
    "root_id", "parent_id", "eta", "args",
}  # fmt: skip
#: Differences kept on purpose, each listed in docs/operations.md ("Events").
_DELIBERATE: dict[tuple[str, str], str] = {
    ("task-retried", "exception"): "the cause's repr, not Celery's repr of its Retry wrapper",
}


def _scenarios(app: App, hostname: str, redis_url: str) -> dict[str, str]:
    """Send every scenario to the worker named ``hostname``; return scenario -> task id."""
    ids: dict[str, str] = {}
    revoked = str(uuid.uuid4())
    reply = app.control.revoke(revoked, destination=[hostname], reply=True, timeout=10)
    assert reply and hostname in reply, reply
    ids["revoke before start"] = app.send_task("e2e.add", (1, 1), task_id=revoked).id
    ids["unknown task"] = app.send_task("e2e.nope", (1,)).id
    ids["failure"] = app.send_task("e2e.fail", ("boom",)).id
    key = f"flaky-{uuid.uuid4().hex}"
    ids["retry"] = app.send_task("e2e.flaky", (redis_url, key, 1)).id
    ids["success"] = app.send_task("e2e.add", (2, 3)).id
    return ids


def _record(app: App, receiver: EventReceiver, hostname: str, redis_url: str) -> dict[str, Any]:
    ids = _scenarios(app, hostname, redis_url)
    terminal = {"task-succeeded", "task-failed", "task-revoked", "task-rejected"}

    def finished(seen: list[dict[str, Any]]) -> bool:
        ended = {e.get("uuid") for e in seen if e["type"] in terminal}
        # The retried task ends twice (its retry runs as the same id): wait for its success.
        ok = {e.get("uuid") for e in seen if e["type"] == "task-succeeded"}
        return ids["retry"] in ok and ids["success"] in ok and set(ids.values()) <= ended

    seen = collect(receiver.next, finished, 60)
    by_id = {v: k for k, v in ids.items()}
    streams: dict[str, list[dict[str, Any]]] = {k: [] for k in ids}
    for e in seen:
        if e.get("hostname") == hostname and e.get("uuid") in by_id:
            streams[by_id[e["uuid"]]].append(e)
    return streams


def _shape(stream: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each event as (type, fields): volatile fields by type name, the rest by value."""
    shaped = []
    for e in stream:
        fields = {
            k: (type(v).__name__ if k in _VOLATILE else v)
            for k, v in e.items()
            if k != "type" and k not in ("traceback",)
        }
        fields["traceback"] = bool(e.get("traceback"))  # text differs by file paths
        shaped.append((e["type"], fields))
    return shaped


def test_event_streams_side_by_side() -> None:
    from tests.brokers import REDIS_URL, require

    require("redis")
    queue_name = unique("events-side")
    app = App("events-side", broker=REDIS_URL, backend=REDIS_URL, task_default_queue=queue_name)

    @app.task(name="e2e.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="e2e.fail")
    def fail(msg: str) -> None:
        raise ValueError(msg)

    @app.task(name="e2e.flaky", bind=True, max_retries=5)
    def flaky(self: Any, redis_url: str, key: str, failures: int) -> int:
        import redis

        attempt = int(redis.Redis.from_url(redis_url).incr(key))
        if attempt <= failures:
            raise self.retry(exc=RuntimeError(f"attempt {attempt}"), countdown=0.1)
        return attempt

    celery_host = f"celery-side-{uuid.uuid4().hex[:6]}@test"
    ours_host = f"celeriac-side-{uuid.uuid4().hex[:6]}@test"
    try:
        with EventReceiver(app) as receiver:
            with celery_env.e2e_worker(REDIS_URL, queue_name, celery_host, extra_args=["-E"]):
                theirs = _record(app, receiver, celery_host, REDIS_URL)
            app.conf.worker_send_task_events = True
            worker = run_worker(app, concurrency=1, hostname=ours_host)
            try:
                ours = _record(app, receiver, ours_host, REDIS_URL)
            finally:
                stop_worker(worker)
    finally:
        app.close()
    differences = []
    for scenario in theirs:
        a, b = _shape(theirs[scenario]), _shape(ours[scenario])
        if [t for t, _ in a] != [t for t, _ in b]:
            differences.append((scenario, "types", [t for t, _ in a], [t for t, _ in b]))
            continue
        for (kind, fa), (_, fb) in zip(a, b, strict=True):
            for field in sorted(set(fa) | set(fb)):
                same = fa.get(field, "<absent>") == fb.get(field, "<absent>")
                if not same and (kind, field) not in _DELIBERATE:
                    differences.append((scenario, kind, field, fa.get(field), fb.get(field)))
    assert differences == [], "\n".join(map(repr, differences))


def test_prefork_time_limit_and_terminate_are_not_announced_as_succeeded() -> None:
    """A child killed past its hard limit is task-failed (TimeLimitExceeded), one killed by
    terminate is task-revoked with terminated=True: as Celery sends them, never succeeded."""
    from tests.brokers import REDIS_URL, require

    require("redis")
    app = App(
        "events-prefork",
        broker=REDIS_URL,
        backend=REDIS_URL,
        task_default_queue=unique("events-prefork"),
        worker_send_task_events=True,
    )

    @app.task(name="ev.stuck", time_limit=0.5)
    def stuck() -> None:
        while True:
            time.sleep(0.01)

    @app.task(name="ev.long")
    def long() -> None:
        time.sleep(60)

    hostname = f"celeriac-pf-{uuid.uuid4().hex[:6]}@test"
    terminal = {"task-succeeded", "task-failed", "task-revoked"}
    try:
        with EventReceiver(app) as receiver:
            worker = run_worker(app, pool="prefork", concurrency=2, hostname=hostname)
            try:
                limited = stuck.delay()
                running = long.delay()
                collect(
                    receiver.next,
                    lambda seen: any(
                        e["type"] == "task-started" and e.get("uuid") == running.id for e in seen
                    ),
                    30,
                )
                app.control.revoke(running.id, terminate=True, signal="SIGKILL")
                ids = {limited.id, running.id}
                events = collect(
                    receiver.next,
                    lambda seen: ids <= {e.get("uuid") for e in seen if e["type"] in terminal},
                    30,
                )
            finally:
                stop_worker(worker)
    finally:
        app.close()
    ends = {e["uuid"]: e for e in events if e["type"] in terminal and e.get("uuid") in ids}
    assert ends[limited.id]["type"] == "task-failed", ends
    assert "TimeLimitExceeded" in ends[limited.id]["exception"]
    assert ends[running.id]["type"] == "task-revoked", ends
    assert ends[running.id]["terminated"] is True
    assert limited.state == "FAILURE" and running.state == "REVOKED"


def test_worker_events_without_task_events() -> None:
    """Without -E a worker still sends worker-online/heartbeat/offline (Celery's heartbeat is on
    by default), and no task event."""
    from tests.brokers import REDIS_URL, require

    require("redis")
    app = App("events-quiet", broker=REDIS_URL, backend=REDIS_URL, task_default_queue=unique("q"))

    @app.task(name="ev.quiet")
    def quiet() -> int:
        return 1

    hostname = f"celeriac-quiet-{uuid.uuid4().hex[:6]}@test"
    try:
        with EventReceiver(app) as receiver:
            worker = run_worker(app, concurrency=1, hostname=hostname)
            try:
                sent = quiet.delay()
                assert sent.get(timeout=30) == 1

                def mine(seen: list[dict[str, Any]]) -> set[str]:
                    return {e["type"] for e in seen if e.get("hostname") == hostname}

                events = collect(
                    receiver.next, lambda s: {"worker-online", "worker-heartbeat"} <= mine(s), 30
                )
            finally:
                stop_worker(worker)
            events += collect(receiver.next, lambda s: "worker-offline" in mine(s), 30)
    finally:
        app.close()
    assert not [e for e in events if e.get("uuid") == sent.id], "task events without -E"
    heartbeat = next(e for e in events if e["type"] == "worker-heartbeat")
    assert heartbeat["freq"] == 2.0 and isinstance(heartbeat["clock"], int)


# -- terminate, time limits, expiry and a rejected message, on two prefork workers ----------------

#: Differences kept on purpose in these scenarios, each listed in docs/operations.md ("Events").
_DELIBERATE_MORE: dict[tuple[str, ...], str] = {
    ("hard time limit", "types"): "Celery sends task-failed twice (its timeout handler and the "
    "pool's report of the killed child); Celeriac once",
    ("hard time limit", "task-failed", "exception"): "Celery writes the repr of its traceback "
    "wrapper, ExceptionWithTraceback(); Celeriac the TimeLimitExceeded the backend holds",
}


def _once(shaped: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The stream with an event that repeats the type of the one before it left out."""
    return [e for i, e in enumerate(shaped) if i == 0 or e[0] != shaped[i - 1][0]]


def _record_more(app: App, receiver: EventReceiver, hostname: str) -> dict[str, Any]:
    """Send terminate, soft and hard limit, expiry and reject to ``hostname``; the streams."""
    ids: dict[str, str] = {}
    ids["terminate"] = app.send_task("tools.sleep", (60,)).id
    ids["soft time limit"] = app.send_task("tools.soft", (5,)).id
    ids["hard time limit"] = app.send_task("tools.hard", (5,)).id
    ids["expiry"] = app.send_task("tools.add", (1, 2), expires=-1).id
    ids["rejected"] = app.send_task("tools.reject", ("no",)).id
    terminal = {"task-succeeded", "task-failed", "task-revoked", "task-rejected"}
    mine = set(ids.values())

    def started(seen: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "task-started" and e.get("uuid") == ids["terminate"] for e in seen)

    seen = collect(receiver.next, started, 60)
    assert started(seen), f"the long task never started on {hostname}: {seen}"
    app.control.revoke(ids["terminate"], terminate=True, signal="SIGKILL", destination=[hostname])

    def finished(more: list[dict[str, Any]]) -> bool:
        ended = {e.get("uuid") for e in seen + more if e["type"] in terminal}
        rejected = {e.get("uuid") for e in seen + more if e["type"] == "task-rejected"}
        return mine <= ended and ids["rejected"] in rejected

    seen += collect(receiver.next, finished, 60)
    # Late events of a scenario (a task-failed after task-rejected) come within a moment.
    seen += collect(receiver.next, lambda more: False, 1.0)
    by_id = {v: k for k, v in ids.items()}
    streams: dict[str, list[dict[str, Any]]] = {k: [] for k in ids}
    for e in seen:
        if e.get("hostname") == hostname and e.get("uuid") in by_id:
            streams[by_id[e["uuid"]]].append(e)
    return streams


def _differences(
    theirs: dict[str, Any], ours: dict[str, Any], deliberate: Any
) -> list[tuple[Any, ...]]:
    differences: list[tuple[Any, ...]] = []
    for scenario in theirs:
        a, b = _shape(theirs[scenario]), _shape(ours[scenario])
        if (scenario, "types") in deliberate:
            a = _once(a)
        if [t for t, _ in a] != [t for t, _ in b]:
            differences.append((scenario, "types", [t for t, _ in a], [t for t, _ in b]))
            continue
        for (kind, fa), (_, fb) in zip(a, b, strict=True):
            for field in sorted(set(fa) | set(fb)):
                same = fa.get(field, "<absent>") == fb.get(field, "<absent>")
                if not same and (scenario, kind, field) not in deliberate:
                    differences.append((scenario, kind, field, fa.get(field), fb.get(field)))
    return differences


def test_event_streams_side_by_side_terminate_limits_expiry_reject() -> None:
    """The same five situations on a Celery 5.7 prefork worker and on Celeriac workers (prefork,
    and threads): the event streams are equal field by field (ids and times by type), or the
    difference is listed as deliberate."""
    from tests.brokers import REDIS_URL, require
    from tests.interop import tools_tasks

    require("redis")
    queue_name = unique("events-more")
    app = App("events-more", broker=REDIS_URL, backend=REDIS_URL, task_default_queue=queue_name)
    tools_tasks.register(app)
    celery_host = f"celery-more-{uuid.uuid4().hex[:6]}@test"
    ours_host = f"celeriac-more-{uuid.uuid4().hex[:6]}@test"
    try:
        with EventReceiver(app) as receiver:
            with tools_tasks.celery_worker(
                REDIS_URL, queue_name, celery_host, "-E", "-P", "prefork", "-c", "2",
                backend=REDIS_URL,
            ):  # fmt: skip
                theirs = _record_more(app, receiver, celery_host)
            app.conf.worker_send_task_events = True
            ours: dict[str, dict[str, Any]] = {}
            # Celeriac's prefork pool, and its thread pool (its default) against the same stream.
            for pool in ("prefork", "threads"):
                host = f"{pool}-{ours_host}"
                worker = run_worker(app, pool=pool, concurrency=2, hostname=host)
                try:
                    ours[pool] = _record_more(app, receiver, host)
                finally:
                    stop_worker(worker)
    finally:
        app.close()
    differences = [
        (pool, *d) for pool in ours for d in _differences(theirs, ours[pool], _DELIBERATE_MORE)
    ]
    assert differences == [], "\n".join(map(repr, differences))
