"""Every measurement of ``python -m bench all``, run in one go; figures are medians of runs."""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .common import AMQP_URL, BACKEND_URL, REDIS_URL, SQS_URL, Drain, Probe, Worker, drain, log
from .proxy import DelayProxy, measured_rtt
from .systems import ALL, Celeriac, Celery, Pool, System

MIB = 1024 * 1024
#: The I/O-bound drain: tasks sleeping 10 ms on 2 worker processes x 100 tasks each.
IO_SECONDS, IO_PROCESSES, IO_CONCURRENCY = 0.010, 2, 100


@dataclass
class Sizes:
    """How much each measurement does (``--quick`` shrinks all of it)."""

    tasks: int = 20_000
    roundtrips: int = 500
    raw: int = 50_000
    io_async: int = 10_000
    io_threads: int = 2_000
    #: Tasks sleeping 10 ms for the I/O-bound drain (a quarter of ``tasks``).
    io_drain: int = 5_000
    payload_counts: dict[int, int] = field(
        default_factory=lambda: {100: 20_000, 10 * 1024: 5_000, MIB: 200}
    )
    proxy_tasks: int = 5_000
    sqs_tasks: int = 2_000
    transport_count: int = 10_000
    quick: bool = False

    @classmethod
    def quick_sizes(cls) -> Sizes:
        return cls(
            tasks=2_000, roundtrips=50, raw=10_000, io_async=2_000, io_threads=300, io_drain=2_000,
            payload_counts={100: 2_000, 10 * 1024: 500, MIB: 20}, proxy_tasks=500,
            sqs_tasks=200, transport_count=1_000, quick=True,
        )  # fmt: skip


URLS = {"redis": REDIS_URL, "amqp": AMQP_URL, "sqs": SQS_URL}


def _queue(system: str) -> str:
    # No dots: SQS and Kombu map dots in queue names; keep names the same everywhere.
    return f"bench-{system}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def running(workers: list[Worker]) -> Iterator[list[Worker]]:
    try:
        for w in workers:
            w.start()
        yield workers
    finally:
        for w in workers:
            w.stop()


class _Group(Worker):
    """Several worker processes started, sampled and stopped as one."""

    def __init__(self, members: list[Worker]) -> None:
        super().__init__(argv=members[0].argv)
        self.members = members

    def start(self) -> _Group:
        for w in self.members:
            w.start()
        return self

    def alive(self) -> bool:
        return all(w.alive() for w in self.members)

    def check(self) -> None:
        for w in self.members:
            w.check()

    def rss(self) -> int:
        return sum(w.rss() for w in self.members)

    def processes(self) -> int:
        return sum(w.processes() for w in self.members)

    def cpu(self) -> float:
        return sum(w.cpu() for w in self.members)

    def tail(self) -> str:
        return "\n".join(w.tail() for w in self.members)[-3000:]

    def stop(self, timeout: float = 15) -> None:
        for w in self.members:
            w.stop(timeout)


def drain_with(
    system: System, url: str, pool: Pool, count: int, payload: int = 0, preload: bool = True,
    queue: str | None = None, worker_url: str | None = None,
    done: Callable[[], int] | None = None,
) -> Drain:  # fmt: skip
    """Preload ``count`` no-op tasks (unless the queue already holds them) and drain them
    (to an empty queue or, given ``done``, to the last task finished: common.drain)."""
    queue = queue or _queue(system.name)
    probe = Probe(url)
    try:
        if preload:
            system.preload(url, queue, count, payload)
        group = _Group(system.workers(worker_url or url, queue, pool))
        try:
            return drain(group, probe, system.key(url, queue), count, done=done)
        finally:
            group.stop()
    finally:
        probe.delete(*system.keys(url, queue))
        probe.close()


