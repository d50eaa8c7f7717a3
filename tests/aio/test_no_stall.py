"""No blocking call on the event loop while sending and awaiting results (Redis, RabbitMQ with
both result backends, SQLite): the loop's longest stall stays far below anything a blocking
broker round trip or a blocking wait would cause. The worker runs in a process of its own, so
its threads do not compete with the loop for this process's GIL."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.peers.stall import StallMeter
from celeriac import App
from tests.brokers import REDIS_URL
from tests.transports.conftest import url_for

from .conftest import run

# Generous on purpose: a shared 2-core machine delays ticks by a few ms, and a turn of the loop
# that resumes many coroutines at once takes some too; a blocking wait for a result would stall
# for the task's whole run, a blocking send for a broker round trip per call.
BOUND = 0.1
CALLS = 200
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["redis", "amqp", "rpc", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    broker = str(request.param)
    settings = {
        "CELERIAC_BROKER_URL": url_for("amqp" if broker == "rpc" else broker, tmp_path),
        "CELERIAC_RESULT_BACKEND": {"redis": REDIS_URL.rsplit("/", 1)[0] + "/3",
                                    "rpc": "rpc://"}.get(broker, f"sqlite:///{tmp_path}/r.db"),
        "CELERIAC_TASK_DEFAULT_QUEUE": f"stall.{uuid.uuid4().hex[:8]}",
    }  # fmt: skip
    worker = subprocess.Popen(
        [CELERIAC, "worker", "-A", "tests.aio.apps.stall:app", "-c", "4", "-l", "warning",
         "-n", f"stall-{uuid.uuid4().hex[:8]}@test"],
        env={**os.environ, **settings}, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    client = App("client", broker=settings["CELERIAC_BROKER_URL"],
                 backend=settings["CELERIAC_RESULT_BACKEND"],
                 task_default_queue=settings["CELERIAC_TASK_DEFAULT_QUEUE"])  # fmt: skip
    try:
        yield client
    finally:
        client.close()
        worker.terminate()
        worker.wait(30)


def test_the_loop_never_stalls_while_awaiting_results(
    app: App, record_property: pytest.RecordProperty
) -> None:
    async def one(i: int) -> int:
        result = await app.asend_task("stall.add", (i, 1))
        value: int = await result.aget(timeout=60)
        return value

    async def main() -> tuple[list[int], StallMeter]:
        assert await one(0) == 1  # the worker is up and every connection open
        # A full garbage collection of this test process (everything earlier tests left) stops
        # every thread for tens of ms on a loaded machine: not a blocking call, and not ours.
        gc.collect()
        gc.freeze()
        try:
            async with StallMeter() as meter:
                values = await asyncio.gather(*(one(i) for i in range(CALLS)))
        finally:
            gc.unfreeze()
        await app.aclose()
        return values, meter

    values, meter = run(main())
    record_property("longest_stall_ms", round(meter.longest * 1000, 2))
    print(f"longest stall {meter.longest * 1000:.2f} ms over {meter.ticks} ticks")
    assert values == [i + 1 for i in range(CALLS)]
    assert meter.ticks > 10, "the ticker did not run: the loop was blocked throughout"
    assert meter.longest < BOUND, f"the event loop stalled for {meter.longest * 1000:.1f} ms"


def test_the_meter_sees_a_blocking_call() -> None:
    import time

    async def main() -> float:
        async with StallMeter() as meter:
            await asyncio.sleep(0.01)
            time.sleep(0.15)  # the blocking call the meter must catch
            await asyncio.sleep(0.01)
        return meter.longest

    assert run(main()) >= 0.1
