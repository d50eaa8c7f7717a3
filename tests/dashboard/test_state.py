"""The dashboard's model, fed events by hand: workers, tasks, queues, series, bounds."""

from __future__ import annotations

from typing import Any

from celeriac.dashboard import State, parse_arguments


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(
    type_: str, hostname: str = "w1@host", timestamp: float = 1_000_000.0, **fields: Any
) -> dict[str, Any]:
    return {"type": type_, "hostname": hostname, "timestamp": timestamp, "clock": 0, **fields}


def task_of(state: State, uuid: str) -> dict[str, Any]:
    found = state.task(uuid)
    assert found is not None, uuid
    return found


def test_task_lifecycle_from_celery_events() -> None:
    clock = Clock()
    state = State(clock=clock)
    state.apply(
        ev(
            "task-sent",
            "client@box",
            uuid="t1",
            name="proj.add",
            args="(2, 3)",
            kwargs="{}",
            queue="celery",
        )
    )
    assert task_of(state, "t1")["state"] == "PENDING"
    assert task_of(state, "t1")["worker"] is None  # task-sent's hostname is the client
    state.apply(
        ev(
            "task-received",
            uuid="t1",
            name="proj.add",
            args="(2, 3)",
            kwargs="{}",
            timestamp=1_000_000.5,
        )
    )
    state.apply(ev("task-started", uuid="t1", timestamp=1_000_001.0))
    assert task_of(state, "t1")["state"] == "STARTED"
    state.apply(ev("task-succeeded", uuid="t1", result="5", runtime=0.25, timestamp=1_000_001.3))
    task = task_of(state, "t1")
    assert (task["state"], task["result"], task["runtime"], task["worker"]) == (
        "SUCCESS",
        "5",
        0.25,
        "w1@host",
    )
    assert task["name"] == "proj.add" and task["args"] == "(2, 3)" and task["queue"] == "celery"
    assert set(task["timestamps"]) == {"sent", "received", "started", "succeeded"}
    points = state.series()
    assert len(points) == 1 and points[0]["succeeded"] == 1 and points[0]["runtime"] == 0.25
    assert points[0]["wait"] == 0.5  # received to started
    clock.now += 3  # quiet seconds are zeros, not gaps
    assert [p["succeeded"] for p in state.series()] == [1, 0, 0, 0]


def test_failure_keeps_exception_and_traceback() -> None:
    state = State()
    state.apply(ev("task-received", uuid="t2", name="proj.boom"))
    state.apply(
        ev(
            "task-failed",
            uuid="t2",
            exception="ValueError('boom')",
            traceback="Traceback (most recent call last):\n  ...\nValueError: boom",
        )
    )
    task = task_of(state, "t2")
    assert task["state"] == "FAILURE"
    assert task["exception"] == "ValueError('boom')" and "ValueError: boom" in task["traceback"]
    assert state.series()[0]["failed"] == 1


def test_a_late_event_does_not_revive_a_finished_task() -> None:
    state = State()
    state.apply(ev("task-succeeded", uuid="t3", result="1", runtime=0.1, timestamp=10.0))
    # The client's task-sent, stamped earlier, arrives after the worker's outcome.
    state.apply(ev("task-sent", "client", uuid="t3", name="proj.x", timestamp=9.0))
    task = task_of(state, "t3")
    assert task["state"] == "SUCCESS" and task["name"] == "proj.x"
    # A retried task comes back: RETRY, then received again, then succeeded.
    state.apply(ev("task-retried", uuid="t4", exception="again", timestamp=1.0))
    state.apply(ev("task-received", uuid="t4", timestamp=2.0))
    assert task_of(state, "t4")["state"] == "RECEIVED"