def idle_and_roundtrips(system: System, url: str, pool: Pool, count: int) -> dict[str, float]:
    """Start a worker, take its idle RSS once it answered a task, then time round trips."""
    queue = _queue(system.name)
    group = _Group(system.workers(url, queue, pool))
    probe = Probe(url)
    try:
        group.start()
        system.roundtrip(url, queue, 2)  # the worker answers: it is up
        time.sleep(1.0)
        out: dict[str, float] = {"rss_idle": group.rss()}
        out.update(system.roundtrip(url, queue, count))
        return out
    finally:
        group.stop()
        probe.delete(*system.keys(url, queue))
        probe.close()


def compare(broker: str, systems: list[System], sizes: Sizes) -> dict[str, dict[str, Any]]:
    """Publish, drain (best pool), memory and round trips of each system on ``broker``."""
    out: dict[str, dict[str, Any]] = {}
    for system in systems:
        out[system.name] = attempt(
            f"{broker}: {system.label}", lambda system=system: _compare_one(broker, system, sizes)
        )
    return out


def _compare_one(broker: str, system: System, sizes: Sizes) -> dict[str, Any]:
    url = URLS[broker]
    fig: dict[str, Any] = {}
    queue = _queue(system.name)
    n = sizes.sqs_tasks if broker == "sqs" else sizes.tasks
    log(f"{broker}: {system.label} publish {n:,}")
    fig["publish"] = system.publish(url, queue, n)
    if isinstance(system, Celeriac):
        probe = Probe(url)
        if broker != "sqs":  # publish_window is a Redis and RabbitMQ option
            window_queue = _queue("window")
            fig["publish_window"] = system.publish_window(url, window_queue, n)
            probe.delete(window_queue)
        batch_queue = _queue("batch")
        fig["publish_batch"] = system.publish_batch(url, batch_queue, n)
        probe.delete(batch_queue)
        probe.close()
    pools = system.pools[:1] if sizes.quick or broker == "sqs" else system.pools
    best: tuple[Drain, Pool] | None = None
    for i, pool in enumerate(pools):
        log(f"{broker}: {system.label} drain with {pool.label}")
        result = drain_with(system, url, pool, n, preload=i > 0, queue=queue if i == 0 else None)
        fig[f"drain[{pool.label}]"] = result.rate
        if best is None or result.rate > best[0].rate:
            best = (result, pool)
    assert best is not None
    fig["drain"], fig["drain_pool"] = best[0].rate, best[1].label
    fig["rss_loaded"], fig["processes"] = best[0].rss_loaded, best[0].processes
    fig["rss_loaded_per_process"] = best[0].rss_loaded / max(best[0].processes, 1)
    if system.has_results:
        log(f"{broker}: {system.label} {sizes.roundtrips} round trips")
        fig.update(idle_and_roundtrips(system, url, best[1], sizes.roundtrips))
    return fig


