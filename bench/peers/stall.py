"""Measuring how long an event loop was kept from running: a ticker that notes its longest gap.

Plain standard library, so the peers' venvs (Taskiq) import it too (bench/aio.py).

``python -m bench.peers.stall`` is the bystander: a process with nothing but a ticker on its
loop, run beside a measured client until its stdin closes, then printing its own longest stall
as one JSON line. What it saw is the machine's share of a client's stall (other processes on
the same cores, the workers), which no client code can remove.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["StallMeter", "client_settings"]


class StallMeter:
    """Ticks every ``period`` seconds on the running loop; ``longest`` is the worst lateness.

    A blocking call on the loop shows up as a tick that came that much later than due; this
    measures blocking, not speed (a busy machine adds a little, never hundreds of ms).

    After :meth:`mark` (called just before the measured callers start), the first tick's
    lateness is ``startup``: the turn in which the caller's ``gather`` starts every coroutine
    and runs each to its first ``await``. ``waiting`` is the worst lateness after that turn;
    ``waiting_no_gc`` the same with the time garbage collections took out of each tick's
    lateness. ``gc_longest`` is the longest garbage collection (it stops every thread).
    With ``bystander=True``, a bystander process ticks alongside; ``floor`` is its longest stall.
    """

    def __init__(self, period: float = 0.001, bystander: bool = False) -> None:
        self.period = period
        self.longest = 0.0
        self.startup = 0.0
        self.waiting = 0.0
        self.waiting_no_gc = 0.0
        self.gc_longest = 0.0
        self._gcs: list[tuple[float, float]] = []
        self._waits: list[tuple[float, float, float]] = []
        #: (when it ended, CPU seconds) of each turn of the loop that took over 0.5 ms of CPU.
        self._turns: list[tuple[float, float]] = []
        self._unwatch: Any = None
        self._startup_seen = 0.0
        self.turn_cpu = 0.0
        self.floor: float | None = None
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None
        self._marked = False
        self._after_mark = 0
        self._bystander: subprocess.Popen[str] | None = None
        self._want_bystander = bystander
        self._gc_started = 0.0

    def mark(self) -> None:
        """The measured callers start now: the next tick's lateness is their start-up turn."""
        self._marked = True

    async def _tick(self) -> None:
        while True:
            slept = time.perf_counter()
            due = slept + self.period
            await asyncio.sleep(self.period)
            now = time.perf_counter()
            late = now - due
            self.longest = max(self.longest, late)
            self.ticks += 1
            if self._marked:
                self._after_mark += 1
                if self._after_mark == 1:
                    self.startup = late
                    self._startup_seen = now
                else:
                    self.waiting = max(self.waiting, late)
                    self._waits.append((slept, now, late))

    def _watch_turns(self, loop: asyncio.AbstractEventLoop) -> None:
        # Each turn of the loop timed in this thread's CPU time: what the code on the loop
        # itself took, without the time the thread waited for the CPU or the GIL.
        run_once = loop._run_once  # type: ignore[attr-defined]
        turns = self._turns

        def timed() -> None:
            started = time.thread_time()
            run_once()
            spent = time.thread_time() - started
            if spent > 0.0005:
                turns.append((time.perf_counter(), spent))

        loop._run_once = timed  # type: ignore[attr-defined]
        self._unwatch = lambda: delattr(loop, "_run_once")

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            ended = time.perf_counter()
            self.gc_longest = max(self.gc_longest, ended - self._gc_started)
            self._gcs.append((self._gc_started, ended))

    async def __aenter__(self) -> StallMeter:
        if self._want_bystander:
            self._bystander = subprocess.Popen(
                [sys.executable, "-m", "bench.peers.stall"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._bystander.stdout is not None
            if self._bystander.stdout.readline().strip() != "ready":  # before we measure
                raise RuntimeError("the bystander ticker did not start")
        gc.callbacks.append(self._on_gc)
        self._watch_turns(asyncio.get_running_loop())
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        gc.callbacks.remove(self._on_gc)
        if self._unwatch is not None:
            self._unwatch()
        # The longest turn after the start-up turn, in CPU time, collections taken out.
        for ended, spent in self._turns:
            if self._startup_seen and ended > self._startup_seen:
                in_gc = sum(max(0.0, min(end, ended) - max(start, ended - spent))
                            for start, end in self._gcs)  # fmt: skip
                self.turn_cpu = max(self.turn_cpu, spent - in_gc)
        # Settled at the end: a collection's span is noted by a callback that may run after
        # the loop already woke up from it (the GIL changes hands inside the callback).
        for slept, now, late in self._waits:
            in_gc = sum(max(0.0, min(end, now) - max(start, slept)) for start, end in self._gcs)
            self.waiting_no_gc = max(self.waiting_no_gc, late - in_gc)
        if self._bystander is not None:
            out, _ = self._bystander.communicate("", timeout=30)
            self.floor = float(json.loads(out.strip().splitlines()[-1])["stall_ms"]) / 1000

    def figures(self) -> dict[str, float]:
        """What the benchmark reports, in ms."""
        out = {
            "stall_ms": self.longest * 1000,
            "startup_ms": self.startup * 1000,
            "waiting_ms": self.waiting * 1000,
            "waiting_no_gc_ms": self.waiting_no_gc * 1000,
            "gc_ms": self.gc_longest * 1000,
            "turn_cpu_ms": self.turn_cpu * 1000,
            "ticks": self.ticks,
        }
        if self.floor is not None:
            out["floor_ms"] = self.floor * 1000
        return out


def client_settings() -> None:
    """The benchmark's client-process settings, the same for every system: ``BENCH_CLIENT_NICE``
    (the client's nice value), ``BENCH_CLIENT_RT`` (a real-time ``SCHED_FIFO`` priority for
    every thread of the client, so that the workers and brokers sharing its cores wait for it
    instead), ``BENCH_SWITCH_INTERVAL`` (``sys.setswitchinterval``) and ``BENCH_GC_FREEZE=1``
    (start-up objects left out of every later garbage collection, called once warmed up)."""
    nice = os.environ.get("BENCH_CLIENT_NICE")
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    realtime = os.environ.get("BENCH_CLIENT_RT")
    if realtime:
        # Per thread on Linux: the client's I/O threads already run, and later ones inherit it.
        param = os.sched_param(int(realtime))
        for tid in os.listdir("/proc/self/task"):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, param)
    switch = os.environ.get("BENCH_SWITCH_INTERVAL")
    if switch:
        sys.setswitchinterval(float(switch))
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.collect()
        gc.freeze()


async def _bystand() -> float:
    meter = StallMeter()
    async with meter:
        print("ready", flush=True)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        # stdin is read by a thread: the loop itself only ticks.
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        await done.wait()
    return meter.longest


if __name__ == "__main__":
    client_settings()  # the same priority as the client beside it
    print(json.dumps({"stall_ms": asyncio.run(_bystand()) * 1000}), flush=True)
