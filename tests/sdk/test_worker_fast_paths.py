"""The worker's per-task shortcuts (issue 23) keep what they replace: the request a task sees,
whether a task is async, and the thread pool's slots."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import fields
from datetime import UTC, datetime

from celeriac import App
from celeriac.protocol import decode_task, encode_task, new_task_message
from celeriac.task import Context
from celeriac.transports import Delivery
from celeriac.worker.job import Job, Outcome
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
