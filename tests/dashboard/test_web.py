"""The dashboard's HTTP side without a browser: the token, cross-site refusals, the host check,
escaping, and the actions reaching workers (on the in-process memory broker)."""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from celeriac import App
from celeriac.cli import main
from celeriac.dashboard import Dashboard, create_app
from celeriac.dashboard.web import COOKIE, LOOPBACK_HOSTS, STATIC
from celeriac.protocol.results import ResultRecord
from celeriac.worker import run_worker, stop_worker
from tests.waiting import eventually

TOKEN = "s3cret-token"
HOSTILE_ARGS = "('<script>window.__xss=1</script>', '<img src=x onerror=\"window.__xss=2\">')"


@pytest.fixture
def app() -> Iterator[App]:
    name = f"dash-{uuid.uuid4().hex[:8]}"
    application = App(
        "dash", broker=f"memory://{name}", backend=f"memory://{name}", task_default_queue="q"
    )
    yield application
    application.close()


@pytest.fixture
def board(app: App) -> Dashboard:
    dashboard = Dashboard(app, reply_timeout=0.2)
    # What a worker with result_extended=True stores: the record retry sends again.
    stored = {"name": "proj.add", "args": list(ast.literal_eval(HOSTILE_ARGS)), "kwargs": {}}
    failure = {"exc_type": "ValueError", "exc_message": ["<b>x</b>"], "exc_module": "builtins"}
    app.backend.store(ResultRecord("t-1", "FAILURE", failure, extended={**stored, "queue": "q"}))
    dashboard.state.apply(
        {
            "type": "task-received",
            "hostname": "w@h",
            "uuid": "t-1",
            "name": "proj.add",
            "args": HOSTILE_ARGS,
            "kwargs": "{}",
            "timestamp": 1.0,
        }
    )
    dashboard.state.apply(
        {
            "type": "task-failed",
            "hostname": "w@h",
            "uuid": "t-1",
            "exception": "ValueError('<b>x</b>')",
            "timestamp": 2.0,
        }
    )
    return dashboard


def client(board: Dashboard, token: str | None = TOKEN, **options: object) -> TestClient:
    return TestClient(create_app(board, token, **options))  # type: ignore[arg-type]


DATA = ["/api/info", "/api/snapshot", "/api/tasks", "/api/tasks/t-1"]
ACTIONS = [
    ("/api/tasks/t-1/revoke", {"terminate": True}),
    ("/api/tasks/t-1/retry", {}),
    ("/api/workers/w@h/shutdown", {}),
    ("/api/rate-limit", {"task_name": "proj.add", "rate": "1/s"}),
]


def test_everything_but_the_page_refuses_without_the_token(board: Dashboard) -> None:
    web = client(board)
    assert web.get("/").status_code == 200  # the page holds no data: it asks for the token
    assert web.get("/healthz").status_code == 200
    for path in [*DATA, "/api/stream"]:
        assert web.get(path).status_code == 401, path
        assert web.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401, path
    for path, body in ACTIONS:
        assert web.post(path, json=body).status_code == 401, path
        wrong = {"authorization": "Bearer s3cret-tokeN"}
        assert web.post(path, json=body, headers=wrong).status_code == 401, path
    assert board.state.task("t-1")["retried_as"] is None  # type: ignore[index]


def test_an_empty_token_is_no_token(board: Dashboard) -> None:
    web = client(board, token="")
    assert web.get("/api/info").json()["token_required"] is False


def test_the_token_opens_data_and_actions(board: Dashboard) -> None:
    web = client(board)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    for path in DATA:
        assert web.get(path, headers=bearer).status_code == 200, path
    answer = web.post("/api/tasks/t-1/retry", json={}, headers=bearer)
    assert answer.status_code == 200, answer.text
    new_id = answer.json()["result"]["task_id"]
    assert board.state.task("t-1")["retried_as"] == new_id  # type: ignore[index]


def test_login_sets_a_session_cookie_that_is_not_the_token(board: Dashboard) -> None:
    web = client(board)
    assert web.post("/api/login", json={"token": "nope"}).status_code == 401
    assert web.get("/api/info").status_code == 401
    answer = web.post("/api/login", json={"token": TOKEN})
    assert answer.status_code == 200
    cookie = web.cookies.get(COOKIE)
    assert cookie and TOKEN not in cookie
    assert "httponly" in answer.headers["set-cookie"].lower()
    assert "samesite=strict" in answer.headers["set-cookie"].lower()
    assert web.get("/api/info").status_code == 200
    web.post("/api/logout", json={})
    assert web.get("/api/info").status_code == 401


