"""The four systems side by side, each driven the same way: a client process of its own that
publishes or round-trips and prints JSON, and a worker process tree started from the command
line its users would type."""

from __future__ import annotations

import json
import subprocess
import sys
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

    def key(self, url: str, queue: str) -> str:
        """The broker key (Redis list, RabbitMQ queue) holding ``queue``'s waiting tasks."""
        return queue

    def client(self, mode: str, url: str, queue: str, count: int, payload: int = 0) -> dict:
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

    def client(self, mode: str, url: str, queue: str, count: int, payload: int = 0) -> dict:
        cmd = [sys.executable, "-m", "bench.celeriac_side", mode, url, queue, str(count)]
        env = {**peer_envs.peer_env(), "BENCH_BACKEND": BACKEND_URL, "PYTHONPATH": str(REPO)}
        if payload:
            cmd += ["--payload", str(payload)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        return _json_line(proc, f"celeriac {mode}")

    def publish_batch(self, url: str, queue: str, count: int) -> float:
        return float(self.client("publish_many", url, queue, count)["rate"])

    def preload(self, url: str, queue: str, count: int, payload: int = 0) -> None:
        self.client("preload", url, queue, count, payload)

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

    def client(self, mode: str, url: str, queue: str, count: int, payload: int = 0) -> dict:
        proc = celery_env.run_script(
            HERE / "celery_side.py", mode, url, BACKEND_URL, queue, str(count), str(payload),
            timeout=1800, check=False,
        )  # fmt: skip
        return _json_line(proc, f"celery {mode}")

    def preload(self, url: str, queue: str, count: int, payload: int = 0) -> None:
        Celeriac().preload(url, queue, count, payload)  # the same protocol: our fast path

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        celery_env.ensure(quiet=True)
        w = celery_env.CeleryWorker(
            HERE, "celery_bench_app", broker_url=url, backend_url=backend or BACKEND_URL,
            queues=[queue], loglevel="WARNING", extra_args=list(pool.args),
        )  # fmt: skip
        env = celery_env._clean_env({"PYTHONPATH": str(HERE)})
        if url.startswith("sqs"):
            env["BENCH_SQS_POLLING_INTERVAL"] = "0.1"
        return [Worker(w.command(), env, cwd=HERE) for _ in range(pool.processes)]


class Dramatiq(System):
    name, label = "dramatiq", "Dramatiq"
    pools = (Pool("2 processes x 8 threads", 1, ("-p", "2", "-t", "8")),)

    def key(self, url: str, queue: str) -> str:
        return f"dramatiq:{queue}" if url.startswith("redis") else queue

    def keys(self, url: str, queue: str) -> list[str]:
        if url.startswith("redis"):
            return [f"dramatiq:{queue}", f"dramatiq:{queue}.msgs", f"dramatiq:{queue}.XQ"]
        return [queue, f"{queue}.DQ", f"{queue}.XQ"]

    def _python(self) -> str:
        return str(peer_envs.ensure("dramatiq"))

    def _env(self, url: str, queue: str, backend: str | None = None) -> dict[str, str]:
        return peer_envs.peer_env(
            {"BENCH_BROKER": url, "BENCH_QUEUE": queue, "BENCH_BACKEND": backend or BACKEND_URL,
             "PYTHONPATH": str(REPO)}
        )  # fmt: skip

    def client(self, mode: str, url: str, queue: str, count: int, payload: int = 0) -> dict:
        cmd = [self._python(), "-m", "bench.peers.dramatiq_app", mode, str(count), str(payload)]
        proc = subprocess.run(
            cmd, cwd=REPO, env=self._env(url, queue), capture_output=True, text=True, timeout=1800
        )
        return _json_line(proc, f"dramatiq {mode}")

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        argv = [self._python(), "-m", "dramatiq", "bench.peers.dramatiq_app", "-Q", queue]
        return [Worker([*argv, *pool.args], self._env(url, queue, backend))]


class Taskiq(System):
    name, label = "taskiq", "Taskiq"
    pools = (Pool("2 worker processes", 1, ("--workers", "2")),)

    def _python(self) -> str:
        return str(peer_envs.ensure("taskiq"))

    def _env(self, url: str, queue: str, backend: str | None = None) -> dict[str, str]:
        return peer_envs.peer_env(
            {"BENCH_BROKER": url, "BENCH_QUEUE": queue, "BENCH_BACKEND": backend or BACKEND_URL,
             "PYTHONPATH": str(REPO)}
        )  # fmt: skip

    def client(self, mode: str, url: str, queue: str, count: int, payload: int = 0) -> dict:
        cmd = [self._python(), "-m", "bench.peers.taskiq_app", mode, str(count), str(payload)]
        proc = subprocess.run(
            cmd, cwd=REPO, env=self._env(url, queue), capture_output=True, text=True, timeout=1800
        )
        return _json_line(proc, f"taskiq {mode}")

    def workers(self, url: str, queue: str, pool: Pool, backend: str | None = None) -> list[Worker]:
        argv = [self._python(), "-m", "taskiq", "worker", "bench.peers.taskiq_app:broker"]
        return [Worker([*argv, *pool.args], self._env(url, queue, backend))]


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
