"""``breach daemon start|stop|status``: the warm process that makes every command start at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Annotated

import typer

from engine.cli.relay import DAEMON_ENV, ask, run_folder, socket_path
from engine.errors import BadInput

__all__ = ["register"]

daemon_app = typer.Typer(
    help="Keep breach loaded so commands start at once (start, stop, status).", no_args_is_help=True
)
_START_SECONDS = 30.0


def _describe(answer: dict[str, object]) -> str:
    started = answer.get("started")
    since = (
        datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds")
        if isinstance(started, int | float)
        else "?"
    )
    idle = answer.get("idle_seconds")
    minutes = f"{float(idle) / 60:g}" if isinstance(idle, int | float) else "?"
    return (
        f"breach daemon running: pid {answer.get('pid')}, breach {answer.get('version')}, since {since}, "
        f"{answer.get('served')} command(s) served; it stops after {minutes} idle minute(s)"
    )


@daemon_app.command("start")
def start_cmd(
    idle_minutes: Annotated[
        float,
        typer.Option("--idle-minutes", help="Stop after this many minutes with no command (default 30)."),
    ] = 30.0,
) -> None:
    """Start the daemon for this account and installation (nothing happens if it runs already)."""
    if not 0 < idle_minutes <= 7 * 24 * 60:
        raise BadInput("--idle-minutes must be more than 0 and at most 10080 (a week)")
    if os.environ.get(DAEMON_ENV) == "off":
        raise BadInput(f"{DAEMON_ENV}=off is set, so no command would use the daemon: unset it first")
    running = ask("ping")
    if running is not None:
        print(_describe(running))
        print("next: run breach commands as usual; stop it with: breach daemon stop")
        return
    from engine.files import make_private_dirs

    folder = make_private_dirs(run_folder(), root=run_folder().parent)
    log = os.open(
        folder / (socket_path().stem + ".log"),
        os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.daemon", str(idle_minutes * 60)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not stopped by the terminal's Ctrl-C or hang-up
            close_fds=True,
            cwd="/",
        )
    finally:
        os.close(log)
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        answer = ask("ping")
        if answer is not None:
            print(_describe(answer))
            print("next: run breach commands as usual; stop it with: breach daemon stop")
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise BadInput(
        f"the daemon did not start (see {folder / (socket_path().stem + '.log')}); "
        "commands still work without it"
    )


@daemon_app.command("stop")
def stop_cmd() -> None:
    """Stop the daemon; commands then start cold again (a command running in it finishes first)."""
    answer = ask("stop")
    if answer is None:
        print("no breach daemon runs for this account and installation; start one with: breach daemon start")
        return
    deadline = time.monotonic() + 10
    while socket_path().exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"breach daemon stopped (pid {answer.get('pid')}); start it again with: breach daemon start")


@daemon_app.command("status")
def status_cmd() -> None:
    """Say whether the daemon runs, since when and how many commands it served."""
    answer = ask("ping")
    if answer is None:
        print(
            "no breach daemon runs: each command starts cold (about a second); "
            "start one with: breach daemon start"
        )
        raise typer.Exit(1)
    print(_describe(answer))
    print(f"socket: {socket_path()}")
    print("next: stop it with: breach daemon stop")


def register(app: typer.Typer) -> None:
    """Add ``breach daemon`` to ``app``."""
    app.add_typer(daemon_app, name="daemon")
