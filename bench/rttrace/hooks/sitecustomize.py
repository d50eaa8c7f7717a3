"""Timestamps for bench.rttrace, installed when RTTRACE (a file prefix) and RTTRACE_ROLE are
set; a no-op otherwise (this directory is only on the path of the traced processes)."""

from __future__ import annotations

import atexit
import builtins
import os
import time
from typing import Any

_EVENTS: list[tuple[int, str]] = []


def mark(name: str) -> None:
    _EVENTS.append((time.monotonic_ns(), name))


def _dump() -> None:
    with open(f"{os.environ['RTTRACE']}.{os.getpid()}", "w") as f:
        f.writelines(f"{t} {n}\n" for t, n in _EVENTS)


def _around(owner: Any, attr: str, before: str | None = None, after: str | None = None) -> None:
    call = getattr(owner, attr)

    def traced(*args: Any, **kwargs: Any) -> Any:
        if before:
            mark(before)
        result = call(*args, **kwargs)
        if after:
            mark(after)
        return result

    setattr(owner, attr, traced)


def _worker() -> None:
    from celeriac.backends import redis as backend
    from celeriac.transports.redis import consumer
    from celeriac.worker import threads

    fetch_once = consumer.RedisConsumer._fetch_once

    def fetched(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.monotonic_ns()
        got = fetch_once(self, *args, **kwargs)
        if got:  # only the fetch that brought the message
            _EVENTS.append((began, "worker: fetch script sent"))
            mark("worker: message fetched")
        return got

    consumer.RedisConsumer._fetch_once = fetched  # type: ignore[method-assign]
    _around(consumer.RedisConsumer, "_wait", after="worker: woken by the poke")
    _around(threads.ThreadPool, "submit", before="worker: job to the pool")
    _around(threads.ThreadPool, "run_here", before="worker: job to the pool")
    _around(threads, "execute", before="worker: task starts")
    # Not after: the script's PUBLISH reaches the client before its reply reaches the worker.
    _around(backend.RedisBackend, "store", before="worker: result stored (SET + PUBLISH)")


def _client() -> None:
    from celeriac.backends import redis as backend

    _around(backend.RedisBackend, "get", after="client: first GET back")
    builtins._rttrace_mark = mark  # type: ignore[attr-defined]


if os.environ.get("RTTRACE") and os.environ.get("RTTRACE_ROLE") in ("worker", "client"):
    atexit.register(_dump)
    (_worker if os.environ["RTTRACE_ROLE"] == "worker" else _client)()