def sleep_drain(
    system: System, url: str, kind: str, processes: int, concurrency: int, count: int,
    seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """``count`` tasks sleeping ``seconds`` on ``system``'s ``kind`` pool, timed to the last
    one finished (a Redis counter, bench/peers/done.py), against the ceiling
    ``processes * concurrency / seconds``."""
    import redis

    pool = system.io_pool(kind, processes, concurrency)
    queue = _queue(system.name)
    key = f"{queue}-done"
    counter = redis.Redis.from_url(BACKEND_URL)
    try:
        log(f"{url.split(':')[0]}: {system.label} {count:,} sleep({seconds}) tasks, {pool.label}")
        system.preload_sleep(url, queue, count, seconds, key, kind)

        def done() -> int:
            return int(counter.get(key) or 0)

        rate = drain_with(system, url, pool, count, preload=False, queue=queue, done=done).rate
    finally:
        counter.delete(key)
        counter.close()
    ceiling = processes * concurrency / seconds
    return {"system": system.name, "pool": kind, "config": pool.label, "processes": processes,
            "concurrency": concurrency, "tasks": count, "rate": rate, "ceiling": ceiling,
            "fraction": rate / ceiling}  # fmt: skip


def io_drain(broker: str, sizes: Sizes, systems: list[System]) -> dict[str, Any]:
    """Every system's drain of tasks sleeping 10 ms on its I/O pools, one budget for all."""
    url, out = URLS[broker], {}
    budget = (IO_PROCESSES, IO_CONCURRENCY, sizes.io_drain, IO_SECONDS)
    for system in systems:
        for kind in system.io_kinds:
            out[f"{system.name} {kind}"] = attempt(
                f"{broker}: {system.label} 10 ms tasks on {kind}",
                partial(sleep_drain, system, url, kind, *budget),
            )
    return out


def scaling(broker: str, sizes: Sizes, systems: list[System]) -> dict[str, Any]:
    """Each system's drain with 1, 2 and 4 worker processes, and with three payload sizes on
    its best pool; each figure tried on its own."""
    url, out = URLS[broker], {}
    for system in systems:
        fig: dict[str, Any] = {"pools": {}}
        for procs in (1, 2, 4):
            pool = system.scaled(procs)
            fig["pools"][f"processes={procs}"] = pool.label
            fig[f"processes={procs}"] = attempt(
                f"{broker}: {system.label} drain with {pool.label}",
                partial(_rate, system, url, pool, sizes.tasks),
            )
        fig["pools"]["payload"] = system.pools[0].label
        for payload, count in sizes.payload_counts.items():
            fig[f"payload={payload}"] = attempt(
                f"{broker}: {system.label} drain of {count:,} tasks carrying {payload:,} bytes",
                partial(_rate, system, url, system.pools[0], count, payload),
            )
        out[system.name] = fig
    return out


def _rate(system: System, url: str, pool: Pool, count: int, payload: int = 0) -> float:
    what = f", {payload:,} bytes each" if payload else ""
    log(f"{url.split(':')[0]}: {system.label} drain of {count:,} tasks{what}, {pool.label}")
    return drain_with(system, url, pool, count, payload).rate


def distance(broker: str, sizes: Sizes, systems: list[System]) -> dict[str, Any]:
    """The drain again with a 2 ms round trip between workers and broker, as a fraction."""
    url = URLS[broker]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    out: dict[str, Any] = {}
    with DelayProxy(port, 0.002) as proxy:
        if broker == "redis":
            out["measured_rtt_ms"] = measured_rtt(proxy.port) * 1000
        far = url.replace(f":{port}", f":{proxy.port}")
        for system in systems:
            out[system.name] = attempt(
                f"{broker}: {system.label} 2 ms away",
                partial(_near_and_far, system, url, far, sizes.proxy_tasks),
            )
    return out


def _near_and_far(system: System, url: str, far: str, count: int) -> dict[str, float]:
    pool = system.pools[0]
    log(f"{url.split(':')[0]}: {system.label} drain, local then through the 2 ms proxy")
    near = drain_with(system, url, pool, count).rate
    away = drain_with(system, url, pool, count, worker_url=far).rate
    return {"local": near, "rtt2ms": away, "fraction": away / near}


def io_bound(broker: str, sizes: Sizes, systems: list[System]) -> dict[str, Any]:
    """10,000 tasks sleeping 100 ms (asyncio pool) and fewer on threads, vs the ceiling, in
    one worker process: Celeriac's worker in-process (which also counts tasks in flight), the
    peers from their command lines with the same pool kind and concurrency."""
    url, ours = URLS[broker], Celeriac()
    out: dict[str, Any] = {}
    runs = (
        ("asyncio", sizes.io_async, 1000),
        ("asyncio", sizes.io_async // 2, 250),
        ("threads", sizes.io_threads, 100),
    )
    for pool, count, conc in runs:
        out[f"{pool} x{conc}"] = attempt(
            f"{broker}: Celeriac {count:,} sleep(0.1) tasks on {pool} x{conc}",
            partial(_celeriac_io, ours, url, pool, count, conc),
        )
        for peer in systems:
            if isinstance(peer, Celeriac) or pool not in peer.io_kinds:
                continue
            out[f"{peer.name} {pool} x{conc}"] = attempt(
                f"{broker}: {peer.label} {count:,} sleep(0.1) tasks on {pool} x{conc}",
                partial(sleep_drain, peer, url, pool, 1, conc, count, 0.1),
            )
    return out


def _celeriac_io(ours: Celeriac, url: str, pool: str, count: int, conc: int) -> dict[str, Any]:
    log(f"{url.split(':')[0]}: Celeriac {count:,} sleep(0.1) tasks on {pool} x{conc}")
    queue = _queue("io")
    cmd_args = ["--pool", pool, "--concurrency", str(conc), "--seconds", "0.1"]
    try:
        result = _side_io(ours, url, queue, count, cmd_args)
    finally:
        Probe(url).delete(queue)
    return {**result, "system": "celeriac", "pool": pool, "concurrency": conc, "tasks": count}


def _side_io(ours: Celeriac, url: str, queue: str, count: int, extra: list[str]) -> dict:
    import subprocess
    import sys

    from .common import REPO
    from .peers.env import peer_env
    from .systems import _json_line

    cmd = [sys.executable, "-m", "bench.celeriac_side", "io", url, queue, str(count), *extra]
    env = {**peer_env(), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return _json_line(proc, "celeriac io")


def transports(names: list[str], sizes: Sizes) -> dict[str, Any]:
    """SQS, Kafka, ZooKeeper: Celeriac's transport against the bare client loop."""
    import tempfile

    from . import transports as tb
    from .raw_kafka import raw_kafka
    from .raw_sqs import raw_sqs
    from .raw_zookeeper import raw_zookeeper

    payload = tb.payload_size()
    raws: dict[str, tuple[str, Callable[[int], tuple[float, float]]]] = {
        "sqs": ("bare boto3 loop", lambda n: raw_sqs(n, payload)),
        "kafka": ("bare kafka-python loop", lambda n: raw_kafka(n, payload)),
        "zookeeper": ("bare kazoo loop", lambda n: raw_zookeeper(n, payload)),
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory():
        for name in names:
            url = "memory://bench" if name == "memory" else tb.url_for(name)
            n = sizes.transport_count // (5 if name == "sqs" else 1)
            log(f"{name}: Celeriac transport and the bare client loop, {n:,} messages")
            publish, publish_many, consume = tb.measure_transport(url, n)
            if name not in raws:  # no server, so no bare client to compare with
                out[name] = {"publish": publish, "publish_many": publish_many, "consume": consume}
                continue
            raw_publish, raw_consume = raws[name][1](n)
            out[name] = {
                "publish": publish, "publish_many": publish_many, "consume": consume,
                "raw_publish": raw_publish, "raw_consume": raw_consume, "raw_label": raws[name][0],
            }  # fmt: skip
    return out


def median_of(runs: list[Any]) -> Any:
    """Merge runs of the same shape: numbers become their median, the rest the first value."""
    first = runs[0]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for r in runs if isinstance(r, dict) for k in r))
        return {k: median_of([r[k] for r in runs if isinstance(r, dict) and k in r]) for k in keys}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    numbers = [r for r in runs if isinstance(r, int | float) and not isinstance(r, bool)]
    return float(statistics.median(numbers))


def attempt(what: str, measure: Callable[[], Any], tries: int = 3) -> Any:
    """``measure()``, tried again when it fails (the brokers are shared: another engineer's
    test may restart one mid-run); after the last try the error is recorded, not raised."""
    for n in range(1, tries + 1):
        try:
            return measure()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            log(f"{what}: failed ({type(exc).__name__}: {str(exc)[:300]}); try {n} of {tries}")
            if n == tries:
                return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            time.sleep(15)
    raise AssertionError("unreachable")


def systems_for(broker: str) -> list[System]:
    if broker == "sqs":
        return [Celeriac(), Celery()]
    return [cls() for cls in ALL]
