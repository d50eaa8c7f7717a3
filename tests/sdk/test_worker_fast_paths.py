"""The worker's per-task shortcuts (issue 23) keep what they replace: the request a task sees,
whether a task is async, and the thread pool's slots."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from celeriac import App
from celeriac.protocol import WireMessage, decode_task, encode_task, new_task_message
from celeriac.task import Context
from celeriac.transports import Delivery, QueueSpec, open_transport
from celeriac.worker.boundary import DELIVERY_COUNT_HEADER
from celeriac.worker.core import Worker
from celeriac.worker.job import Job, Outcome
from celeriac.worker.policy import Admission, Step
from celeriac.worker.task_context import context_for
from celeriac.worker.threads import ThreadPool


def test_context_fields_are_in_the_order_context_for_passes() -> None:
    assert [f.name for f in fields(Context)] == [
        "id", "task", "args", "kwargs", "retries", "eta", "expires", "group", "group_index",
        "root_id", "parent_id", "chord", "callbacks", "errbacks", "chain", "delivery_info",
        "hostname", "is_eager", "headers", "reply_to", "correlation_id", "origin",
        "ignore_result", "shadow", "timelimit", "time_limit", "soft_time_limit", "argsrepr",
        "kwargsrepr", "replaced_task_nesting", "stamped_headers", "stamps", "properties", "utc",
        "children",
    ]  # fmt: skip


def test_context_for_sets_every_field_from_the_message() -> None:
    eta = datetime(2030, 1, 2, tzinfo=UTC)
    chord = {"task": "t.body", "args": [], "kwargs": {}, "options": {}}
    link = {"task": "t.cb", "args": [], "kwargs": {}, "options": {}}
    sent = new_task_message(
        "t.name",
        (1,),
        {"k": 2},
        task_id="the-id",
        eta=eta,
        expires=eta,
        priority=3,
        retries=4,
        time_limit=9.0,
        soft_time_limit=8.0,
        shadow="sh",
        group="g",
        group_index=1,
        root_id="r",
        parent_id="p",
        origin="o",
        ignore_result=True,
        reply_to="rq",
        link=link,
        link_error=link,
        chain=[link],
        chord=chord,
        headers={"custom": "c"},
    )
    msg = decode_task(encode_task(sent))
    got = context_for(msg, "the-queue", hostname="w@h")
    assert (got.id, got.task, got.args, dict(got.kwargs)) == ("the-id", "t.name", (1,), {"k": 2})
    assert (got.retries, got.eta, got.expires, got.group, got.group_index) == (4, eta, eta, "g", 1)
    assert (got.root_id, got.parent_id, got.origin, got.shadow) == ("r", "p", "o", "sh")
    assert got.chord == chord
    assert list(got.callbacks or ()) == list(got.errbacks or ()) == list(got.chain or ()) == [link]
    assert got.delivery_info == {
        "exchange": "",
        "routing_key": "the-queue",
        "priority": 3,
        "redelivered": False,
    }
    assert (got.hostname, got.is_eager, got.headers) == ("w@h", False, {"custom": "c"})
    assert (got.reply_to, got.correlation_id, got.ignore_result) == ("rq", "the-id", True)
    assert (got.timelimit, got.time_limit, got.soft_time_limit) == ((9.0, 8.0), 9.0, 8.0)
    assert (got.argsrepr, got.kwargsrepr) == ("(1,)", "{'k': 2}")
    assert (got.replaced_task_nesting, got.stamped_headers, got.stamps) == (0, None, {})
    assert got.properties == {
        "correlation_id": "the-id",
        "reply_to": "rq",
        "priority": 3,
        "delivery_mode": 2,
    }
    assert (got.utc, got.children) == (True, [])
    eager = context_for(msg, "q", is_eager=True)
    assert eager.is_eager is True
    assert eager.delivery_info == {
        "exchange": "",
        "routing_key": "q",
        "priority": 3,
        "is_eager": True,
    }
    # Each call gets its own mutable parts.
    again = context_for(msg, "the-queue", hostname="w@h")
    assert again == got
    assert again.children is not got.children and again.headers is not got.headers


def test_is_async_follows_a_replaced_function() -> None:
    app = App("fast-async", broker="memory://fast-async")

    @app.task(name="t.sync")
    def sync() -> None:
        return None

    async def coro() -> None:
        return None

    assert sync.is_async is False
    assert sync.is_async is False  # asked again: the remembered answer
    sync.fn = coro  # type: ignore[assignment]
    assert sync.is_async is True
    asyncio.run(coro())  # not left unawaited


def test_a_thread_job_waits_for_a_slot_and_frees_it() -> None:
    """Two threads and one slot (a pool shrunk to one): the second job waits at the slot
    until the first frees it."""
    app = App("fast-slots", broker="memory://fast-slots")
    gate = threading.Event()
    entered = threading.Event()

    @app.task(name="t.block", ignore_result=True)
    def block() -> None:
        entered.set()
        gate.wait(10)

    @app.task(name="t.quick", ignore_result=True)
    def quick() -> None:
        return None

    pool = ThreadPool(app, 2, set(), "w@h")
    pool.resize(1)
    done: list[tuple[str, Outcome]] = []
    finished = threading.Event()

    def on_done(job: Job, outcome: Outcome) -> None:
        done.append((job.name, outcome))
        if len(done) == 2:
            finished.set()

    def job(name: str) -> Job:
        wire = encode_task(new_task_message(name))
        delivery = Delivery("q", wire, tag=name)
        return Job(delivery, decode_task(wire), app.tasks[name], True, None, None, "w@h")

    try:
        pool.submit(job("t.block"), on_done)
        assert entered.wait(10)
        pool.submit(job("t.quick"), on_done)
        # Both threads run, the second one waits at the slot.
        assert len(pool._threads) == 2
        assert not finished.wait(0.2)
        assert done == []
        gate.set()
        assert finished.wait(10)
        assert [name for name, _ in done] == ["t.block", "t.quick"]
        assert all(o.action == "ack" for _, o in done)
        assert pool._busy == 0
    finally:
        gate.set()
        pool.close()


def _admitted(worker: Worker, delivery: Delivery) -> tuple[Job, float, Outcome | None] | None:
    transport = open_transport("memory://fast-admit")
    consumer = transport.consumer([QUEUE])
    return worker._admit(Admission(transport, consumer, delivery))


QUEUE = "fast-admit"


def _worker() -> Worker:
    app = App("fast-admit", broker="memory://fast-admit")

    @app.task(name="t.plain", acks_late=True)
    def plain(x: int) -> int:
        return x

    @app.task(name="t.early", acks_late=False)
    def early() -> None:
        return None

    @app.task(name="t.limited", soft_time_limit=5)
    def limited() -> None:
        return None

    @app.task(name="t.rated", rate_limit="1000/s")
    def rated() -> None:
        return None

    open_transport("memory://fast-admit").declare_queue(QueueSpec(QUEUE))
    return Worker(app, queues=[QUEUE])


def _delivery(name: str, redelivered: bool = False, deliveries: int | None = None,
              headers: dict[str, object] | None = None, **options: object) -> Delivery:  # fmt: skip
    wire = encode_task(new_task_message(name, (1,) if name == "t.plain" else (), **options))  # type: ignore[arg-type]
    if headers:
        wire = WireMessage(wire.body, wire.content_type, wire.content_encoding,
                           {**wire.headers, **headers}, wire.properties)  # fmt: skip
    return Delivery(QUEUE, wire, tag=1, redelivered=redelivered, deliveries=deliveries)


def test_a_plain_message_skips_to_the_same_job_the_checks_make() -> None:
    worker = _worker()
    for name, late in (("t.plain", True), ("t.early", False)):
        first = _admitted(worker, _delivery(name))  # the task's first: the full path
        assert first is not None
        second = _delivery(name)
        a = Admission(None, None, second)  # type: ignore[arg-type]
        assert worker._decoded(a)
        fast = worker._plain_job(a)
        assert fast is not None
        assert (fast.acks_late, fast.soft_limit, fast.hard_limit) == (late, None, None)
        assert (fast.delivery, fast.task, fast.hostname) == (second, worker.app.tasks[name],
                                                             worker.hostname)  # fmt: skip
        # The same message through every check (an admission that is not the worker's own).
        worker.admission = tuple(worker._own_checks)
        full = _admitted(worker, second)
        worker.admission = worker._own_checks
        assert full is not None
        job, wait, refused = full
        assert (wait, refused) == (0.0, None)
        assert (job.delivery, job.message, job.task, job.acks_late, job.soft_limit,
                job.hard_limit, job.hostname) == (fast.delivery, fast.message, fast.task,
                fast.acks_late, fast.soft_limit, fast.hard_limit, fast.hostname)  # fmt: skip


def test_what_a_check_can_act_on_takes_the_checks() -> None:
    worker = _worker()
    assert _admitted(worker, _delivery("t.plain")) is not None
    assert _admitted(worker, _delivery("t.rated")) is not None
    assert _admitted(worker, _delivery("t.limited")) is not None
    worker.set_time_limits("t.plain", None, 30.0)
    remote = _delivery("t.plain")
    worker.time_limits.clear()
    not_plain = [
        _delivery("t.plain", eta=datetime(2030, 1, 1, tzinfo=UTC)),
        _delivery("t.plain", time_limit=10.0),
        _delivery("t.plain", soft_time_limit=10.0),
        _delivery("t.plain", redelivered=True),
        _delivery("t.plain", deliveries=worker.max_deliveries + 1),
        _delivery("t.plain", headers={DELIVERY_COUNT_HEADER: 1}),
        _delivery("t.rated"),  # has a bucket
        _delivery("t.limited"),  # the task's own soft limit
        _delivery("t.unknown"),
    ]
    for delivery in not_plain:
        a = Admission(None, None, delivery)  # type: ignore[arg-type]
        assert worker._decoded(a)
        assert worker._plain_job(a) is None, delivery
    worker.set_time_limits("t.plain", None, 30.0)
    a = Admission(None, None, remote)  # type: ignore[arg-type]
    assert worker._decoded(a)
    assert worker._plain_job(a) is None
    # And through _admit the checks do act: the remote limit reaches the job.
    admitted = _admitted(worker, remote)
    assert admitted is not None and admitted[0].hard_limit == 30.0
    # A worker with events on, or a step, never takes the short path.
    worker.time_limits.clear()
    assert worker._plain
    worker.send_events = True
    assert not worker._plain
    worker.send_events = False
    worker.steps.append(Step())
    assert not worker._plain


def test_early_acks_of_a_fetched_batch_go_in_one_call_before_the_tasks_run() -> None:
    name = f"early-{uuid.uuid4().hex}"
    url = f"memory://{name}"
    app = App("early", broker=url, task_default_queue=name)
    acked: set[str] = set()
    calls: list[int] = []
    seen: dict[str, bool] = {}
    all_ran = threading.Event()
    count = 40

    @app.task(name="t.early", acks_late=False, ignore_result=True)
    def early(i: int) -> None:
        # Its own message was acked before it started (at most once, as acks_late=False asks).
        seen[early.request.id] = early.request.id in acked
        if len(seen) == count:
            all_ran.set()

    worker = Worker(app, concurrency=4)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(10)
    real_ack = worker._consumer.ack

    def counting(deliveries: Any) -> None:
        batch = list(deliveries)
        calls.append(len(batch))
        acked.update(d.message.headers["id"] for d in batch)
        real_ack(batch)

    worker._consumer.ack = counting  # type: ignore[method-assign]
    sender = open_transport(url)
    # All at once (one lock of the memory broker): the first fetch takes a full prefetch.
    sender.publish_many(
        name, [encode_task(new_task_message("t.early", (i,))) for i in range(count)]
    )
    try:
        assert all_ran.wait(10)
    finally:
        worker.stop()
        thread.join(10)
    assert len(seen) == count and all(seen.values())
    assert sum(calls) == count
    assert max(calls) > 1  # a batch in one call, not one call per message
    assert sender.queue_length(name) == 0
