"""The warm ``breach daemon``: one process with breach loaded, forking a fresh worker per command.

A worker is a copy of the daemon made by ``fork`` the moment a command arrives: it inherits every
module already imported, and nothing else, since the daemon itself never opens a workspace, a database
or a settings file. The worker takes on the caller's terminal (the three file descriptors passed over
the socket), folder, environment and umask, runs ``breach`` as the caller would have, sends back the
exit status and ends. Every command therefore sees the workspace as it is now, and a failure in one
never reaches the next.

The daemon serves only its own account (the kernel's ``SO_PEERCRED``, beside a 0700 folder and a 0600
socket), stops when its code changes on disk (an upgrade, an edit) so no command runs old code, and
stops after a spell with nothing to do. Run as ``python -m engine.cli.daemon [IDLE_SECONDS]`` by
``breach daemon start``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine
from engine import __version__
from engine.cli.relay import (
    ACCEPTED,
    INTERRUPT,
    REQUEST_LIMIT,
    STALE,
    read_exactly,
    run_folder,
    socket_path,
)

__all__ = ["DEFAULT_IDLE_SECONDS", "serve"]

DEFAULT_IDLE_SECONDS = 30 * 60
# Modules a command never needs before it starts: the web view (``breach serve`` loads it in its own
# worker), the migration scripts (Alembic runs them as scripts), and this daemon.
_NOT_PRELOADED = ("engine.web", "engine.migrations", "engine.cli.daemon")
_LENGTH = struct.Struct("!I")
_STATUS = struct.Struct("!i")
_REQUEST_SECONDS = 5.0


def _preload() -> None:
    """Import what commands use, so each worker starts with it loaded."""
    for module in pkgutil.walk_packages(engine.__path__, "engine."):
        if module.name.startswith(_NOT_PRELOADED) or module.name.endswith("__main__"):
            continue
        # A module that cannot load fails in the worker that needs it, with the usual message.
        with contextlib.suppress(ImportError):
            importlib.import_module(module.name)


def _code_files() -> dict[str, int]:
    """The modification time of every module of the installed package, by path."""
    root = Path(engine.__file__).parent
    return {str(path): path.stat().st_mtime_ns for path in root.rglob("*.py")}


@dataclass
class _Daemon:
    idle_seconds: float
    listener: socket.socket
    lock: int
    code: dict[str, int]
    started: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    workers: set[int] = field(default_factory=set)
    served: int = 0
    stopping: bool = False

    def stale(self) -> bool:
        """Whether a module changed on disk since the daemon started."""
        try:
            return _code_files() != self.code
        except OSError:
            return True

    def reap(self) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ChildProcessError):
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
            self.workers.discard(pid)
            self.last_active = time.monotonic()

    def loop(self) -> None:
        while not self.stopping:
            ready, _, _ = select.select([self.listener], [], [], 1.0)
            self.reap()
            # Checked whatever woke the loop: status checks arriving every second must not keep it up.
            if not self.workers and time.monotonic() - self.last_active > self.idle_seconds:
                return
            if not ready:
                continue
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with conn:
                self.answer(conn)

    def answer(self, conn: socket.socket) -> None:
        """Read one request and act on it; a worker gets its own copy of the connection."""
        conn.settimeout(_REQUEST_SECONDS)
        fds: list[int] = []
        try:
            raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", raw)[1] != os.geteuid():
                return  # another account: not a word, not a worker
            header, fds, _flags, _addr = socket.recv_fds(conn, _LENGTH.size, 3)
            if len(header) < _LENGTH.size or _LENGTH.unpack(header)[0] > REQUEST_LIMIT:
                return
            request = json.loads(read_exactly(conn, _LENGTH.unpack(header)[0]))
            op = request.get("op") if isinstance(request, dict) else None
            if op == "ping":
                self.reply(
                    conn,
                    {
                        "pid": os.getpid(),
                        "version": __version__,
                        "started": self.started,
                        "served": self.served,
                        "idle_seconds": self.idle_seconds,
                    },
                )
            elif op == "stop":
                self.reply(conn, {"pid": os.getpid(), "stopping": True})
                self.stopping = True
            elif op == "run" and len(fds) == 3 and _valid_run(request):
                if self.stale():
                    conn.sendall(STALE)
                    self.stopping = True
                    return
                self.fork_worker(conn, request, fds)
        except (OSError, ValueError):
            return
        finally:
            for fd in fds:
                os.close(fd)

    def reply(self, conn: socket.socket, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer).encode()
        conn.sendall(_LENGTH.pack(len(payload)) + payload)

    def fork_worker(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.listener.close()
                os.close(self.lock)  # a long command must not keep the next daemon from starting
                code = _work(conn, request, fds)
            finally:
                os._exit(code)  # never unwind into the daemon's loop
        self.workers.add(pid)
        self.served += 1
        self.last_active = time.monotonic()  # a status check is no work: only commands count


def _valid_run(request: dict[str, Any]) -> bool:
    argv, env = request.get("argv"), request.get("env")
    return (
        isinstance(argv, list)
        and all(isinstance(a, str) for a in argv)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and isinstance(request.get("cwd"), str)
        and isinstance(request.get("umask"), int)
    )


def _work(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    """In the worker: become the caller's command, run it, report its exit status; return 0."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    env: dict[str, str] = request["env"]
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    os.umask(request["umask"] & 0o777)
    encoding = env.get("PYTHONIOENCODING", "utf-8").split(":")[0] or "utf-8"
    sys.stdin = open(0, encoding=encoding, closefd=False)
    sys.stdout = open(1, "w", encoding=encoding, closefd=False, buffering=1 if os.isatty(1) else -1)
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    conn.settimeout(None)
    conn.sendall(ACCEPTED)
    threading.Thread(target=_watch, args=(conn,), daemon=True).start()
    code = _run_command(request["cwd"], request["argv"])
    conn.sendall(_STATUS.pack(code))
    return 0


def _watch(conn: socket.socket) -> None:
    """Turn the client's Ctrl-C, or its going away, into a KeyboardInterrupt in the command."""
    with contextlib.suppress(OSError):
        byte = conn.recv(1)
        if byte not in (INTERRUPT, b""):
            return
    os.kill(os.getpid(), signal.SIGINT)


def _run_command(cwd: str, argv: list[str]) -> int:
    """Run ``breach ARGV`` in ``cwd`` as the ``breach`` program would; its exit status."""
    from engine.cli import run_here

    code: Any = 0
    try:
        os.chdir(cwd)
        sys.argv = ["breach", *argv]
        run_here()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def serve(idle_seconds: float = DEFAULT_IDLE_SECONDS) -> int:
    """Run the daemon until stopped, idle or stale; 0, or 1 when another one already serves."""
    from engine.files import make_private_dirs

    folder = make_private_dirs(run_folder(), root=run_folder().parent)
    path = socket_path()
    lock = os.open(
        folder / (path.stem + ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 1
    _preload()
    code = _code_files()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(previous)
    listener.listen(64)
    daemon = _Daemon(idle_seconds=idle_seconds, listener=listener, lock=lock, code=code)

    def stop(_signum: int, _frame: object) -> None:
        daemon.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        daemon.loop()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(serve(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_IDLE_SECONDS))
