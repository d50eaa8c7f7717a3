"""Awaiting Redis results with redis-py's asyncio client: one pub/sub connection per event
loop listens on every awaited ``celery-task-meta-<id>`` channel, so a thousand waiters cost
one connection and no thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from celeriac.protocol.results import ResultRecord, decode_result, result_key
from celeriac.protocol.states import READY_STATES

__all__ = ["RedisAsyncWatcher"]

log = logging.getLogger("celeriac.backends")
_PREFIX = result_key("")
# Reads at most this many records at once, and keeps this many connections besides pub/sub.
_BATCH = 500
_CONNECTIONS = 8
#: The longest the watcher decodes and hands out records before it lets the loop run others.
_SLICE = 0.001
#: Channels of finished waits are dropped together, at most this often: one UNSUBSCRIBE per
#: result would cost the loop as much as reading the result.
_DROP_EVERY = 0.05
#: After this long without a message, every record is read again (one lost to a reconnect).
_QUIET = 0.5


def _bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


class RedisAsyncWatcher:
    """Waiters of one event loop: subscribe, then read the record, then wait for its message
    (the first two batched over every waiter that arrived in the same turn of the loop)."""

    def __init__(self, url: str, decode: Callable[[bytes], ResultRecord] = decode_result) -> None:
        self._decode = decode
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=_CONNECTIONS, socket_connect_timeout=5
        )
        self.client = aioredis.Redis(connection_pool=pool)
        # Confirmations are read and skipped here: redis-py reports an ignored one as None, the
        # same as a timeout, and a timeout is what makes us read every record again.
        self.pubsub = self.client.pubsub()
        self._waiting: dict[str, list[asyncio.Future[ResultRecord]]] = {}
        self._unsubscribe: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._new: list[str] = []
        self._registering: asyncio.Task[None] | None = None

    async def wait(self, task_id: str, timeout: float | None) -> ResultRecord:
        """The record of ``task_id`` once it is ready; TimeoutError after ``timeout`` s."""
        future: asyncio.Future[ResultRecord] = asyncio.get_running_loop().create_future()
        futures = self._waiting.setdefault(task_id, [])
        futures.append(future)
        if len(futures) == 1:
            self._unsubscribe.discard(task_id)
            self._new.append(task_id)
            if self._registering is None or self._registering.done():
                self._registering = asyncio.create_task(self._register())
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"task {task_id} not ready after {timeout} s") from None
        finally:
            left = self._waiting.get(task_id)
            if left is not None:
                if future in left:
                    left.remove(future)
                if not left:
                    del self._waiting[task_id]
                    self._unsubscribe.add(task_id)

    async def _register(self) -> None:
        # Every id first awaited in this turn of the loop: one SUBSCRIBE, then one MGET (per
        # _BATCH), so a burst of waiters costs two commands, not two per waiter.
        await asyncio.sleep(0)
        while self._new:
            ids = [t for t in self._new if t in self._waiting]
            self._new = []
            try:
                for start in range(0, len(ids), _BATCH):
                    chunk = ids[start : start + _BATCH]
                    if self.pubsub.connection is None:
                        await self.pubsub.connect()  # type: ignore[no-untyped-call]
                    await self.pubsub.subscribe(*(result_key(t) for t in chunk))
                    if self._reader is None or self._reader.done():
                        self._reader = asyncio.create_task(
                            self._read(), name="celeriac-redis-results"
                        )
                    # Subscribed first, then read: a record written in between is not missed.
                    raws = await self.client.mget([result_key(t) for t in chunk])
                    await self._offer_read(chunk, raws)
            except Exception as exc:  # these waiters learn what failed instead of hanging
                log.warning("subscribing to Redis results failed: %s", exc)
                for task_id in ids:
                    for future in self._waiting.pop(task_id, []):
                        if not future.done():
                            future.set_exception(exc)

    async def _offer_read(self, ids: list[str], raws: list[bytes | str | None]) -> None:
        # Decoding and waking 500 waiters at once would hold the loop for tens of ms.
        started = time.perf_counter()
        for task_id, raw in zip(ids, raws, strict=True):
            if raw is not None and task_id in self._waiting:
                self._offer(task_id, self._decode(_bytes(raw)))
                if time.perf_counter() - started > _SLICE:
                    await asyncio.sleep(0)
                    started = time.perf_counter()

    def _offer(self, task_id: str, record: ResultRecord) -> None:
        if record.status not in READY_STATES:
            return
        for future in self._waiting.pop(task_id, []):
            if not future.done():
                future.set_result(record)
        self._unsubscribe.add(task_id)

    async def _read(self) -> None:
        # Runs while anyone waits, so a loop that ends without ``aclose`` has no task left.
        try:
            started = dropped = time.perf_counter()
            while self._waiting and not self._closing:
                if time.perf_counter() - dropped > _DROP_EVERY:
                    await self._drop_channels()
                    dropped = time.perf_counter()
                message = await self.pubsub.get_message(timeout=_QUIET)
                if message is None:
                    await self._reread()  # quiet for a while: a message lost to a reconnect
                elif message["type"] == "message":
                    channel = message["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else channel
                    self._offer(name[len(_PREFIX) :], self._decode(_bytes(message["data"])))
                # Messages already buffered are read without a pause: let the loop run others.
                if time.perf_counter() - started > _SLICE:
                    await asyncio.sleep(0)
                    started = time.perf_counter()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every waiter learns what failed instead of hanging
            log.warning("reading Redis result notifications failed: %s", exc)
            waiting, self._waiting = self._waiting, {}
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)

    async def _drop_channels(self) -> None:
        gone = [result_key(t) for t in self._unsubscribe if t not in self._waiting]
        self._unsubscribe.clear()
        if gone:
            await self.pubsub.unsubscribe(*gone)

    async def _reread(self) -> None:
        ids = list(self._waiting)
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            raws = await self.client.mget([result_key(t) for t in chunk])
            await self._offer_read(chunk, raws)

    async def aclose(self) -> None:
        """Stop listening and close both connections (waiters get CancelledError)."""
        self._closing = True
        for task in (self._registering, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()
        await self.pubsub.aclose()
        await self.client.aclose()
