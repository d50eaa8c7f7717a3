"""The dashboard's HTTP side: a static page, JSON endpoints, a server-sent event stream, actions.

Security, in short: with a token set, every data endpoint and every action answers 401 without
it (an ``Authorization: Bearer`` header, or the session cookie that ``POST /api/login`` sets so
the page's EventSource can send it); actions also need a JSON body and, when the browser names
one, a same-site origin, so another site's page cannot fire them (CSRF); a server bound to a
loopback address answers only to loopback host names (DNS rebinding); every response forbids
inline scripts (CSP), so data shown by the page can never run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .service import ActionError, Dashboard

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "create_app", "session_value"]

STATIC = Path(__file__).with_name("static")
COOKIE = "celeriac_dashboard"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_BODY_LIMIT = 64 * 1024
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]

Handler = Callable[[Request], Awaitable[Response]]


def session_value(token: str) -> str:
    """The session cookie's value for ``token`` (a keyed hash, so the cookie is not the token)."""
    return hmac.new(token.encode(), b"celeriac-dashboard-session", hashlib.sha256).hexdigest()


class _Guard:
    """Refuses requests for host names a loopback-bound server does not have; adds the security
    headers to every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed_hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if _hostname(host) not in self.allowed_hosts:
                await JSONResponse({"error": "unknown host name"}, 403)(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + _HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _hostname(host: str) -> str:
    return (urlsplit(f"//{host}").hostname or "").lower()


def create_app(
    dashboard: Dashboard,
    token: str | None = None,
    *,
    allowed_hosts: frozenset[str] | None = None,
    tick: float = 0.5,
) -> ASGIApp:
    """The ASGI application serving ``dashboard`` (start its threads separately)."""
    token = token or None  # an empty token would be matched by an empty header
    session = session_value(token) if token else None

    def authorized(request: Request) -> bool:
        if token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return session is not None and hmac.compare_digest(cookie.encode(), session.encode())

    def denied() -> JSONResponse:
        return JSONResponse(
            {"error": "a token is needed"}, 401, headers={"www-authenticate": "Bearer"}
        )

    def same_site(request: Request) -> bool:
        """True unless the browser says the request comes from another site's page."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        return origin is None or urlsplit(origin).netloc == request.headers.get("host")

    async def json_body(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise ActionError(415, "send the parameters as application/json")
        body = await request.body()
        if len(body) > _BODY_LIMIT:
            raise ActionError(413, "request too large")
        try:
            found = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise ActionError(400, "the body is not JSON") from exc
        if not isinstance(found, dict):
            raise ActionError(400, "the body must be a JSON object")
        return found

    def data(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            return await handler(request) if authorized(request) else denied()

        return guarded

    def action(run: Callable[[Request, dict[str, Any]], Any]) -> Handler:
        async def guarded(request: Request) -> Response:
            if not same_site(request):
                return JSONResponse({"error": "cross-site request refused"}, 403)
            if not authorized(request):
                return denied()
            try:
                body = await json_body(request)
                outcome = await run_in_threadpool(run, request, body)
            except ActionError as exc:
                return JSONResponse({"error": exc.message}, exc.status)
            return JSONResponse({"ok": True, "result": outcome})

        return guarded

    async def index(request: Request) -> Response:
        # The page itself holds no data: it is served to anyone, and asks for a token if needed.
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def login(request: Request) -> Response:
        if not same_site(request):
            return JSONResponse({"error": "cross-site request refused"}, 403)
        try:
            body = await json_body(request)
        except ActionError as exc:
            return JSONResponse({"error": exc.message}, exc.status)
        given = body.get("token")
        if token is None or session is None:
            return JSONResponse({"ok": True, "token_required": False})
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            return denied()
        response = JSONResponse({"ok": True, "token_required": True})
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    async def logout(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    @data
    async def info(request: Request) -> Response:
        return JSONResponse({**dashboard.info(), "token_required": token is not None})

    @data
    async def snapshot(request: Request) -> Response:
        since = _int(request.query_params.get("since"), 0)
        found = dashboard.state.changes_since(since)
        return Response(orjson.dumps(found), 200, None, "application/json")

    @data
    async def tasks(request: Request) -> Response:
        q = request.query_params
        found = dashboard.state.find_tasks(
            q.get("search"), q.get("state"), q.get("worker"), min(_int(q.get("limit"), 100), 1000)
        )
        return Response(orjson.dumps(found), 200, None, "application/json")

    @data
    async def task(request: Request) -> Response:
        found = dashboard.state.task(request.path_params["task_id"])
        if found is None:
            return JSONResponse({"error": "no such task"}, 404)
        return Response(orjson.dumps(found), 200, None, "application/json")

    @data
    async def stream(request: Request) -> Response:
        async def updates() -> Any:
            seen, sent_at = 0, 0.0
            while not dashboard.stopping and not await request.is_disconnected():
                now = time.monotonic()
                # Also every few seconds without changes: workers go offline by silence.
                if dashboard.state.version != seen or seen == 0 or now - sent_at >= 2:
                    change = await run_in_threadpool(dashboard.state.changes_since, seen)
                    change["connected"], change["error"] = dashboard.connected, dashboard.error
                    seen, sent_at = change["version"], now
                    yield b"event: update\ndata: " + orjson.dumps(change) + b"\n\n"
                await asyncio.sleep(tick)

        return StreamingResponse(
            updates(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    def revoke(request: Request, body: dict[str, Any]) -> Any:
        return dashboard.revoke(
            request.path_params["task_id"], bool(body.get("terminate")), body.get("signal")
        )

    def retry(request: Request, body: dict[str, Any]) -> Any:
        return {"task_id": dashboard.retry(request.path_params["task_id"])}

    def shutdown(request: Request, body: dict[str, Any]) -> Any:
        dashboard.shutdown(request.path_params["hostname"])
        return None

    def rate_limit(request: Request, body: dict[str, Any]) -> Any:
        return dashboard.rate_limit(body.get("task_name"), body.get("rate"), body.get("worker"))

    routes = [
        Route("/", index),
        Route("/healthz", health),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/info", info),
        Route("/api/snapshot", snapshot),
        Route("/api/stream", stream),
        Route("/api/tasks", tasks),
        Route("/api/tasks/{task_id}", task),
        Route("/api/tasks/{task_id}/revoke", action(revoke), methods=["POST"]),
        Route("/api/tasks/{task_id}/retry", action(retry), methods=["POST"]),
        Route("/api/workers/{hostname}/shutdown", action(shutdown), methods=["POST"]),
        Route("/api/rate-limit", action(rate_limit), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return _Guard(Starlette(routes=routes), allowed_hosts)


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default