def test_workers_alive_by_heartbeat_and_offline() -> None:
    clock = Clock()
    state = State(clock=clock)
    state.apply(
        ev(
            "worker-online",
            "w1@host",
            freq=2.0,
            active=0,
            processed=0,
            loadavg=[0.5, 0.25, 0.125],
            sw_ident="celeriac",
            sw_ver="0.1",
        )
    )
    state.apply(
        ev("worker-heartbeat", "w1@host", freq=2.0, active=1, processed=7, loadavg=[1.0, 0.5, 0.25])
    )
    state.apply(ev("worker-online", "w2@host", freq=2.0))
    snapshot = {w["hostname"]: w for w in state.changes_since(0)["workers"]}
    assert snapshot["w1@host"]["status"] == "online"
    assert snapshot["w1@host"]["processed"] == 7 and snapshot["w1@host"]["active"] == 1
    assert snapshot["w1@host"]["loadavg"] == [1.0, 0.5, 0.25]
    assert snapshot["w1@host"]["software"] == "celeriac 0.1"
    state.apply(ev("worker-offline", "w2@host"))
    clock.now += 3  # inside two heartbeat periods (plus slack)
    snapshot = {w["hostname"]: w for w in state.changes_since(0)["workers"]}
    assert snapshot["w1@host"]["status"] == "online" and snapshot["w2@host"]["status"] == "offline"
    clock.now += 10  # silent for longer: gone
    snapshot = {w["hostname"]: w for w in state.changes_since(0)["workers"]}
    assert snapshot["w1@host"]["status"] == "offline"


def test_changes_since_gives_only_what_changed() -> None:
    state = State()
    state.apply(ev("task-received", uuid="a", name="n"))
    state.apply(ev("task-received", uuid="b", name="n"))
    first = state.changes_since(0)
    assert first["full"] and {t["uuid"] for t in first["tasks"]} == {"a", "b"}
    state.apply(ev("task-started", uuid="a"))
    second = state.changes_since(first["version"])
    assert [t["uuid"] for t in second["tasks"]] == ["a"] and not second["full"]
    assert second["counts"] == {"STARTED": 1, "RECEIVED": 1}
    assert state.changes_since(second["version"])["tasks"] == []


def test_bounded_tasks_and_text() -> None:
    state = State(max_tasks=3)
    for i in range(5):
        state.apply(ev("task-received", uuid=f"t{i}", name="n", args="x" * 10_000))
    assert list(state.tasks) == ["t2", "t3", "t4"]
    args = task_of(state, "t4")["args"]
    assert len(args) <= 4097 and args.endswith("…")


def test_bounded_workers_and_queues() -> None:
    # Forged events may name any number of workers and queues: the oldest are forgotten.
    state = State(max_workers=3, max_queues=2)
    for i in range(6):
        state.apply(ev("worker-heartbeat", hostname=f"w{i}@" + "h" * 1000))
        state.apply(ev("task-sent", uuid=f"t{i}", name="n", queue=f"q{i}"))
    assert len(state.workers) == 3
    assert all(len(name) <= 255 for name in state.workers)
    assert list(state.queues) == ["q4", "q5"]
    state.apply(ev("worker-heartbeat", hostname="w3@" + "h" * 1000))  # heard again: kept
    state.apply(ev("worker-heartbeat", hostname="new@host"))
    assert ("w3@" + "h" * 1000)[:255] in state.workers


def test_malformed_events_are_ignored() -> None:
    state = State()
    for bad in (
        {},
        {"type": 5},
        {"type": "task-received"},  # no uuid
        {"type": "task-received", "uuid": ["x"]},
        {"type": "task-bogus", "uuid": "x"},
        {"type": "worker-heartbeat"},  # no hostname
        {"type": "worker-heartbeat", "hostname": "w", "loadavg": "high", "freq": "x"},
    ):
        state.apply(bad)
    assert state.tasks == {} and list(state.workers) == ["w"]
    assert state.workers["w"].loadavg == [] and state.workers["w"].freq == 2.0


def test_queue_rates() -> None:
    clock = Clock()
    state = State(clock=clock)
    for _ in range(5):
        state.apply(ev("task-sent", "client", uuid=f"q{_}", name="n", queue="jobs"))
    state.set_queue_length("jobs", 10)
    clock.now += 5
    state.set_queue_length("jobs", 0)
    jobs = next(q for q in state.changes_since(0)["queues"] if q["name"] == "jobs")
    assert jobs["length"] == 0 and jobs["sent_rate"] == 0.5 and jobs["change"] == -2.0


