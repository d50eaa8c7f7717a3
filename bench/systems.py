"""The four systems side by side, each driven the same way: a client process of its own that
publishes or round-trips and prints JSON, and a worker process tree started from the command
line its users would type."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from interop import celery_env

from .common import BACKEND_URL, REPO, Worker
from .peers import env as peer_envs

HERE = Path(__file__).resolve().parent


def _json_line(proc: subprocess.CompletedProcess[str], what: str) -> dict[str, float]:
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _processes(n: int) -> str:
    return f"{n} process" if n == 1 else f"{n} processes"


@dataclass(frozen=True)
class Pool:
    """One worker configuration: ``processes`` worker processes, each with its own pool."""

    label: str
    processes: int
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


class System:
    name = ""
    label = ""
    version = ""
    #: Worker configurations tried for the drain, best first (only the first in --quick).
    pools: tuple[Pool, ...] = ()
    has_results = True
    #: The pools this system offers for I/O-bound tasks ("asyncio", "threads").
    io_kinds: tuple[str, ...] = ()

    def key(self, url: str, queue: str) -> str:
        """The broker key (Redis list, RabbitMQ queue) holding ``queue``'s waiting tasks."""
        return queue

    def client(
        self, mode: str, url: str, queue: str, count: int, payload: int = 0,
        extra: Sequence[str] = (),
    ) -> dict:  # fmt: skip
        """Run the system's client side in ``mode``; its JSON line of figures."""
        raise NotImplementedError

    def publish(self, url: str, queue: str, count: int, payload: int = 0) -> float:
        return float(self.client("publish", url, queue, count, payload)["rate"])

    def preload(self, url: str, queue: str, count: int, payload: int = 0) -> None:
        self.publish(url, queue, count, payload)

    def roundtrip(self, url: str, queue: str, count: int) -> dict[str, float]:
        return self.client("roundtrip", url, queue, count)

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        raise NotImplementedError

    def keys(self, url: str, queue: str) -> list[str]:
        return [self.key(url, queue)]

    def io_pool(self, kind: str, processes: int, concurrency: int) -> Pool:
        """``processes`` worker processes running up to ``concurrency`` tasks each on ``kind``."""
        raise NotImplementedError

    def scaled(self, processes: int) -> Pool:
        """The drain's worker with ``processes`` worker processes (the scaling figures)."""
        raise NotImplementedError

    def preload_sleep(
        self, url: str, queue: str, count: int, seconds: float, done: str, kind: str
    ) -> None:
        """``count`` tasks sleeping ``seconds`` for the ``kind`` pool, each bumping ``done``
        when finished (bench/peers/done.py)."""
        raise NotImplementedError


