"""Real checker processes: four `breach deadlines check` at once; `breach scheduler run` stops cleanly.

Runs on SQLite and PostgreSQL. Receivers are a real SMTP server and a real HTTP server on loopback that
count raw arrivals, so a duplicate anywhere would show.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time

import pytest
from conftest import BREACH, assert_one_line_error
from escalation_servers import HookServer, SmtpServer, settings_toml
from sqlmodel import select
from test_escalation import Env

from engine.deadlines.tables import Escalation, EscalationDelivery

pytestmark = pytest.mark.slow


def environment(cli) -> dict[str, str]:
    env = {**os.environ, "BREACH_HOME": str(cli.home), "COLUMNS": "200"}
    env.pop("BREACH_DATABASE_URL", None)
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    return env


class TestFourCheckers:
    def test_each_alert_once_per_channel(self, cli, builtin_source):
        """Four checkers at once decide each alert once and deliver it once per channel, nothing lost."""
        with SmtpServer(delay=0.03) as smtp, HookServer(delay=0.02) as hook:
            env = Env(cli.home, cli.db_url, settings_toml(smtp=smtp, hook=hook, timeout=5, lease=60))
            for hours_ago in (
                80,
                80,
                80,
                40,
                40,
                40,
            ):  # all three targets missed, or one missed and two warned
                env.incident(builtin_source, hours_ago=hours_ago)
            procs = [
                subprocess.Popen(
                    [BREACH, "deadlines", "check", "--json"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=environment(cli),
                    cwd=cli.home,
                )
                for _ in range(4)
            ]
            outputs = [p.communicate(timeout=180) for p in procs]
            assert [p.returncode for p in procs] == [1, 1, 1, 1], [o[1] for o in outputs]
            decided = [a for out, _ in outputs for a in json.loads(out)["alerts"]]
            assert len(decided) == 18 and len({(a["deadline_id"], a["kind"]) for a in decided}) == 18
            assert sorted({a["kind"] for a in decided}) == ["missed", "warn:50%"]
            assert len(smtp.sink.ids()) == 18 and len(set(smtp.sink.ids())) == 18
            assert len(hook.keys()) == 18 and len(set(hook.keys())) == 18
            logged = [
                line for _, err in outputs for line in err.splitlines() if line.startswith("escalation ")
            ]
            assert len(logged) == 18 and len({line.split(" id=")[1] for line in logged}) == 18
            with env.store.read() as s:
                assert len(list(s.exec(select(Escalation)))) == 18
                rows = list(s.exec(select(EscalationDelivery)))
            assert len(rows) == 54 and {(r.status, r.attempts) for r in rows} == {("sent", 1)}


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue, needle: str, count: int, seen: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(needle in line for line in seen) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        seen.append(lines.get(timeout=remaining))


class TestScheduler:
    @pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
    def test_runs_scans_and_stops_cleanly(self, cli, builtin_source, stop):
        """The scheduler scans on its interval, prints one line per alert (not per scan), escalates once,
        and exits 0 on SIGTERM or SIGINT."""
        env = Env(cli.home, cli.db_url, settings_toml())
        env.incident(builtin_source, hours_ago=30)
        proc = subprocess.Popen(
            [BREACH, "scheduler", "run", "--every", "1s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(cli),
            cwd=cli.home,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
        seen: list[str] = []
        try:
            _wait_for(lines, "ALERT ", 1, seen)
            time.sleep(3)  # three more scans, which have nothing new to say
            proc.send_signal(stop)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        _wait_for(lines, "scheduler stopped", 1, seen, timeout=5)
        assert [line for line in seen if line.startswith("scan ")] == [seen[1]]
        (alert,) = [line for line in seen if line.startswith("ALERT ")]
        # What, which incident and clock, how late, and the legal basis, in one line.
        assert alert.startswith("ALERT ") and " POLICY-CLIENT-NOTICE due " in alert, alert
        assert "(overdue by " in alert and "个人信息保护法" in alert, alert
        assert seen[-1] == f"scheduler stopped ({stop.name})"
        with env.store.read() as s:
            assert len(list(s.exec(select(Escalation)))) == 1
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()

    def test_bad_interval_is_one_line(self, cli):
        """A malformed --every is refused in one line, exit 2."""
        assert_one_line_error(cli("scheduler", "run", "--every", "soon"), "malformed interval")