def test_search_and_filter() -> None:
    state = State()
    state.apply(ev("task-received", "w1", uuid="u1", name="proj.add", args="(2, 3)"))
    state.apply(ev("task-received", "w2", uuid="u2", name="proj.mail", args="('bob@x.org',)"))
    state.apply(ev("task-failed", "w2", uuid="u2", exception="E"))
    assert [t["uuid"] for t in state.find_tasks(search="BOB@")] == ["u2"]
    assert [t["uuid"] for t in state.find_tasks(state="RECEIVED")] == ["u1"]
    assert [t["uuid"] for t in state.find_tasks(worker="w2")] == ["u2"]
    assert [t["uuid"] for t in state.find_tasks()] == ["u2", "u1"]  # newest first


def test_arguments_back_from_reprs() -> None:
    assert parse_arguments("(2, 3)", "{'z': [1, None]}") == ((2, 3), {"z": [1, None]})
    assert parse_arguments("[1]", None) == ((1,), {})
    assert parse_arguments("(<object at 0x1>,)", "{}") is None  # not a literal
    assert parse_arguments("__import__('os').system('x')", "{}") is None  # never evaluated
    assert parse_arguments("(1, 2, 3, …", "{}") is None  # shortened for display
    assert parse_arguments("(1,)", "{1: 2}") is None  # keyword names must be strings


def test_a_task_state_never_moves_backwards_by_celerys_precedence() -> None:
    """Events from a client and a worker arrive in any order; Celery's precedence decides."""
    state = State(clock=Clock())
    # The end arrives first; the earlier events add their fields, not their states.
    state.apply(ev("task-succeeded", uuid="t1", result="5", runtime=0.1, timestamp=3.0))
    state.apply(ev("task-started", uuid="t1", timestamp=2.0))
    state.apply(ev("task-received", uuid="t1", name="proj.add", timestamp=1.0))
    state.apply(ev("task-sent", "client@box", uuid="t1", name="proj.add", timestamp=0.5))
    t1 = task_of(state, "t1")
    assert t1["state"] == "SUCCESS" and t1["name"] == "proj.add"
    # A revoked task whose late task-started arrives stays REVOKED.
    state.apply(ev("task-revoked", uuid="t2", terminated=True, timestamp=2.0))
    state.apply(ev("task-started", uuid="t2", timestamp=3.0))
    assert task_of(state, "t2")["state"] == "REVOKED"
    # A retry moves the state either way: the task runs again under the same id.
    state.apply(ev("task-started", uuid="t3", timestamp=1.0))
    state.apply(ev("task-retried", uuid="t3", exception="RuntimeError('x')", timestamp=2.0))
    assert task_of(state, "t3")["state"] == "RETRY"
    state.apply(ev("task-received", uuid="t3", timestamp=3.0))
    assert task_of(state, "t3")["state"] == "RECEIVED"
    state.apply(ev("task-failed", uuid="t3", exception="ValueError('y')", timestamp=4.0))
    state.apply(ev("task-started", uuid="t3", timestamp=3.5))
    assert task_of(state, "t3")["state"] == "FAILURE"


def test_numbers_past_what_the_pages_encode_are_ignored() -> None:
    # Found by tests/fuzz/test_event_fuzz.py: a forged event with a count past 64 bits broke
    # every page's JSON (orjson refuses it), and one past a float's range raised in apply().
    import orjson

    state = State()
    state.apply({"type": "task-received", "uuid": "t", "hostname": "w", "retries": 10**30})
    state.apply({"type": "worker-heartbeat", "hostname": "w", "processed": 2**64, "pid": -1})
    state.apply({"type": "worker-heartbeat", "hostname": "w", "freq": 10**400, "active": 3})
    state.apply({"type": "task-succeeded", "uuid": "t", "hostname": "w", "runtime": 10**400})
    orjson.dumps(state.changes_since(0))
    task, worker = state.task("t"), state.workers["w"]
    assert task is not None and not task["retries"] and task["runtime"] is None
    assert worker.processed == 0 and worker.pid is None and worker.active == 3
