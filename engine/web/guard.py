"""Who may read: the access-token check in front of every page and API call, and the record of refusals.

While the workspace has no token and the server listens on loopback only, it is one operator's local
view and every request is served. Once any token exists, or whenever the server listens beyond
loopback, every request must carry a valid one: ``Authorization: Bearer <token>`` (scripts) or the
``breach_token`` cookie that ``/login`` sets (browsers). A request without one is refused with 401, a
token of the wrong role with 403, and each refusal is appended to the workspace log with the method,
the path (never the query, which may carry anything) and the client's address.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from anyio import to_thread

from engine.store.db import Store
from engine.tokens import PREFIX, digest
from engine.web.readers import ReaderPool

__all__ = ["COOKIE", "Guard", "TokenCheck"]

COOKIE = "breach_token"
_MAX_TOKEN = 200
_MAX_DETAIL_PATH = 200

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class TokenCheck:
    """What the guard decided: served (with the token's name and role, if any) or refused, and why."""

    allowed: bool
    name: str | None = None
    role: str | None = None
    status: int = 200
    reason: str = ""


def _presented(scope: Scope) -> str | None:
    """The token a request carries, from the Authorization header or the cookie."""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()[:_MAX_TOKEN]
        elif key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(bytes(value).decode("latin-1"))
            except Exception:  # a malformed cookie header is no token
                continue
            if COOKIE in jar:
                return str(jar[COOKIE].value)[:_MAX_TOKEN]
    return None


class Guard:
    """ASGI middleware: checks the token of every HTTP request before the app sees it."""

    def __init__(self, app: App, *, store: Store, readers: ReaderPool, always_required: bool) -> None:
        self.app = app
        self.store = store
        self.readers = readers
        self.always_required = always_required

    def check(self, token: str | None, path: str) -> TokenCheck:
        """Decide one request (runs in a worker thread: it reads the database)."""
        reader = self.readers.get()
        if token is None or not token.startswith(PREFIX):
            required = self.always_required or bool(
                reader.rows("SELECT id FROM access_token WHERE revoked_at IS NULL LIMIT 1")
            )
            if not required:
                return TokenCheck(True)
            return TokenCheck(False, status=401, reason="no valid token")
        wanted = digest(token)
        found = reader.rows(
            "SELECT name, role, token_sha256 FROM access_token WHERE token_sha256 = ? AND revoked_at IS NULL",
            (wanted,),
        )
        if not found or not hmac.compare_digest(str(found[0]["token_sha256"]), wanted):
            return TokenCheck(False, status=401, reason="unknown or revoked token")
        name, role = str(found[0]["name"]), str(found[0]["role"])
        if role == "api" and not path.startswith("/api/"):
            return TokenCheck(False, name, role, 403, f"token {name} has role api: pages need a viewer token")
        return TokenCheck(True, name, role)

    def record(self, scope: Scope, check: TokenCheck) -> None:
        """Append the refusal to the workspace log (worker thread)."""
        from engine.incidents.worklog import append_log

        client = scope.get("client") or ("?", 0)
        path = str(scope.get("path", ""))[:_MAX_DETAIL_PATH]
        detail = f"web: {scope.get('method', '?')} {path} refused ({check.status}): {check.reason}"
        with self.store.write() as session:
            append_log(session, actor=f"web:{client[0]}", kind="web_refused", incident_id="", detail=detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path == "/login":  # the form that turns a token into a cookie checks it itself
            await self.app(scope, receive, send)
            return
        check = await to_thread.run_sync(self.check, _presented(scope), path)
        if check.allowed:
            scope.setdefault("state", {})["token"] = check
            await self.app(scope, receive, send)
            return
        await to_thread.run_sync(self.record, scope, check)
        await refuse(scope, send, check)


async def refuse(scope: Scope, send: Send, check: TokenCheck) -> None:
    """401 or 403: JSON for the API, a short page with the way in for people."""
    import json

    path = str(scope.get("path", ""))
    if path.startswith("/api/"):
        body = json.dumps({"error": check.reason, "status": check.status}).encode()
        kind = b"application/json"
    else:
        body = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>breach: sign in</title></head><body>"
            f"<h1>{check.status}: {check.reason}</h1><p>Open <a href='/login'>/login</a> and paste a token "
            "(created with <code>breach token create NAME --role viewer</code>).</p></body></html>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if check.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="breach"'))
    await send({"type": "http.response.start", "status": check.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
