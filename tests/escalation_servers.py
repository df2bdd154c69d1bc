"""Real receivers on loopback for the escalation tests: an aiosmtpd SMTP server and an HTTP server.

Both record every delivery they get, raw (no deduplication), so the tests count what really arrived.
"""

from __future__ import annotations

import asyncio
import email
import errno
import json
import socket
import subprocess
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailSink:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.delay = delay  # a slow server keeps concurrent senders overlapping

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def ids(self) -> list[str]:
        """The Message-ID of every message received, repeats included."""
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


class SmtpServer:
    """A real SMTP server on 127.0.0.1, optionally with STARTTLS and AUTH."""

    def __init__(self, delay: float = 0.0, **smtp_options: Any) -> None:
        self.sink = MailSink(delay)
        self.options = smtp_options
        self.port = free_port()
        self.controller = self._controller()

    def _controller(self) -> Any:
        from aiosmtpd.controller import Controller

        return Controller(self.sink, hostname="127.0.0.1", port=self.port, **self.options)

    def __enter__(self) -> SmtpServer:
        # The free port is picked before the server binds it: another process (a parallel test's
        # client) can take it in between, so a lost race picks another port.
        for attempt in range(5):
            try:
                self.controller.start()
                return self
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                self.port = free_port()
                self.controller = self._controller()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class _HookHandler(BaseHTTPRequestHandler):
    server: HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        sink = self.server
        time.sleep(sink.delay)
        with sink.lock:
            sink.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
            status = sink.statuses.pop(0) if sink.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(sink.reply)))
        self.end_headers()
        self.wfile.write(sink.reply)

    def log_message(self, format: str, *args: Any) -> None:
        return


class HookServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 recording every POST; ``statuses`` are answered first, then 200."""

    daemon_threads = True

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", free_port()), _HookHandler)
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.reply = b""  # the body of every answer (a witness's receipt)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def keys(self) -> list[str]:
        """The Idempotency-Key of every request received, repeats included."""
        with self.lock:
            return [r["headers"]["Idempotency-Key"] for r in self.requests]

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def self_signed(folder: Path) -> tuple[Path, Path] | None:
    """A certificate and key for 127.0.0.1 made with the openssl command, or None without it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


def settings_toml(
    *,
    smtp: SmtpServer | None = None,
    hook: HookServer | None = None,
    lease: float = 4,
    timeout: float = 0.5,
    log: bool = True,
    extra: str = "",
    smtp_extra: str = "",
) -> str:
    """A workspace settings.toml enabling the log (unless ``log`` is false) and the receivers given."""
    channels = (["log"] if log else []) + (["smtp"] if smtp else []) + (["webhook"] if hook else [])
    text = (
        f"[escalation]\nchannels = {json.dumps(channels)}\nlease_seconds = {lease}\nretry_seconds = 0\n"
        f"{extra}\n"
    )
    if smtp:
        text += (
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsender = "breach@example.test"\n'
            'recipients = ["dpo@example.test", "ciso@example.test"]\n'
            f"timeout_seconds = {timeout}\n{smtp_extra}"
        )
    if hook:
        text += f'[webhook]\nurl = "{hook.url}"\ntimeout_seconds = {timeout}\n'
        text += "attempts = 3\nbackoff_seconds = 0.05\n"
    return text
