"""Hand a command to the account's warm ``breach daemon``, when one runs, instead of starting cold.

Loading Python's database, validation and CLI libraries costs most of a second, far more than what
``task done`` then does. ``breach daemon start`` keeps one process with them loaded; each command forks
a worker from it (see :mod:`engine.cli.daemon`). This module is the other end, run by every ``breach``:
it imports only the standard library, and when a daemon of the same installation answers, it passes
the terminal itself (its standard input, output and error as file descriptors), the arguments, the
working folder, the environment and the umask, then waits for the exit status. Output, colours,
terminal width and exit codes are the worker's, exactly as if the command ran here.

Trust goes both ways. The socket lives in a 0700 folder of this account, and before sending anything
the client asks the kernel who holds the other end (``SO_PEERCRED``): a socket held by another account
gets nothing, not even the environment. When anything looks wrong (no daemon, a folder or socket that
is not ours, an older daemon whose code changed on disk), the command simply runs here, as before.
``BREACH_DAEMON=off`` never uses one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from pathlib import Path
from types import FrameType

__all__ = [
    "ACCEPTED",
    "DAEMON_ENV",
    "INTERRUPT",
    "REQUEST_LIMIT",
    "RUN_DIR_ENV",
    "STALE",
    "ask",
    "connect",
    "read_exactly",
    "relay",
    "run_folder",
    "socket_path",
]

DAEMON_ENV = "BREACH_DAEMON"
RUN_DIR_ENV = "BREACH_RUN_DIR"
ACCEPTED = b"A"
"""The daemon's first byte: a worker runs the command."""
STALE = b"S"
"""The daemon's first byte: its code changed on disk since it started; run the command here."""
INTERRUPT = b"I"
"""The client's byte to its worker: the operator pressed Ctrl-C."""
REQUEST_LIMIT = 1 << 20
"""The most a request may hold (arguments and environment), in bytes."""
_STATUS = struct.Struct("!i")
_LENGTH = struct.Struct("!I")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def run_folder() -> Path:
    """The account's folder for the daemon's socket: ``BREACH_RUN_DIR``, else ``$XDG_RUNTIME_DIR/breach``,
    else ``~/.cache/breach/run``."""
    configured = os.environ.get(RUN_DIR_ENV)
    if configured:
        return Path(configured)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "breach"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "breach" / "run"


def socket_path() -> Path:
    """The socket of the daemon for this very installation (interpreter and package folder).

    Two virtual environments of the same version hold different code: each has its own daemon.
    """
    installation = f"{sys.executable}\0{Path(__file__).resolve().parent.parent}"
    digest = hashlib.sha256(installation.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return run_folder() / f"daemon-{digest}.sock"


def _ours(path: Path, kind: int) -> bool:
    """Whether ``path`` is of ``kind`` (not a link), owned by this account, and closed to others."""
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_IFMT(found.st_mode) == kind and found.st_uid == os.geteuid() and not found.st_mode & 0o077


def _peer_uid(conn: socket.socket) -> int:
    """The account holding the other end of ``conn``, as the kernel tells it."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return int(_CREDENTIALS.unpack(raw)[1])


def connect() -> socket.socket | None:
    """A connection to this account's daemon, or None when there is none to trust."""
    path = socket_path()
    if not hasattr(socket, "SO_PEERCRED") or not _ours(path.parent, stat.S_IFDIR):
        return None
    if not _ours(path, stat.S_IFSOCK):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
        if _peer_uid(conn) != os.geteuid():
            conn.close()
            return None
    except OSError:
        conn.close()
        return None
    return conn


def read_exactly(conn: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``conn``; fewer only when the other end closed first."""
    chunks = []
    while size > 0:
        chunk = conn.recv(min(size, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _send(conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
    payload = json.dumps(request).encode("utf-8", "surrogateescape")
    if len(payload) > REQUEST_LIMIT:
        raise OSError("request too large for the daemon")
    socket.send_fds(conn, [_LENGTH.pack(len(payload))], fds)
    conn.sendall(payload)


def ask(op: str) -> dict[str, object] | None:
    """Send the daemon a control request (``ping``, ``stop``); its JSON answer, or None when none runs."""
    conn = connect()
    if conn is None:
        return None
    try:
        _send(conn, {"op": op}, [])
        header = read_exactly(conn, _LENGTH.size)
        if len(header) < _LENGTH.size:
            return None
        answer: dict[str, object] = json.loads(read_exactly(conn, _LENGTH.unpack(header)[0]))
        return answer
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def relay(argv: list[str]) -> int | None:
    """Run ``argv`` in the daemon and return its exit status; None when it must run in this process."""
    if os.environ.get(DAEMON_ENV) == "off":
        return None
    conn = connect()
    if conn is None:
        return None
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)  # a closed standard stream cannot be handed over
        umask = os.umask(0o077)
        os.umask(umask)
        request = {"op": "run", "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}
        _send(conn, request, [0, 1, 2])
        if conn.recv(1) != ACCEPTED:
            return None  # the daemon is stopping (its code changed): this process runs the command
    except OSError:
        conn.close()
        return None
    return _wait(conn)


def _wait(conn: socket.socket) -> int:
    """Wait for the worker's exit status, passing Ctrl-C (and a polite kill) on to it."""

    def forward(_signum: int, _frame: FrameType | None) -> None:
        try:
            conn.send(INTERRUPT)
        except OSError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        status = read_exactly(conn, _STATUS.size)
    except OSError:
        status = b""
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        conn.close()
    if len(status) < _STATUS.size:
        print("error: the breach daemon's worker ended without an exit status", file=sys.stderr)
        return 1
    return int(_STATUS.unpack(status)[0])
