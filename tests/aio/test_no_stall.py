"""No blocking call on the event loop while sending and awaiting results (Redis, RabbitMQ with
both result backends, SQLite): the loop's longest stall stays far below anything a blocking
broker round trip or a blocking wait would cause."""

from __future__ import annotations

import asyncio

import pytest

from bench.peers.stall import StallMeter
from celeriac import App

from .conftest import Tasks, run

# Generous on purpose: a shared 2-core machine and a worker thread in this same process (the
# GIL) delay ticks by a few ms; a blocking wait for a result would stall for the task's whole
# run, a blocking publish for a broker round trip under load.
BOUND = 0.1
CALLS = 200


@pytest.mark.parametrize("running", ["redis", "amqp", "rpc", "sqlite"], indirect=True)
def test_the_loop_never_stalls_while_awaiting_results(
    running: tuple[App, Tasks], record_property: pytest.RecordProperty
) -> None:
    _, tasks = running

    async def one(i: int) -> int:
        result = await tasks.add.adelay(i, 1)
        value: int = await result.aget(timeout=60)
        return value

    async def main() -> tuple[list[int], StallMeter]:
        async with StallMeter() as meter:
            values = await asyncio.gather(*(one(i) for i in range(CALLS)))
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