class Celeriac(System):
    name, label = "celeriac", "Celeriac"
    pools = (
        Pool(
            "2 processes x threads 8, prefetch x16", 2, ("-P", "threads", "-c", "8"),
            (("BENCH_PREFETCH_MULTIPLIER", "16"),),
        ),
        Pool("2 processes x threads 8", 2, ("-P", "threads", "-c", "8")),
    )  # fmt: skip

    def __init__(self) -> None:
        from importlib.metadata import version

        self.version = version("celeriac")

    io_kinds = ("asyncio", "threads")

    def client(
        self, mode: str, url: str, queue: str, count: int, payload: int = 0,
        extra: Sequence[str] = (),
    ) -> dict:  # fmt: skip
        cmd = [sys.executable, "-m", "bench.celeriac_side", mode, url, queue, str(count), *extra]
        env = {**peer_envs.peer_env(), "BENCH_BACKEND": BACKEND_URL, "PYTHONPATH": str(REPO)}
        if payload:
            cmd += ["--payload", str(payload)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        return _json_line(proc, f"celeriac {mode}")

    def publish_window(self, url: str, queue: str, count: int) -> float:
        return float(self.client("publish_window", url, queue, count)["rate"])

    def publish_batch(self, url: str, queue: str, count: int) -> float:
        return float(self.client("publish_many", url, queue, count)["rate"])

    def preload(self, url: str, queue: str, count: int, payload: int = 0) -> None:
        self.client("preload", url, queue, count, payload)

    def preload_sleep(
        self, url: str, queue: str, count: int, seconds: float, done: str, kind: str
    ) -> None:
        task = "bench.sleep_async" if kind == "asyncio" else "bench.sleep_sync"
        args = ("--task", task, "--args", json.dumps([seconds, done]))
        self.client("preload", url, queue, count, extra=args)

    def io_pool(self, kind: str, processes: int, concurrency: int) -> Pool:
        args = ("-P", kind, "-c", str(concurrency))
        return Pool(f"{_processes(processes)} x {kind} {concurrency}", processes, args)

    def scaled(self, processes: int) -> Pool:
        best = self.pools[0]
        label = f"{_processes(processes)} x threads 8, prefetch x16"
        return Pool(label, processes, best.args, best.env)

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        env = {**peer_envs.peer_env(), "BENCH_BROKER": url, "BENCH_QUEUE": queue}
        env["BENCH_BACKEND"] = backend or BACKEND_URL
        env["PYTHONPATH"] = str(REPO)
        env.update(pool.env)
        argv = [sys.executable, "-c", "from celeriac.cli import main; main()", "worker"]
        argv += ["-A", "bench.celeriac_app:app", "-Q", queue, "-l", "warning", *pool.args]
        return [Worker(argv, env) for _ in range(pool.processes)]


class Celery(System):
    name, label = "celery", "Celery"
    version = celery_env.CELERY_VERSION
    pools = (
        Pool("prefork -c 2", 1, ("-P", "prefork", "-c", "2")),
        Pool(
            "threads -c 8, prefetch x16",
            1,
            ("-P", "threads", "-c", "8", "--prefetch-multiplier", "16"),
        ),
    )

    def client(
        self, mode: str, url: str, queue: str, count: int, payload: int = 0,
        extra: Sequence[str] = (),
    ) -> dict:  # fmt: skip
        proc = celery_env.run_script(
            HERE / "celery_side.py", mode, url, BACKEND_URL, queue, str(count), str(payload),
            timeout=1800, check=False,
        )  # fmt: skip
        return _json_line(proc, f"celery {mode}")

    io_kinds = ("threads",)

    def preload(self, url: str, queue: str, count: int, payload: int = 0) -> None:
        Celeriac().preload(url, queue, count, payload)  # the same protocol: our fast path

    def preload_sleep(
        self, url: str, queue: str, count: int, seconds: float, done: str, kind: str
    ) -> None:
        Celeriac().preload_sleep(url, queue, count, seconds, done, "threads")

    def io_pool(self, kind: str, processes: int, concurrency: int) -> Pool:
        args = ("-P", "threads", "-c", str(concurrency))
        return Pool(f"{_processes(processes)} x threads -c {concurrency}", processes, args)

    def scaled(self, processes: int) -> Pool:
        return Pool(f"prefork -c {processes}", 1, ("-P", "prefork", "-c", str(processes)))

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        celery_env.ensure(quiet=True)
        # One CeleryWorker each: a node name of its own per process (two Celery workers of
        # one name cannot both hold their exclusive pidbox queue on RabbitMQ).
        commands = [
            celery_env.CeleryWorker(
                HERE, "celery_bench_app", broker_url=url, backend_url=backend or BACKEND_URL,
                queues=[queue], loglevel="WARNING", extra_args=list(pool.args),
            ).command()
            for _ in range(pool.processes)
        ]  # fmt: skip
        # bench/ for the app module, the repository for bench.peers.done (the sleep task)
        env = celery_env._clean_env(
            {"PYTHONPATH": f"{HERE}:{REPO}", "BENCH_BACKEND": backend or BACKEND_URL}
        )
        if url.startswith("sqs"):
            env["BENCH_SQS_POLLING_INTERVAL"] = "0.1"
        return [Worker(command, env, cwd=HERE) for command in commands]


class _Peer(System):
    """Dramatiq and Taskiq: a venv of their own (bench/peers/env.py), an app module in
    bench/peers/ that is also their client (publish, roundtrip, sleep), and one supervisor
    process that starts the worker processes itself."""

    module = ""

    def _python(self) -> str:
        return str(peer_envs.ensure(self.name))

    def _env(self, url: str, queue: str, backend: str | None = None) -> dict[str, str]:
        return peer_envs.peer_env(
            {"BENCH_BROKER": url, "BENCH_QUEUE": queue, "BENCH_BACKEND": backend or BACKEND_URL,
             "PYTHONPATH": str(REPO)}
        )  # fmt: skip

    def client(
        self, mode: str, url: str, queue: str, count: int, payload: int = 0,
        extra: Sequence[str] = (),
    ) -> dict:  # fmt: skip
        cmd = [self._python(), "-m", self.module, mode, str(count), *(extra or [str(payload)])]
        proc = subprocess.run(
            cmd, cwd=REPO, env=self._env(url, queue), capture_output=True, text=True, timeout=1800
        )
        return _json_line(proc, f"{self.name} {mode}")

    def preload_sleep(
        self, url: str, queue: str, count: int, seconds: float, done: str, kind: str
    ) -> None:
        self.client("sleep", url, queue, count, extra=(str(seconds), done))

    def _argv(self, queue: str) -> list[str]:
        raise NotImplementedError

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        env = {**self._env(url, queue, backend), **dict(pool.env)}
        return [Worker([*self._argv(queue), *pool.args], env)]


class Dramatiq(_Peer):
    name, label, module = "dramatiq", "Dramatiq", "bench.peers.dramatiq_app"
    pools = (Pool("2 processes x 8 threads", 1, ("-p", "2", "-t", "8")),)
    io_kinds = ("threads",)

    def key(self, url: str, queue: str) -> str:
        return f"dramatiq:{queue}" if url.startswith("redis") else queue

    def keys(self, url: str, queue: str) -> list[str]:
        if url.startswith("redis"):
            return [f"dramatiq:{queue}", f"dramatiq:{queue}.msgs", f"dramatiq:{queue}.XQ"]
        return [queue, f"{queue}.DQ", f"{queue}.XQ"]

    def _argv(self, queue: str) -> list[str]:
        return [self._python(), "-m", "dramatiq", self.module, "-Q", queue]

    def io_pool(self, kind: str, processes: int, concurrency: int) -> Pool:
        args = ("-p", str(processes), "-t", str(concurrency))
        return Pool(f"-p {processes} -t {concurrency}", 1, args)

    def scaled(self, processes: int) -> Pool:
        return Pool(f"-p {processes} -t 8", 1, ("-p", str(processes), "-t", "8"))


class Taskiq(_Peer):
    name, label, module = "taskiq", "Taskiq", "bench.peers.taskiq_app"
    pools = (Pool("2 worker processes", 1, ("--workers", "2")),)
    io_kinds = ("asyncio",)

    def _argv(self, queue: str) -> list[str]:
        return [self._python(), "-m", "taskiq", "worker", f"{self.module}:broker"]

    def io_pool(self, kind: str, processes: int, concurrency: int) -> Pool:
        # On RabbitMQ the channel's prefetch (qos) is 4x the tasks it may run, as Celery's and
        # Celeriac's default prefetch multiplier.
        args = ("--workers", str(processes), "--max-async-tasks", str(concurrency))
        label = f"--workers {processes} --max-async-tasks {concurrency}"
        return Pool(label, 1, args, (("BENCH_QOS", str(4 * concurrency)),))

    def scaled(self, processes: int) -> Pool:
        return Pool(f"--workers {processes}", 1, ("--workers", str(processes)))


def versions() -> dict[str, str]:
    """Each peer's installed version, read inside its own venv."""
    out = {"celery": celery_env.CELERY_VERSION}
    for name, mods in (("dramatiq", "dramatiq"), ("taskiq", "taskiq taskiq_redis taskiq_aio_pika")):
        code = (
            "import importlib.metadata as m;"
            f"print(' '.join(p + ' ' + m.version(p.replace('_', '-')) for p in {mods.split()!r}))"
        )
        proc = subprocess.run(
            [str(peer_envs.ensure(name)), "-c", code], capture_output=True, text=True, check=False
        )
        out[name] = proc.stdout.strip()
    return out


ALL: tuple[type[System], ...] = (Celeriac, Celery, Dramatiq, Taskiq)
