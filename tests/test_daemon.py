"""The warm ``breach daemon``: commands it runs behave as if run cold, and it trusts only its account.

Each test starts its own daemon in its own run folder (``BREACH_RUN_DIR``) and checks that the daemon
really served the command (its count of commands served), so a silent fall-back to the cold path
cannot pass for the daemon working.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BREACH, REPO, Cli, assert_one_line_error, at_rest

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="needs SO_PEERCRED (Linux)")


def served(cli: Cli, env: dict[str, str]) -> int:
    """How many commands the daemon has served, from ``breach daemon status``."""
    status = cli("daemon", "status", env=env, check=True).stdout
    found = re.search(r"(\d+) command\(s\) served", status)
    assert found, status
    return int(found.group(1))


@pytest.fixture
def local(tmp_path: Path) -> Cli:
    """A workspace on SQLite, for what does not depend on the database (the daemon's own behaviour)."""
    home = tmp_path / "ws"
    home.mkdir()
    runner = Cli(home, None)
    runner("init", str(home), check=True)
    return runner


@pytest.fixture
def warm(cli: Cli, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an operator whose account runs a daemon (stopped afterwards)."""
    env = {"BREACH_RUN_DIR": str(tmp_path / "run")}
    started = cli("daemon", "start", "--idle-minutes", "5", env=env, check=True)
    assert "breach daemon running" in started.stdout
    assert "next:" in started.stdout
    yield env
    cli("daemon", "stop", env=env)


@pytest.fixture
def local_warm(local: Cli, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A daemon serving the SQLite workspace ``local`` (stopped afterwards)."""
    env = {"BREACH_RUN_DIR": str(tmp_path / "run")}
    local("daemon", "start", "--idle-minutes", "5", env=env, check=True)
    yield env
    local("daemon", "stop", env=env)


def test_commands_run_in_the_daemon_as_they_would_cold(cli: Cli, warm: dict[str, str]) -> None:
    incident = cli.open_incident()
    cold = {"BREACH_DAEMON": "off", **warm}
    before = served(cli, warm)
    assert (
        cli("assess", incident, "--json", env=warm, check=True).stdout
        == cli("assess", incident, "--json", env=cold, check=True).stdout
    )
    done = cli("task", "done", incident, "stop_transfer", env=warm, check=True)
    assert "what now" in done.stdout  # the same screen as a cold run
    assert served(cli, warm) == before + 2
    shown = json.loads(cli("incident", "show", incident, "--json", env=cold, check=True).stdout)
    task = next(t for t in shown["tasks"] if t["id"] == "stop_transfer")
    assert task["state"] == "done"
    # The worker records the same person a cold command would: both are this account.
    cold_done = cli("task", "done", incident, "preserve_evidence", env=cold, check=True)
    assert cold_done.returncode == 0
    shown = json.loads(cli("incident", "show", incident, "--json", env=cold, check=True).stdout)
    actors = {t["done_by"] for t in shown["tasks"] if t["id"] in ("stop_transfer", "preserve_evidence")}
    assert len(actors) == 1, shown["tasks"]
    assert at_rest(shown) == at_rest(json.loads(cli("incident", "show", incident, "--json", env=warm).stdout))


def test_bad_input_through_the_daemon_is_one_line_and_exit_2(cli: Cli, warm: dict[str, str]) -> None:
    incident = cli.open_incident()
    before = served(cli, warm)
    result = cli("task", "done", incident, "no_such_task", env=warm)
    assert_one_line_error(result, "no_such_task")
    assert served(cli, warm) == before + 1
    usage = cli("task", "done", env=warm)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_output_to_a_pipe_is_whole_at_80_columns(local: Cli, local_warm: dict[str, str]) -> None:
    incident = local.open_incident()
    listed = local("deadlines", "list", "--all", env={**local_warm, "COLUMNS": "80"}, check=True)
    assert incident in listed.stdout
    assert "INC-2026-…" not in listed.stdout
    assert "Usage: breach " in local("deadlines", "--help", env=local_warm, check=True).stdout


def test_ctrl_c_reaches_the_command_in_the_daemon(local: Cli, local_warm: dict[str, str]) -> None:
    env = {**os.environ, "BREACH_HOME": str(local.home), **local_warm}
    if local.db_url:
        env["BREACH_DATABASE_URL"] = local.db_url
    client = subprocess.Popen(
        [BREACH, "serve", "--port", "0"], env=env, cwd=local.home, stdout=subprocess.PIPE, text=True
    )
    try:
        line = client.stdout.readline() if client.stdout else ""
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        client.send_signal(signal.SIGINT)
        assert client.wait(timeout=20) in (0, 130)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break  # the worker stopped serving
            time.sleep(0.1)
        else:
            pytest.fail("the command in the daemon kept running after Ctrl-C")
    finally:
        client.kill()
        client.wait()


def test_the_client_trusts_only_a_private_run_folder(
    local: Cli, local_warm: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    assert folder.stat().st_mode & 0o777 == 0o700
    sockets = list(folder.glob("*.sock"))
    assert len(sockets) == 1 and sockets[0].stat().st_mode & 0o777 == 0o600
    folder.chmod(0o755)  # now another account could have put a socket there: not used
    try:
        status = local("daemon", "status", env=local_warm)
        assert status.returncode == 1 and "no breach daemon runs" in status.stdout
    finally:
        folder.chmod(0o700)
    assert served(local, local_warm) == 0  # trusted again once private


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another account needs root")
def test_another_account_gets_no_answer(local: Cli) -> None:
    # A run folder straight under /tmp, so that the other account can reach it once it is opened.
    folder = Path(tempfile.mkdtemp(prefix="breach-run-"))
    env = {"BREACH_RUN_DIR": str(folder)}
    local("daemon", "start", env=env, check=True)
    try:
        sock = next(folder.glob("*.sock"))
        # Open the way on purpose, as a careless chmod would: the daemon itself still refuses the stranger.
        folder.chmod(0o711)
        sock.chmod(0o666)
        result = _probe_as_nobody(sock)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "b''"  # connection closed without a word
        folder.chmod(0o700)
        sock.chmod(0o600)
        assert served(local, env) == 0  # and the daemon serves its own account as before
    finally:
        local("daemon", "stop", env=env)
        shutil.rmtree(folder, ignore_errors=True)


def _probe_as_nobody(sock: Path) -> subprocess.CompletedProcess[str]:
    """Ask the daemon at ``sock`` for its status as the account ``nobody`` (uid 65534)."""
    probe = (
        "import socket, struct, sys\n"
        "c = socket.socket(socket.AF_UNIX)\n"
        f"c.connect({str(sock)!r})\n"
        'payload = b\'{"op": "ping"}\'\n'
        "try:\n"
        "    socket.send_fds(c, [struct.pack('!I', len(payload))], [])\n"
        "    c.sendall(payload)\n"
        "    c.settimeout(10)\n"
        "    print(repr(c.recv(100)))\n"
        "except (ConnectionResetError, BrokenPipeError):\n"
        "    print(repr(b''))\n"
    )
    # The stranger runs the system's interpreter: the project's may sit in root's private home.
    interpreter = "/usr/bin/python3"
    if not os.access(interpreter, os.X_OK):
        pytest.skip("no /usr/bin/python3 for the other account")
    return subprocess.run(
        [interpreter, "-c", probe],
        capture_output=True,
        text=True,
        user=65534,
        group=65534,
        extra_groups=[],
        cwd="/",
        timeout=30,
    )


def test_start_twice_keeps_one_daemon_and_bad_idle_is_refused(local: Cli, local_warm: dict[str, str]) -> None:
    first = local("daemon", "status", env=local_warm, check=True).stdout
    again = local("daemon", "start", env=local_warm, check=True).stdout
    pid = re.search(r"pid (\d+)", first).group(1)  # type: ignore[union-attr]
    assert f"pid {pid}" in again
    assert_one_line_error(local("daemon", "start", "--idle-minutes", "0", env=local_warm), "--idle-minutes")
    stopped = local("daemon", "stop", env=local_warm, check=True).stdout
    assert f"pid {pid}" in stopped and "breach daemon start" in stopped
    status = local("daemon", "status", env=local_warm)
    assert status.returncode == 1 and "breach daemon start" in status.stdout


def test_an_idle_daemon_stops_by_itself(local: Cli, tmp_path: Path) -> None:
    env = {"BREACH_RUN_DIR": str(tmp_path / "idle")}
    local("daemon", "start", "--idle-minutes", "0.05", env=env, check=True)
    deadline = time.monotonic() + 60
    # Asking for its status is no work for it: only commands keep a daemon from idling.
    while local("daemon", "status", env=env).returncode == 0:
        assert time.monotonic() < deadline, "the daemon did not stop after its idle time"
        time.sleep(0.3)
    assert not list((tmp_path / "idle").glob("*.sock"))


def test_changed_code_stops_the_daemon_and_the_command_runs_cold(tmp_path: Path) -> None:
    # A copy of the package of its own, so that touching a module stops only this test's daemon.
    code = tmp_path / "code"
    shutil.copytree(REPO / "engine", code / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    for data in ("config", "playbooks", "templates"):  # the built-in data, as a source checkout has it
        (code / data).symlink_to(REPO / data)
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "BREACH_RUN_DIR": str(tmp_path / "run"),
        "BREACH_HOME": str(tmp_path / "ws"),
    }
    breach = [sys.executable, "-c", "import sys; from engine.cli import main; sys.argv[0] = 'breach'; main()"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Run from the test's folder: from the repository, Python would load its engine, not the copy.
        return subprocess.run(
            [*breach, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )

    initialised = run("init", str(tmp_path / "ws"))
    assert initialised.returncode == 0, initialised.stderr
    started = run("daemon", "start")
    assert started.returncode == 0, started.stderr
    try:
        assert "0 command(s) served" in run("daemon", "status").stdout
        module = code / "engine" / "cli" / "summary.py"
        os.utime(module, ns=(module.stat().st_atime_ns, module.stat().st_mtime_ns + 10**9))
        listed = run("incident", "list")
        assert listed.returncode == 0, listed.stderr  # run cold, by the changed code
        status = run("daemon", "status")
        assert status.returncode == 1 and "no breach daemon runs" in status.stdout
    finally:
        run("daemon", "stop")
