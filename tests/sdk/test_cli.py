"""The command line: the demo, call/result, and worker processes that stop warm or die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.cli import main
from tests.transports.conftest import url_for
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))


def test_demo_runs_with_no_server() -> None:
    result = CliRunner().invoke(main, ["demo", "-n", "10"])
    assert result.exit_code == 0, result.output
    for expected in ("sum 90", "succeeded on attempt 2", "35", "30", "[200, 200, 200, 200]",
                     "ValueError", "stopped warm"):  # fmt: skip
        assert expected in result.output


#: Brokers a worker process can die on and another take over from (memory is in-process).
PROCESS_TRANSPORTS = ("sqlite", "redis", "amqp", "sqs", "kafka", "zookeeper")


def _env(tmp_path: Path, transport: str = "sqlite") -> dict[str, str]:
    broker = url_for(transport, tmp_path)
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CELERIAC_BROKER_URL": broker,
        "CELERIAC_RESULT_BACKEND": f"sqlite:///{tmp_path}/results.db",
        "CELERIAC_TASK_DEFAULT_QUEUE": f"cli.{uuid.uuid4().hex[:8]}",
        "CELERIAC_BROKER_TRANSPORT_OPTIONS": '{"visibility_timeout": 2}',
        "CRASHY_LEDGER": str(tmp_path / "ledger.txt"),
    }


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return _env(tmp_path)


@pytest.fixture(params=PROCESS_TRANSPORTS)
def broker_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of worker processes on each broker that processes can share."""
    return _env(tmp_path, str(request.param))


def _worker(env: dict[str, str], seconds: str = "3") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CELERIAC, "worker", "-A", "tests.sdk.apps.crashy:app", "-c", "2", "-l", "info"],
        env={**env, "CRASHY_SECONDS": seconds}, cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(path: Path, text: str, timeout: float = 30) -> str:
    """The ledger (a file the worker process appends to) once it holds ``text``."""

    def content() -> str:
        return path.read_text() if path.exists() else ""

    def holding() -> str | None:
        now = content()
        return now if text in now else None

    return eventually(holding, timeout, f"{text!r} in {path}", detail=lambda: repr(content()))


_CLIENT_KEYS = ("CELERIAC_BROKER_URL", "CELERIAC_RESULT_BACKEND", "CELERIAC_TASK_DEFAULT_QUEUE")


def _client(env: dict[str, str]) -> App:
    from celeriac.config import settings_from

    os.environ.update({k: env[k] for k in _CLIENT_KEYS})
    try:
        from tests.sdk.apps import crashy

        crashy.app.close()  # drop connections to the previous test's broker
        crashy.app.conf = settings_from(environ=os.environ, base=crashy.app.conf)
        return crashy.app
    finally:
        for k in _CLIENT_KEYS:
            os.environ.pop(k, None)


def test_sigterm_is_a_warm_shutdown(broker_env: dict[str, str], tmp_path: Path) -> None:
    env = broker_env
    app = _client(env)
    result = app.send_task("tests.sdk.apps.crashy.slow_mark", ("warm",))
    worker = _worker(env, seconds="1.5")
    try:
        _wait_for(tmp_path / "ledger.txt", "start warm")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        worker.kill()
    assert "done warm" in (tmp_path / "ledger.txt").read_text()
    assert result.get(timeout=5) == "warm"


def test_sigkilled_worker_task_runs_again_elsewhere(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    env = broker_env
    app = _client(env)
    result = app.send_task("tests.sdk.apps.crashy.slow_mark", ("crash",))
    first = _worker({**env}, seconds="30")
    try:
        _wait_for(tmp_path / "ledger.txt", "start crash")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    second = _worker(env, seconds="0.1")
    try:
        assert result.get(timeout=60) == "crash"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    ledger = (tmp_path / "ledger.txt").read_text()
    assert ledger.count("start crash") == 2 and ledger.count("done crash") == 1


def test_call_and_result(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner(env={k: v for k, v in env.items() if k.startswith("CELERIAC_")})
    sent = runner.invoke(main, ["call", "tests.sdk.apps.crashy.slow_mark", "--args", '["cli"]',
                                "-A", "tests.sdk.apps.crashy:app"])  # fmt: skip
    assert sent.exit_code == 0, sent.output
    task_id = sent.output.strip()
    shown = runner.invoke(main, ["result", task_id, "-A", "tests.sdk.apps.crashy:app"])
    assert shown.output.startswith("PENDING"), shown.output
    bad = runner.invoke(main, ["call", "x", "--args", "{not json"])
    assert bad.exit_code != 0 and "not JSON" in bad.output


def test_max_tasks_per_child_replaces_prefork_children(env: dict[str, str], tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [CELERIAC, "worker", "-A", "tests.sdk.apps.crashy:app", "-P", "prefork", "-c", "1",
         "--max-tasks-per-child", "2", "-l", "warning"],
        env={**env, "CRASHY_SECONDS": "0"}, cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        app = _client(env)
        for i in range(4):  # one at a time, so each child's count is exact
            assert app.tasks["tests.sdk.apps.crashy.slow_mark"].delay(f"t{i}").get(30) == f"t{i}"
        ledger = _wait_for(tmp_path / "ledger.txt", "done t3").splitlines()
        pids = [line.split()[2] for line in ledger if line.startswith("done")]
        assert len(pids) == 4 and pids[0] == pids[1] and pids[2] == pids[3] and pids[1] != pids[2]
    finally:
        worker.terminate()
        worker.communicate(timeout=30)


def test_child_limits_need_the_prefork_pool(env: dict[str, str]) -> None:
    runner = CliRunner(env={k: v for k, v in env.items() if k.startswith("CELERIAC_")})
    for flag in ("--max-tasks-per-child", "--max-memory-per-child"):
        result = runner.invoke(
            main, ["worker", "-A", "tests.sdk.apps.crashy:app", "-P", "threads", flag, "5"]
        )
        assert result.exit_code == 2 and "need the prefork pool" in result.output, result.output
