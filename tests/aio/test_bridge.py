"""The I/O thread's batches and the polling watcher, without a broker."""

from __future__ import annotations

import asyncio
import threading

import pytest

from celeriac.aio.bridge import send
from celeriac.backends.watch import PollingWatcher
from celeriac.protocol.results import ResultRecord

from .conftest import run


class Sends:
    """What the I/O thread ran and flushed, in order."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.log: list[str] = []
        self.fail_flush = fail_flush
        self.lock = threading.Lock()

    def call(self, i: int) -> int:
        if i == 3:
            raise ValueError("send 3 refused")
        with self.lock:
            self.log.append(f"send {i}")
        return i

    def flush(self) -> None:
        with self.lock:
            self.log.append("flush")
        if self.fail_flush:
            raise ConnectionError("broker went away before acknowledging")


def test_concurrent_sends_are_flushed_in_batches_before_their_callers_resume() -> None:
    sends = Sends()

    async def one(i: int) -> tuple[int, int]:
        value = await send(sends.flush, sends.call, i)
        with sends.lock:  # where the last flush stands in the log as this caller resumes
            last_flush = max((n for n, e in enumerate(sends.log) if e == "flush"), default=-1)
            return value, last_flush

    async def main() -> list[object]:
        return await asyncio.gather(*(one(i) for i in range(50)), return_exceptions=True)

    outcomes = run(main())
    assert isinstance(outcomes[3], ValueError)  # its own error; the others are unaffected
    values = [o[0] for o in outcomes if isinstance(o, tuple)]
    assert values == [i for i in range(50) if i != 3]
    flushes = sends.log.count("flush")
    assert 1 <= flushes < 10, sends.log  # batched: far fewer flushes than sends
    for value, last_flush in (o for o in outcomes if isinstance(o, tuple)):
        assert sends.log.index(f"send {value}") < last_flush  # flushed before it resumed


def test_a_failed_flush_fails_every_send_of_its_batch() -> None:
    sends = Sends(fail_flush=True)

    async def main() -> list[object]:
        return await asyncio.gather(*(send(sends.flush, sends.call, i) for i in (0, 1, 2)),
                                    return_exceptions=True)  # fmt: skip

    outcomes = run(main())
    assert all(isinstance(o, ConnectionError) for o in outcomes), outcomes


def test_the_polling_watcher_drops_waiters_that_gave_up() -> None:
    records: dict[str, ResultRecord] = {}
    watcher = PollingWatcher(lambda tid: records.get(tid, ResultRecord(tid, "PENDING")))

    async def main() -> ResultRecord:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(watcher.watch("a")), 0.05)
        waiting = asyncio.wrap_future(watcher.watch("b"))
        records["b"] = ResultRecord("b", "SUCCESS", 7)
        return await asyncio.wait_for(waiting, 5)

    try:
        assert run(main()).result == 7
        assert watcher._pending_ids() == []  # "a" was dropped, "b" answered
    finally:
        watcher.close()


def test_the_polling_watcher_asks_again_after_a_transient_error() -> None:
    answers: list[ResultRecord | Exception] = [
        ConnectionError("blip"),
        ResultRecord("c", "SUCCESS", 1),
    ]

    def get(task_id: str) -> ResultRecord:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    watcher = PollingWatcher(get, transient=(ConnectionError,))

    async def main() -> ResultRecord:
        return await asyncio.wait_for(asyncio.wrap_future(watcher.watch("c")), 5)

    try:
        assert run(main()).result == 1
    finally:
        watcher.close()


def test_the_polling_watcher_hands_other_errors_to_the_waiters() -> None:
    def get(task_id: str) -> ResultRecord:
        raise PermissionError("no access to the results table")

    watcher = PollingWatcher(get, transient=(ConnectionError,))

    async def main() -> ResultRecord:
        return await asyncio.wait_for(asyncio.wrap_future(watcher.watch("d")), 5)

    try:
        with pytest.raises(PermissionError, match="results table"):
            run(main())
    finally:
        watcher.close()


def test_as_completed_leaves_the_callers_own_awaits_alone() -> None:
    from celeriac import App, GroupResult

    app = App("asc", broker="memory://aio-asc", backend="memory://aio-asc")
    for tid in ("g1", "g2"):
        app.backend.store(ResultRecord(tid, "SUCCESS", tid))
    results = GroupResult("g", [app.AsyncResult("g1"), app.AsyncResult("g2")], app)

    async def main() -> list[str]:
        seen = []
        async for result in results.as_completed(timeout=0.1):
            await asyncio.sleep(0.2)  # slower than the group's timeout: not cancelled by it
            seen.append(await result)
        return seen

    assert sorted(run(main())) == ["g1", "g2"]  # both were ready: no TimeoutError either


def test_a_large_batch_resumes_every_caller_with_its_own_value() -> None:
    sends = Sends()  # more sends than one turn of the loop settles (SETTLE_CHUNK)

    async def main() -> list[object]:
        calls = (send(sends.flush, sends.call, i) for i in range(300))
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run(main())
    assert [o for i, o in enumerate(outcomes) if i != 3] == [i for i in range(300) if i != 3]
    assert isinstance(outcomes[3], ValueError)


def test_the_sends_of_one_turn_reach_the_io_thread_as_one_batch() -> None:
    sends = Sends()

    async def main() -> list[int]:
        # Every caller queues its send in the same turn: they are handed over together.
        return await asyncio.gather(*(send(sends.flush, sends.call, i) for i in range(4, 200)))

    assert run(main()) == list(range(4, 200))
    assert sends.log.count("flush") == 1, sends.log
    assert sends.log[-1] == "flush"
