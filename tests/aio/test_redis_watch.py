"""Awaiting Redis results with the asyncio watcher, on a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from celeriac.backends import redis_watch
from celeriac.backends.redis_watch import RedisAsyncWatcher
from celeriac.protocol.results import ResultRecord, encode_result, result_key
from tests.brokers import REDIS_URL

from .conftest import run

URL = REDIS_URL.rsplit("/", 1)[0] + "/3"


def test_a_burst_of_waiters_reads_the_records_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every subscription is confirmed by a message of its own; taking those for the quiet
    # spell that makes the watcher read every record again cost a read of all waiters per
    # confirmation (found at 1,000 concurrent callers: tens of ms of the loop each time).
    monkeypatch.setattr(redis_watch, "_QUIET", 30.0)  # no rereading after a quiet spell
    ids = [uuid.uuid4().hex for _ in range(600)]
    sync = redis.Redis.from_url(URL)
    for tid in ids[:300]:  # half ready before anyone waits, half announced later
        sync.set(result_key(tid), encode_result(ResultRecord(tid, "SUCCESS", tid)), ex=60)

    async def main() -> tuple[list[ResultRecord], int]:
        watcher = RedisAsyncWatcher(URL)
        reads = 0
        mget = watcher.client.mget

        async def counted(keys: list[str]) -> object:
            nonlocal reads
            reads += len(keys)
            return await mget(keys)

        watcher.client.mget = counted  # type: ignore[method-assign]
        try:
            waits = [asyncio.ensure_future(watcher.wait(tid, timeout=30)) for tid in ids]
            done = await asyncio.gather(*waits[:300])  # subscribed and read by now
            for tid in ids[300:]:
                record = encode_result(ResultRecord(tid, "SUCCESS", tid))
                sync.set(result_key(tid), record, ex=60)
                sync.publish(result_key(tid), record)
            done += await asyncio.gather(*waits[300:])
            return done, reads
        finally:
            await watcher.aclose()

    try:
        records, reads = run(main())
    finally:
        sync.delete(*(result_key(t) for t in ids))
        sync.close()
    assert [r.result for r in records] == ids
    assert reads == len(ids), f"{reads} records read for {len(ids)} waiters"
