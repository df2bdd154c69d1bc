"""Listening: where the dashboard may bind, and running it under uvicorn on a socket bound beforehand.

Loopback is the default and needs no token while the workspace has none. Any other address is refused
until a token exists, and from then on every request needs one. The socket is bound here, before
uvicorn starts, so an address in use or not ours is one clear error instead of a server log.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from engine.errors import BadInput
from engine.store.readmodel import Reader
from engine.workspace import Workspace

__all__ = ["Listening", "bind", "is_loopback", "run"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` counts; other names do not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Listening:
    """A bound socket and whether every request must carry a token."""

    sock: socket.socket
    host: str
    port: int
    tokens_required: bool

    @property
    def url(self) -> str:
        """Where a browser opens the dashboard."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"


def _active_tokens(workspace: Workspace) -> int:
    reader = Reader(workspace.db_url)
    try:
        if not reader.has_table("access_token"):
            raise BadInput("the database has no access-token table yet: run 'breach db upgrade'")
        return int(reader.rows("SELECT COUNT(*) AS n FROM access_token WHERE revoked_at IS NULL")[0]["n"])
    finally:
        reader.close()


def bind(workspace: Workspace, host: str, port: int) -> Listening:
    """Bind ``host:port`` if the rules allow it; refused with what to do otherwise."""
    if not 0 <= port <= 65535:
        raise BadInput(f"--port {port}: use 1 to 65535 (0 picks a free port)")
    if len(host) > 253 or not host:
        raise BadInput("--host: an address such as 127.0.0.1")
    tokens = _active_tokens(workspace)
    loopback = is_loopback(host)
    if not loopback and tokens == 0:
        raise BadInput(
            f"refusing to listen on {host}: beyond loopback every request needs a token, and none exists; "
            "create one with 'breach token create NAME --role viewer', or keep the default 127.0.0.1"
        )
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    return Listening(sock, host, int(bound), tokens_required=not loopback or tokens > 0)


def run(workspace: Workspace, listening: Listening, *, locale: str) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); uvicorn's access log stays off: paths and queries
    are the operator's business, not a log's."""
    import uvicorn

    from engine.web.app import create_app

    app = create_app(workspace, always_required=not is_loopback(listening.host), locale=locale)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listening.sock])
