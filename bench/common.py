"""What every part of ``python -m bench`` shares: broker URLs, worker processes, queue probes,
RSS of a process tree, and medians."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REDIS = os.environ.get("CELERIAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: A database of its own (9; results in 10): the test suite shares the server and its db 0.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", _REDIS.rsplit("/", 1)[0] + "/9")
AMQP_URL = os.environ.get("CELERIAC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
SQS_URL = os.environ.get("CELERIAC_TEST_SQS_URL", "sqs://x:x@127.0.0.1:9324")
KAFKA_URL = os.environ.get("CELERIAC_TEST_KAFKA_URL", "kafka://127.0.0.1:19092")
ZOOKEEPER_URL = os.environ.get("CELERIAC_TEST_ZOOKEEPER_URL", "zookeeper://127.0.0.1:2181")
#: Results of round trips go to Redis db 10 for every system (and for every broker).
BACKEND_URL = REDIS_URL.rsplit("/", 1)[0] + "/10"
REPO = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def broker_url(name: str) -> str:
    return {"redis": REDIS_URL, "amqp": AMQP_URL, "sqs": SQS_URL}[name]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def quantiles(times: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 in seconds of a sample of durations."""
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98]}


# -- processes and memory ------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def rss(pid: int) -> int:
    """Resident bytes of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def cpu(pid: int) -> float:
    """User + system CPU seconds one process has used (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # After the command name in parentheses: state is field 3, utime 14, stime 15.
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a whole process tree's live processes."""
    return sum(cpu(p) for p in tree(pid))


def tree_rss(pid: int) -> int:
    """Resident bytes of a whole process tree (a worker with its pool's children)."""
    return sum(rss(p) for p in tree(pid))


@dataclass
class Worker:
    """A worker of any system in its own session (so its whole tree can be stopped)."""

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> Worker:
        self.log = Path(f"/tmp/celeriac-bench-worker-{os.getpid()}-{time.monotonic_ns()}.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"worker {list(self.argv)[:6]} exited:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""

    def rss(self) -> int:
        return tree_rss(self.proc.pid) if self.proc else 0

    def processes(self) -> int:
        return len(tree(self.proc.pid)) if self.proc else 0

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid) if self.proc else 0.0

    def stop(self, timeout: float = 15) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self.log is not None:
            with contextlib.suppress(OSError):
                self.log.unlink()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- queue probes --------------------------------------------------------------------------------
class Probe:
    """Reads a queue's length straight from the broker (no SDK in between)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: Any = None
        self._ch: Any = None
        self._conn: Any = None

    def length(self, key: str) -> int:
        if self.url.startswith("redis"):
            if self._redis is None:
                import redis

                self._redis = redis.Redis.from_url(self.url)
            return int(self._redis.llen(key))
        if self.url.startswith("amqp"):
            import pika

            from celeriac.transports.amqp.connection import parameters

            if self._ch is None or not self._ch.is_open:
                self._conn = pika.BlockingConnection(parameters(self.url))
                self._ch = self._conn.channel()
            try:
                return int(self._ch.queue_declare(key, passive=True).method.message_count)
            except Exception:  # not declared yet: the worker declares it
                self._ch = None
                return 0
        from celeriac.transports import open_transport

        if self._conn is None:
            self._conn = open_transport(self.url)
        return int(self._conn.queue_length(key))

    def delete(self, *keys: str) -> None:
        with contextlib.suppress(Exception):
            if self.url.startswith("redis"):
                self.length(keys[0])
                self._redis.delete(*keys)
            elif self.url.startswith("amqp"):
                self.length(keys[0])
                for k in keys:
                    self._ch.queue_delete(k)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._redis is not None:
                self._redis.close()
            if (self.url.startswith("amqp") and self._conn is not None) or self._conn is not None:
                self._conn.close()


@dataclass
class Drain:
    rate: float
    rss_loaded: int
    processes: int
    drained: int
    #: CPU seconds the worker's tree used over the timed span (less sensitive to a busy
    #: machine than the rate: what other processes take from the cores is not counted).
    cpu: float = 0.0


def drain(
    worker: Worker,
    probe: Probe,
    key: str,
    expected: int,
    timeout: float = 600,
    poll: float = 0.01,
    done: Callable[[], int] | None = None,
    stall: float = 120,
) -> Drain:
    """Start ``worker`` on a preloaded queue and time it from its first take to an empty queue
    or, given ``done`` (how many tasks have finished), to the last task finished.

    The clock starts at the first sample below the preloaded length (so start-up is not
    counted) and the rate counts what was left at that sample (not yet finished, with
    ``done``). Memory is sampled throughout. Fails after ``timeout`` s, or ``stall`` s without
    progress (tasks that fail and are redelivered forever, a worker that hangs).
    """
    initial = probe.length(key)
    if initial < expected * 0.9:
        raise RuntimeError(f"{key}: only {initial} of {expected} messages preloaded")
    worker.start()
    spawned = time.perf_counter()
    deadline = time.monotonic() + timeout
    t0 = left = None
    cpu0 = 0.0
    peak = procs = 0
    next_rss = 0.0
    seen, moved = (-1, -1), time.monotonic()
    while True:
        n = probe.length(key)
        finished = done() if done is not None else 0
        now = time.perf_counter()
        if (n, finished) != seen:
            seen, moved = (n, finished), time.monotonic()
        if t0 is None and n < initial:
            t0, left = now, (expected - finished if done is not None else n)
            cpu0 = worker.cpu()
        if time.monotonic() >= next_rss:
            peak, procs = max(peak, worker.rss()), max(procs, worker.processes())
            next_rss = time.monotonic() + 0.1
        if t0 is not None and (finished >= expected if done is not None else n == 0):
            break
        worker.check()
        if time.monotonic() > deadline or time.monotonic() - moved > stall:
            raise RuntimeError(
                f"{key}: {n} messages left, {finished} done, no progress for "
                f"{time.monotonic() - moved:.0f} s\n{worker.tail()[-1500:]}"
            )
        time.sleep(poll)
    peak, cpu1 = max(peak, worker.rss()), worker.cpu()
    assert t0 is not None and left is not None
    if left < initial / 2:
        # Most of it went in the first fetch (a few big messages): count from the spawn,
        # start-up included, which understates the rate rather than inventing one.
        return Drain(initial / max(now - spawned, 1e-6), peak, procs, initial, cpu1)
    return Drain(left / max(now - t0, 1e-6), peak, procs, left, cpu1 - cpu0)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def python() -> str:
    return sys.executable


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
