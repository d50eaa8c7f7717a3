"""The asyncio client against a real worker: send, await, fail, time out, group, control."""

from __future__ import annotations

import pytest

from celeriac import App, group

from .conftest import Tasks, run

ALL = ["memory", "sqlite", "redis", "amqp", "rpc", "sqs", "kafka", "zookeeper"]


@pytest.mark.parametrize("running", ALL, indirect=True)
def test_adelay_then_await(running: tuple[App, Tasks]) -> None:
    app, tasks = running

    async def main() -> tuple[int, int, int]:
        first = await tasks.add.adelay(2, 3)
        second = await tasks.adouble.aapply_async((21,))
        sent = await app.asend_task(tasks.add.name, (1, 1))
        return await first, await second.aget(timeout=20), await sent.aget(timeout=20)

    assert run(main()) == (5, 42, 2)


@pytest.mark.parametrize("running", ["sqlite", "redis", "rpc"], indirect=True)
def test_failure_is_raised_or_returned(running: tuple[App, Tasks]) -> None:
    _, tasks = running

    async def main() -> BaseException:
        result = await tasks.fail.adelay("boom")
        with pytest.raises(ValueError, match="boom"):
            await result.aget(timeout=20)
        returned: BaseException = await result.aget(timeout=1, propagate=False)
        return returned

    exc = run(main())
    assert isinstance(exc, ValueError) and str(exc) == "boom"


@pytest.mark.parametrize("running", ["sqlite", "redis", "rpc"], indirect=True)
def test_aget_times_out_and_the_loop_goes_on(running: tuple[App, Tasks]) -> None:
    _, tasks = running

    async def main() -> int:
        result = await tasks.gated.adelay(7)
        with pytest.raises(TimeoutError, match=rf"task {result.id} not ready after 0\.2 s"):
            await result.aget(timeout=0.2)
        tasks.gate.set()
        value: int = await result.aget(timeout=20)  # a timed-out wait leaves nothing behind
        return value

    assert run(main()) == 7


@pytest.mark.parametrize("running", ["sqlite", "redis"], indirect=True)
def test_async_for_yields_results_as_they_finish(running: tuple[App, Tasks]) -> None:
    _, tasks = running
    sent = group([tasks.gated.s(0), tasks.add.s(1, 1), tasks.add.s(2, 2)]).apply_async()

    async def main() -> list[int]:
        order = []
        async for result in sent:
            order.append(await result)
            if len(order) == 2:  # the two quick ones came first, the gated one is still held
                tasks.gate.set()
        return order

    order = run(main())
    assert sorted(order[:2]) == [2, 4] and order[2] == 0
    assert run(sent.aget(timeout=20)) == [0, 2, 4]


@pytest.mark.parametrize("running", ["redis"], indirect=True)
def test_group_times_out_as_a_whole(running: tuple[App, Tasks]) -> None:
    _, tasks = running
    sent = group([tasks.gated.s(1), tasks.add.s(1, 1)]).apply_async()

    async def main() -> None:
        with pytest.raises(TimeoutError, match=r"a group of 2 tasks not ready after 0\.3 s"):
            async for _ in sent.as_completed(timeout=0.3):
                pass

    run(main())


@pytest.mark.parametrize("running", ["redis", "amqp"], indirect=True)
def test_control_ping_and_inspect(running: tuple[App, Tasks]) -> None:
    app, tasks = running

    async def main() -> tuple[list[dict[str, object]], dict[str, object]]:
        me = [app.worker_hostname]  # type: ignore[attr-defined]  # the broker is shared
        pongs = await app.acontrol.ping(me, timeout=5)
        registered = await app.acontrol.inspect(me, timeout=5).registered()
        return pongs, registered

    pongs, registered = run(main())
    assert len(pongs) == 1 and list(pongs[0].values()) == [{"ok": "pong"}]
    assert [tasks.add.name in names for names in registered.values()] == [True]


@pytest.mark.parametrize("running", ["redis", "sqlite"], indirect=True)
def test_aclose_then_reuse(running: tuple[App, Tasks]) -> None:
    app, tasks = running

    async def once() -> int:
        await app.aopen()
        try:
            return await (await tasks.add.adelay(3, 4)).aget(timeout=20)
        finally:
            await app.aclose()

    assert run(once()) == 7
    assert run(once()) == 7  # a second loop opens its own connections


def test_the_io_thread_sees_the_callers_request() -> None:
    from celeriac.aio import in_io_thread
    from celeriac.task import Context, _request, current_request

    async def main() -> str | None:
        token = _request.set(Context(id="parent-1", root_id="root-1"))
        try:
            # send_task reads the parent's ids from here, on the I/O thread
            seen = await in_io_thread(current_request)
        finally:
            _request.reset(token)
        return seen.id

    assert run(main()) == "parent-1"


def test_eager_tasks_run_on_the_io_thread_and_are_awaitable() -> None:
    app = App("eager", broker="memory://aio-eager", backend="memory://aio-eager",
              task_always_eager=True)  # fmt: skip

    @app.task
    def mul(x: int, y: int) -> int:
        return x * y

    async def main() -> int:
        value: int = await (await mul.adelay(6, 7))
        return value

    assert run(main()) == 42
