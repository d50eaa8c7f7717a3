"""Flower 2.x (from PyPI, in its own venv) watching a real Celeriac worker on Redis and on
RabbitMQ: every page renders in headless Chromium (Debian's ``chromium``, driven by Playwright),
each tab of the worker's page included, with no HTTP error and no script error; Flower's API
shows each task in the state the result backend holds; Flower's pool actions change the
worker's concurrency. Screenshots: tests/artifacts/flower-*.png.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from tests.brokers import AMQP_URL, REDIS_URL, require
from tests.flower import flower_env
from tests.waiting import eventually

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
CHROMIUM = os.environ.get("CELERIAC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
WAIT = 30.0


@dataclass
class Watched:
    flower: str  # Flower's base URL
    hostname: str
    queue: str
    broker: str
    app: App
    worker: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _json(url: str) -> Any:
    status, body = _get(url)
    assert status == 200, f"{url}: HTTP {status} {body[:500]!r}"
    return json.loads(body)


def _post(url: str, data: dict[str, Any] | None = None) -> Any:
    body = urllib.parse.urlencode(data or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, body), timeout=10) as response:
        return json.loads(response.read())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(params=["redis", "rabbitmq"])
def watched(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Watched]:
    broker = require(request.param)
    url = REDIS_URL if request.param == "redis" else AMQP_URL
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    celery = flower_env.ensure()
    queue = f"flower.{uuid.uuid4().hex[:8]}"
    hostname = f"flower-{uuid.uuid4().hex[:6]}@test"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FLOWER_TEST_BROKER": url,
        "FLOWER_TEST_BACKEND": REDIS_URL,
        "FLOWER_TEST_QUEUE": queue,
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    app = App("flower_client", broker=url, backend=REDIS_URL, task_default_queue=queue)
    try:
        command = f"worker -A tests.flower.tasks:app -E -c 2 -n {hostname} -Q {queue} -l warning"
        procs.append(
            subprocess.Popen(
                [CELERIAC, *command.split()],
                cwd=REPO,
                env=env,
                stdout=(logs / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        port = _free_port()
        flower_env_vars = {
            k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
        } | {"FLOWER_UNAUTHENTICATED_API": "1", "PYTHONPATH": str(Path(__file__).parent)}
        procs.append(
            subprocess.Popen(
                [
                    str(celery),
                    "-A",
                    "flower_app",
                    "-b",
                    url,
                    "flower",
                    f"--port={port}",
                    "--address=127.0.0.1",
                ],
                cwd=tmp_path,
                env=flower_env_vars,
                stdout=(logs / "flower.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        base = f"http://127.0.0.1:{port}"

        def worker_known() -> bool:
            assert all(p.poll() is None for p in procs), "the worker or Flower exited"
            status, body = _get(f"{base}/api/workers?refresh=1")
            return status == 200 and hostname in json.loads(body)

        eventually(worker_known, WAIT, f"Flower sees {hostname} on {broker.name}", interval=0.5)
        yield Watched(base, hostname, queue, url, app, procs[0])
    finally:
        app.close()
        for proc in reversed(procs):
            _stop(proc)
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-6000:]}")


def _api_state(watched: Watched, task_id: str) -> str | None:
    status, body = _get(f"{watched.flower}/api/task/info/{task_id}")
    return json.loads(body).get("state") if status == 200 else None


def test_flower_pages_api_and_actions(watched: Watched) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, base, name = watched.app, watched.flower, watched.hostname
    ok = app.send_task("flower.add", (2, 3))
    bad = app.send_task("flower.fail", ("boom",))
    assert ok.get(timeout=WAIT) == 5
    with pytest.raises(Exception, match="boom"):
        bad.get(timeout=WAIT)
    running = app.send_task("flower.wait", (60,))
    eventually(lambda: _api_state(watched, running.id) == "STARTED", WAIT, "STARTED in Flower")

    # An unknown task and an expired one: FAILURE and REVOKED, in Flower as in the backend.
    unknown = app.send_task("flower.nope", (1,))
    expired = app.send_task("flower.add", (1, 1), expires=-1)
    with pytest.raises(Exception, match=r"flower\.nope"):
        unknown.get(timeout=WAIT)
    with pytest.raises(Exception, match=r"[Rr]evoked|expired"):
        expired.get(timeout=WAIT)
    assert (unknown.state, expired.state) == ("FAILURE", "REVOKED")

    # A retry, a soft time limit not caught, a message the task rejects for good.
    retried = app.send_task("flower.flaky", (f"flower-flaky-{uuid.uuid4().hex}",))
    softly = app.send_task("flower.soft", (10,))
    rejected = app.send_task("flower.reject", ("no",))
    assert retried.get(timeout=WAIT) == 2
    with pytest.raises(Exception) as soft_error:
        softly.get(timeout=WAIT)
    with pytest.raises(Exception) as reject_error:
        rejected.get(timeout=WAIT)
    assert type(soft_error.value).__name__ == "SoftTimeLimitExceeded"
    assert type(reject_error.value).__name__ == "Reject"
    assert (retried.state, softly.state, rejected.state) == ("SUCCESS", "FAILURE", "FAILURE")

    # Flower's API agrees with the result backend, task by task.
    for result in (ok, bad, unknown, expired, retried, softly, rejected):
        eventually(
            lambda r=result: _api_state(watched, r.id) == r.state, WAIT, f"{result.id} in Flower"
        )
    tasks = _json(f"{base}/api/tasks")
    assert tasks[ok.id]["state"] == "SUCCESS" == ok.state
    assert tasks[bad.id]["state"] == "FAILURE" == bad.state
    assert tasks[ok.id]["worker"] == name and tasks[ok.id]["result"] == "5"
    assert "boom" in _json(f"{base}/api/task/info/{bad.id}")["exception"]
    info = _json(f"{base}/api/task/info/{retried.id}")
    assert info["retried"] and info["retries"] == 1 and info["result"] == "2", info
    assert "SoftTimeLimitExceeded" in _json(f"{base}/api/task/info/{softly.id}")["exception"]
    info = _json(f"{base}/api/task/info/{rejected.id}")
    assert info["rejected"] and info["exception"] == "reject requeue=False: no", info
    workers = _json(f"{base}/api/workers?refresh=1")
    assert workers[name]["stats"]["pool"]["max-concurrency"] == 2
    assert [q["name"] for q in workers[name]["active_queues"]] == [watched.queue]
    assert "flower.add" in workers[name]["registered"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            for path, marker in (
                ("/workers", name),
                (f"/worker/{name}", name),
                ("/tasks", ok.id),
                (f"/task/{ok.id}", "SUCCESS"),
                (f"/task/{bad.id}", "FAILURE"),
                ("/broker", watched.queue if "redis" in watched.broker else "Broker"),
            ):
                response = page.goto(base + path)
                assert response is not None and response.status == 200, (path, response)
                expect(page.locator("body")).to_contain_text(marker, timeout=WAIT * 1000)
                if path.startswith("/worker/"):
                    tabs = page.locator('a[data-bs-toggle="tab"]')
                    assert tabs.count() >= 6
                    for i in range(tabs.count()):
                        tab = tabs.nth(i)
                        tab.click()
                        pane = page.locator(tab.get_attribute("href") or "#missing")
                        expect(pane).to_be_visible()
                    expect(page.locator("#tab-queues")).to_be_hidden()
                    tabs.filter(has_text="Queues").click()
                    expect(page.locator("#tab-queues")).to_contain_text(watched.queue)
                    tag = "redis" if "redis" in watched.broker else "amqp"
                    page.screenshot(path=str(ARTIFACTS / f"flower-worker-{tag}.png"))
            assert errors == [], errors
        finally:
            browser.close()

    # Flower's actions reach the worker and change it.
    api = f"{base}/api/worker"
    assert "growing" in _post(f"{api}/pool/grow/{name}", {"n": 2})["message"].lower()
    eventually(
        lambda: (
            _json(f"{base}/api/workers?refresh=1")[name]["stats"]["pool"]["max-concurrency"] == 4
        ),
        WAIT,
        "the pool grown to 4",
    )
    _post(f"{api}/pool/shrink/{name}", {"n": 1})
    eventually(
        lambda: (
            _json(f"{base}/api/workers?refresh=1")[name]["stats"]["pool"]["max-concurrency"] == 3
        ),
        WAIT,
        "the pool shrunk to 3",
    )
    _post(f"{api}/pool/autoscale/{name}", {"min": 1, "max": 5})
    eventually(
        lambda: (
            _json(f"{base}/api/workers?refresh=1")[name]["stats"]["pool"]["max-concurrency"] == 5
        ),
        WAIT,
        "the pool autoscaled to 5",
    )
    # Terminate from Flower: the backend and Flower both say REVOKED, never SUCCESS.
    _post(f"{base}/api/task/revoke/{running.id}", {"terminate": "true", "signal": "SIGTERM"})
    with pytest.raises(Exception, match=r"[Rr]evoked"):
        running.get(timeout=WAIT)
    assert running.state == "REVOKED"
    eventually(lambda: _api_state(watched, running.id) == "REVOKED", WAIT, "REVOKED in Flower")

    # Queues: a consumer added from Flower takes tasks; cancelled, it is gone.
    extra = f"{watched.queue}.extra"

    def queues() -> list[str]:
        return [q["name"] for q in _json(f"{base}/api/workers?refresh=1")[name]["active_queues"]]

    _post(f"{api}/queue/add-consumer/{name}", {"queue": extra})
    eventually(lambda: extra in queues(), WAIT, "the added queue")
    assert app.send_task("flower.add", (1, 2), queue=extra).get(timeout=WAIT) == 3
    _post(f"{api}/queue/cancel-consumer/{name}", {"queue": extra})
    eventually(lambda: extra not in queues(), WAIT, "the cancelled queue gone")
    # A rate limit reaches the worker; a hard time limit ends a long task as a FAILURE.
    _post(f"{base}/api/task/rate-limit/flower.add", {"workername": name, "ratelimit": "10/m"})
    dumped = app.control.call("dump_tasks", destination=[name], timeout=10, limit=1)
    assert any(t.startswith("flower.add [rate_limit=") for t in dumped[name]), dumped
    # Its effect: of two calls, the second waits in the worker for its token (10/m: 6 s).
    first, second = app.send_task("flower.add", (1, 1)), app.send_task("flower.add", (2, 2))
    assert first.get(timeout=WAIT) == 2
    done_first = time.monotonic()

    def reserved() -> list[str]:
        replies = app.control.call("reserved", destination=[name], timeout=10, limit=1)
        return [t["id"] for t in replies.get(name) or []]

    eventually(lambda: second.id in reserved(), WAIT, "the second call held by the rate limit")
    assert second.get(timeout=WAIT) == 4
    assert time.monotonic() - done_first > 3, "the rate limit did not hold the second call"
    _post(f"{base}/api/task/rate-limit/flower.add", {"workername": name, "ratelimit": "0"})
    dumped = app.control.call("dump_tasks", destination=[name], timeout=10, limit=1)
    assert "flower.add" in dumped[name], dumped
    _post(f"{base}/api/task/timeout/flower.wait", {"workername": name, "hard": 1})
    limited = app.send_task("flower.wait", (60,))
    with pytest.raises(Exception, match="time limit"):
        limited.get(timeout=WAIT)
    eventually(lambda: _api_state(watched, limited.id) == "FAILURE", WAIT, "FAILURE in Flower")
    # A revoke from Flower: the waiting task never runs.
    later = app.send_task("flower.add", (1, 1), countdown=3)
    _post(f"{base}/api/task/revoke/{later.id}")
    with pytest.raises(Exception, match=r"[Rr]evoked"):
        later.get(timeout=WAIT)
    # Pool restart (worker_pool_restarts is on): rate limits go back to the tasks' own.
    _post(f"{base}/api/task/rate-limit/flower.add", {"workername": name, "ratelimit": "10/m"})
    dumped = app.control.call("dump_tasks", destination=[name], timeout=10, limit=1)
    assert "flower.add [rate_limit=0.16666666666666666]" in dumped[name], dumped
    assert "Restarting" in _post(f"{api}/pool/restart/{name}")["message"]
    dumped = app.control.call("dump_tasks", destination=[name], timeout=10, limit=1)
    assert "flower.add" in dumped[name], dumped
    assert app.send_task("flower.add", (2, 2)).get(timeout=WAIT) == 4
    # Shutdown from Flower stops the worker process.
    _post(f"{api}/shutdown/{name}")
    eventually(lambda: watched.worker.poll() is not None, WAIT, "the worker stopped")
