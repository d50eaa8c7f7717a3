"""End to end in headless Chromium (Debian's ``chromium``, driven by Playwright): a worker with
events on and ``celeriac dashboard`` on Redis, tasks sent, and the page checked: it asks for the
token, shows the worker and the tasks (names, states, worker), keeps hostile arguments as text,
and its buttons act: a revoke stops a waiting task from ever running, a retry re-sends a failure,
a rate limit reaches the worker, a shutdown stops it. Screenshot: tests/artifacts/dashboard.png.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from celeriac import App
from tests.brokers import REDIS_URL, require
from tests.waiting import eventually

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
CELERIAC = str(Path(sys.executable).with_name("celeriac"))
CHROMIUM = os.environ.get("CELERIAC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
TOKEN = f"token-{uuid.uuid4().hex}"
SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src=x onerror="window.__xss = 2">'
COUNTDOWN = 8  # long enough to click revoke while the task still waits
WAIT_MS = 30_000  # the page's bounded waits (Playwright polls until then)


@dataclass
class Running:
    url: str
    hostname: str
    queue: str
    worker: subprocess.Popen[bytes]
    logs: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    require("redis")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    queue = f"dashboard.{uuid.uuid4().hex[:8]}"
    hostname = f"dash-{uuid.uuid4().hex[:6]}@test"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DASHBOARD_TEST_BROKER": REDIS_URL,
        "DASHBOARD_TEST_BACKEND": REDIS_URL,
        "DASHBOARD_TEST_QUEUE": queue,
        "CELERIAC_DASHBOARD_TOKEN": TOKEN,
    }
    port = _free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    where = ["-b", REDIS_URL, "--backend", REDIS_URL, "--port", str(port), "-Q", queue]
    board = subprocess.Popen(
        [CELERIAC, "dashboard", *where],
        cwd=tmp_path,
        env=env,
        stdout=(logs / "dashboard.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    worker = None
    try:
        eventually(lambda: board.poll() is not None or _answers(url + "healthz"), 30, "dashboard")
        assert board.poll() is None, (logs / "dashboard.log").read_text()
        command = f"worker -A tests.dashboard.tasks:app -E -c 2 -n {hostname} -Q {queue} -l warning"
        worker = subprocess.Popen(
            [CELERIAC, *command.split()],
            cwd=REPO,
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        yield Running(url, hostname, queue, worker, logs)
    finally:
        for proc in (worker, board):
            if proc is not None:
                _stop(proc)
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text(errors='replace')}")


def test_dashboard_in_chromium(running: Running, tmp_path: Path) -> None:
    from playwright.sync_api import Locator, expect, sync_playwright

    client = App(
        "dashboard_client",
        broker=REDIS_URL,
        backend=REDIS_URL,
        task_default_queue=running.queue,
        task_send_sent_event=True,
    )
    flaky_marker, touch_marker = tmp_path / "flaky", tmp_path / "touched"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())  # "Shut down ...?"
        try:
            # The page asks for the token before it shows anything.
            page.goto(running.url)
            expect(page.locator("#login")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#main")).to_be_hidden()
            page.fill("#token", "wrong")
            page.click("#login-form button")
            expect(page.locator("#login-error")).not_to_be_empty(timeout=WAIT_MS)
            page.fill("#token", TOKEN)
            page.click("#login-form button")
            expect(page.locator("#main")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#broker")).to_contain_text("redis://")

            worker_row = page.locator(f'#workers tr[data-worker="{running.hostname}"]')
            expect(worker_row.locator(".status")).to_have_text("online", timeout=WAIT_MS)

            ok = client.send_task("dash.add", (2, 3))
            hostile = client.send_task("dash.echo", (SCRIPT, IMG))
            flaky = client.send_task("dash.flaky", (str(flaky_marker),))

            def row(task_id: str) -> Locator:
                return page.locator(f'#tasks tr[data-task-id="{task_id}"]')

            ok_row, hostile_row, flaky_row = (row(r.id) for r in (ok, hostile, flaky))
            expect(ok_row.locator(".state")).to_have_text("SUCCESS", timeout=WAIT_MS)
            expect(ok_row.locator(".name")).to_have_text("dash.add")
            expect(ok_row.locator(".worker")).to_have_text(running.hostname)
            expect(ok_row.locator("td.args").first).to_have_text("(2, 3)")
            expect(flaky_row.locator(".state")).to_have_text("FAILURE", timeout=WAIT_MS)

            # Hostile arguments are shown as the text they are: no element made, nothing run.
            expect(hostile_row.locator(".state")).to_have_text("SUCCESS", timeout=WAIT_MS)
            shown = hostile_row.locator("td.args").first.text_content() or ""
            assert SCRIPT in shown and IMG in shown, shown
            assert page.locator("#tasks img, #tasks script").count() == 0
            assert page.evaluate("window.__xss") is None
            hostile_row.locator(".name").click()  # the detail panel: text too
            expect(page.locator("#detail-fields")).to_contain_text(SCRIPT)
            assert page.locator("#detail img, #detail script").count() == 0

            # Revoke the task that waits for its countdown, from the page.
            waiting = client.send_task("dash.touch", (str(touch_marker),), countdown=COUNTDOWN)
            waiting_row = row(waiting.id)
            expect(waiting_row.locator(".state")).to_have_text("PENDING", timeout=WAIT_MS)
            waiting_row.locator('button[data-action="revoke"]').click()
            expect(page.locator("#toast")).to_contain_text("revoke: done", timeout=WAIT_MS)
            expect(waiting_row.locator(".state")).to_have_text(
                "REVOKED", timeout=(COUNTDOWN + 30) * 1000
            )
            assert waiting.state == "REVOKED"
            assert not touch_marker.exists(), "the revoked task ran"

            # Retry the failure from the page: sent again, it succeeds this time.
            flaky_row.locator('button[data-action="retry"]').click()
            expect(page.locator("#toast")).to_contain_text("retry: sent as", timeout=WAIT_MS)
            flaky_rows = page.locator("#tasks tbody tr").filter(
                has=page.locator(".name", has_text="dash.flaky")
            )
            expect(flaky_rows).to_have_count(2, timeout=WAIT_MS)
            expect(flaky_rows.filter(has=page.locator(".state", has_text="SUCCESS"))).to_have_count(
                1, timeout=WAIT_MS
            )

            # Search and filters narrow the table (to this worker's tasks: other tests may share
            # the broker).
            shown_rows = page.locator("#tasks tbody tr")
            page.select_option("#worker-filter", running.hostname)
            expect(shown_rows).to_have_count(5)
            page.fill("#search", "dash.add")
            expect(shown_rows).to_have_count(1)
            expect(shown_rows).to_have_attribute("data-task-id", ok.id)
            page.fill("#search", "")
            page.select_option("#state-filter", "REVOKED")
            expect(shown_rows).to_have_count(1)
            expect(shown_rows).to_have_attribute("data-task-id", waiting.id)
            page.select_option("#state-filter", "")
            page.select_option("#worker-filter", "")

            # A rate limit set from the page reaches the worker, which answers.
            page.fill("#rate-task", "dash.add")
            page.fill("#rate-value", "5/s")
            page.select_option("#rate-worker", running.hostname)
            page.click("#rate-form button")
            expect(page.locator("#toast")).to_contain_text(
                "rate limit: done (1 worker answered)", timeout=WAIT_MS
            )

            # The charts and the queue table have data.
            expect(
                page.locator('#chart-throughput polyline[data-series="succeeded"]')
            ).to_have_count(1, timeout=WAIT_MS)
            expect(page.locator(f'#queues tr[data-queue="{running.queue}"]')).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # Shutting the worker down from the page stops its process.
            worker_row.locator('button[data-action="shutdown"]').click()
            eventually(lambda: running.worker.poll() is not None, 30, "the worker's exit")
            expect(worker_row.locator(".status")).to_have_text("offline", timeout=WAIT_MS)
            assert errors == [], errors
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "dashboard-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
            client.close()