def test_actions_refuse_cross_site_requests_even_without_a_token(board: Dashboard) -> None:
    web = client(board, token=None)
    path, body = ACTIONS[1]
    evil = {"origin": "https://evil.example"}
    assert web.post(path, json=body, headers=evil).status_code == 403
    assert web.post(path, json=body, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    # A plain HTML form cannot send JSON: refused before anything happens.
    assert web.post(path, content=b"x=1", headers={"content-type": "text/plain"}).status_code == 415
    assert board.state.task("t-1")["retried_as"] is None  # type: ignore[index]
    same = {"origin": "http://testserver"}
    assert web.post(path, json=body, headers=same).status_code == 200


def test_a_loopback_server_answers_only_to_loopback_names(board: Dashboard) -> None:
    web = client(board, token=None, allowed_hosts=LOOPBACK_HOSTS)
    assert web.get("/api/info", headers={"host": "rebound.evil.example"}).status_code == 403
    assert web.get("/api/info", headers={"host": "127.0.0.1:5555"}).status_code == 200
    assert web.get("/api/info", headers={"host": "localhost"}).status_code == 200


def test_untrusted_text_stays_data(board: Dashboard) -> None:
    web = client(board, token=None)
    page = web.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text.replace('<script src="/static/app.js" defer>', "")
    answer = web.get("/api/tasks/t-1")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["args"] == HOSTILE_ARGS  # kept verbatim, as data
    assert answer.json()["exception"] == "ValueError('<b>x</b>')"
    # The page's script never hands data to an HTML parser.
    script = (STATIC / "app.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    sinks = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", code)
    assert sinks == []


def test_actions_reach_a_worker(app: App, board: Dashboard) -> None:
    app.conf.update(worker_send_task_events=True)
    board.reply_timeout = 3.0  # at most: the wait ends once each worker seen alive has answered
    board.start()
    worker = run_worker(app, concurrency=1, hostname=f"dash-{uuid.uuid4().hex[:6]}@test")
    try:
        eventually(lambda: worker.hostname in board.state.workers, 10, "the worker's events")
        web = client(board, token=None)
        revoked = web.post("/api/tasks/t-9/revoke", json={"terminate": False})
        assert revoked.status_code == 200
        assert worker.hostname in revoked.json()["result"]
        assert "t-9" in worker.revoked
        limited = web.post(
            "/api/rate-limit",
            json={"task_name": "proj.add", "rate": "2/s", "worker": worker.hostname},
        )
        assert limited.status_code == 200 and worker.hostname in limited.json()["result"]
        bad = web.post("/api/rate-limit", json={"task_name": "proj.add", "rate": "fast"})
        assert bad.status_code == 400
        bad_signal = web.post("/api/tasks/t-9/revoke", json={"terminate": True, "signal": "rm"})
        assert bad_signal.status_code == 400
        assert web.post(f"/api/workers/{worker.hostname}/shutdown", json={}).status_code == 200
        eventually(lambda: not worker.thread.is_alive(), 15, "the worker shut down")  # type: ignore[attr-defined]
    finally:
        board.stop()
        if worker.thread.is_alive():  # type: ignore[attr-defined]
            stop_worker(worker)


def test_retry_refuses_what_it_cannot_resend(board: Dashboard) -> None:
    web = client(board, token=None)
    assert web.post("/api/tasks/nope/retry", json={}).status_code == 404
    board.state.apply(
        {
            "type": "task-received",
            "hostname": "w",
            "uuid": "t-2",
            "name": "n",
            "args": "(<object object at 0x7f>,)",
            "kwargs": "{}",
        }
    )
    assert web.post("/api/tasks/t-2/retry", json={}).status_code == 409  # still running
    board.state.apply({"type": "task-failed", "hostname": "w", "uuid": "t-2", "exception": "E"})
    answer = web.post("/api/tasks/t-2/retry", json={})
    # No record in the result backend: the events alone are never enough to send it again.
    assert answer.status_code == 409 and "result_extended=True" in answer.json()["error"]


def test_cli_help_and_redacted_banner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    help_text = CliRunner().invoke(main, ["dashboard", "--help"]).output
    assert "--token" in help_text and "CELERIAC_DASHBOARD_TOKEN" in help_text
    seen: dict[str, object] = {}

    def fake_serve(board: Dashboard, host: str, port: int, token: str | None) -> None:
        seen.update(host=host, port=port, token=token, board=board)

    monkeypatch.setattr("celeriac.dashboard.serve", fake_serve)
    monkeypatch.setenv("CELERIAC_DASHBOARD_TOKEN", "from-env")
    result = CliRunner().invoke(
        main, ["dashboard", "-b", "redis://user:hunter2@127.0.0.1:6379/0", "--port", "5601"]
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "redis://user:***@127.0.0.1:6379/0" in result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 5601 and seen["token"] == "from-env"
    board = seen["board"]
    assert isinstance(board, Dashboard)
    assert "hunter2" not in str(board.info()) and board.info()["backend"] is None
