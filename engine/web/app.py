"""The ASGI application: pages and API behind the token guard, with headers that keep a browser strict.

Built with Starlette (the toolkit FastAPI is made of) and served by uvicorn. Every handler only reads;
the one write is the workspace-log entry of a refused request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from engine.store.db import Store
from engine.web.api import api_routes
from engine.web.context import WebContext
from engine.web.guard import App, Guard, Receive, Scope, Send
from engine.web.pages import page_routes
from engine.web.readers import ReaderPool
from engine.workspace import Workspace

__all__ = ["SECURITY_HEADERS", "create_app"]

# Scripts only from this server (the countdown), styles inline (the report's own), images only as data,
# no framing, no form posts elsewhere, nothing cached: the pages carry the state of a live incident.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


class _Headers:
    """Adds :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in present
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 404))
    message = "no such page" if status == 404 else "method not allowed: this server only reads"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return HTMLResponse(
        f"<!DOCTYPE html><title>{status}</title><p>{message}: <a href='/'>incidents</a></p>", status
    )


def create_app(workspace: Workspace, *, always_required: bool, locale: str = "zh-CN") -> App:
    """The dashboard and API over ``workspace``'s database.

    ``always_required``: every request needs a token even when none exists (the server listens beyond
    loopback); otherwise tokens are needed once the workspace has any.
    """
    store = Store(workspace.db_url)
    store.check_ready()
    readers = ReaderPool(workspace.db_url)
    web = WebContext(workspace=workspace, store=store, readers=readers, locale=locale)
    guard_holder: list[Guard] = []

    def shutdown() -> None:
        readers.close()
        store.dispose()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        shutdown()

    app = Starlette(routes=[], exception_handlers={404: _not_found, 405: _not_found}, lifespan=lifespan)
    guard = Guard(app, store=store, readers=readers, always_required=always_required)
    guard_holder.append(guard)
    app.router.routes.extend([*api_routes(web), *page_routes(web, guard)])
    return _Headers(guard)
