"""Every measurement of ``python -m bench all``, run in one go; figures are medians of runs."""

from __future__ import annotations

import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .common import AMQP_URL, REDIS_URL, SQS_URL, Drain, Probe, Worker, drain, log
from .proxy import DelayProxy, measured_rtt
from .systems import ALL, Celeriac, Celery, Pool, System

MIB = 1024 * 1024


@dataclass
class Sizes:
    """How much each measurement does (``--quick`` shrinks all of it)."""

    tasks: int = 20_000
    roundtrips: int = 500
    raw: int = 50_000
    io_async: int = 10_000
    io_threads: int = 2_000
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
            tasks=2_000, roundtrips=50, raw=10_000, io_async=2_000, io_threads=300,
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

    def stop(self, timeout: float = 15) -> None:
        for w in self.members:
            w.stop(timeout)


def drain_with(
    system: System, url: str, pool: Pool, count: int, payload: int = 0, preload: bool = True,
    queue: str | None = None, worker_url: str | None = None,
) -> Drain:  # fmt: skip
    """Preload ``count`` no-op tasks (unless the queue already holds them) and drain them."""
    queue = queue or _queue(system.name)
    probe = Probe(url)
    try:
        if preload:
            system.preload(url, queue, count, payload)
        group = _Group(system.workers(worker_url or url, queue, pool))
        try:
            return drain(group, probe, system.key(url, queue), count)
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
        batch_queue = _queue("batch")
        fig["publish_batch"] = system.publish_batch(url, batch_queue, n)
        probe = Probe(url)
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


def scaling(broker: str, sizes: Sizes) -> dict[str, Any]:
    """Celeriac's drain with 1, 2 and 4 worker processes, and with three payload sizes."""
    url, ours = URLS[broker], Celeriac()
    out: dict[str, Any] = {}
    for procs in (1, 2, 4):
        log(f"{broker}: Celeriac drain with {procs} worker processes")
        best = ours.pools[0]
        pool = Pool(f"{procs} x threads 8", procs, best.args, best.env)
        out[f"processes={procs}"] = drain_with(ours, url, pool, sizes.tasks).rate
    best = ours.pools[0]
    for payload, count in sizes.payload_counts.items():
        log(f"{broker}: Celeriac drain of {count:,} tasks carrying {payload:,} bytes")
        out[f"payload={payload}"] = drain_with(ours, url, best, count, payload).rate
    return out


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
            if not isinstance(system, Celeriac | Celery):
                continue
            pool = system.pools[0]
            log(f"{broker}: {system.label} drain, local then through the 2 ms proxy")
            near = drain_with(system, url, pool, sizes.proxy_tasks).rate
            away = drain_with(system, url, pool, sizes.proxy_tasks, worker_url=far).rate
            out[system.name] = {"local": near, "rtt2ms": away, "fraction": away / near}
    return out


def io_bound(broker: str, sizes: Sizes) -> dict[str, Any]:
    """10,000 tasks sleeping 100 ms (asyncio pool) and fewer on threads, vs the ceiling."""
    url, ours = URLS[broker], Celeriac()
    out: dict[str, Any] = {}
    runs = (
        ("asyncio", sizes.io_async, 1000),
        ("asyncio", sizes.io_async // 2, 250),
        ("threads", sizes.io_threads, 100),
    )
    for pool, count, conc in runs:
        log(f"{broker}: Celeriac {count:,} sleep(0.1) tasks on {pool} x{conc}")
        queue = _queue("io")
        cmd_args = ["--pool", pool, "--concurrency", str(conc), "--seconds", "0.1"]
        result = _side_io(ours, url, queue, count, cmd_args)
        Probe(url).delete(queue)
        row = {**result, "pool": pool, "concurrency": conc, "tasks": count}
        out[f"{pool} x{conc}"] = row
    return out


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
