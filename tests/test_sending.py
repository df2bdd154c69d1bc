"""Sending that says what is wrong: no mail server set, a server out of reach, a progress bar that ends."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections import Counter

import pytest
from conftest import BREACH, assert_one_line_error, at_rest
from test_delivery import Sink, free_port, mail_settings
from test_notices import workspace
from test_people import DATA

from engine.notices.send import send_notices
from engine.wiring import hooks_for


def prepare(cli, settings: str) -> str:
    """An incident with the agency list and notice content, in a workspace with ``settings``."""
    workspace(cli.home, cli.db_url or "", settings)
    incident = cli.open_incident()
    cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
    cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
    return incident


def closed_port_settings(port: int, give_up: float) -> str:
    """Mail settings naming a loopback port nobody listens on."""
    sink = Sink()
    sink.port = port
    return mail_settings(sink).replace("give_up_seconds = 0.5", f"give_up_seconds = {give_up}")


class TestNoMailServer:
    def test_partial_smtp_names_only_what_is_missing(self, cli):
        """[smtp] with a port but no host or sender: exit 2 at once naming both and the command."""
        workspace(cli.home, cli.db_url or "", "[smtp]\nport = 2525\n")
        incident = cli.open_incident()
        before = at_rest(cli.json("incident", "show", incident))
        started = time.monotonic()
        result = cli("notices", "send", incident)
        assert time.monotonic() - started < 15
        assert_one_line_error(result, "missing smtp.host, smtp.sender", "breach config set smtp.host")
        assert at_rest(cli.json("incident", "show", incident)) == before
        assert cli.json("notices", "status", incident)["deliveries"] == {}

    def test_config_set_makes_it_usable(self, cli):
        """Setting host and sender with breach config set is all a workspace needs to pass the check."""
        workspace(cli.home, cli.db_url or "", "")
        cli("config", "set", "smtp.host", "mail.example-tax.cn", check=True)
        incident = cli.open_incident()
        assert_one_line_error(cli("notices", "send", incident), "missing smtp.sender")
        cli("config", "set", "smtp.sender", "bounces@example-tax.cn", check=True)
        checked = cli("config", "check")
        assert "smtp: ok" in checked.stdout, checked.stdout


class TestServerOutOfReach:
    def test_closed_port_is_said_at_once_then_given_up_and_resumed(self, cli):
        """Connection refused: a warning naming the server right away, the run stops after
        give_up_seconds with exit 1, every delivery pending; once the server is up each goes out once."""
        port = free_port()
        incident = prepare(cli, closed_port_settings(port, give_up=3))
        env = {**os.environ, "BREACH_HOME": str(cli.home)}
        env.pop("BREACH_DATABASE_URL", None)
        if cli.db_url:
            env["BREACH_DATABASE_URL"] = cli.db_url
        started = time.monotonic()
        process = subprocess.Popen(
            [BREACH, "notices", "send", incident],
            env=env,
            cwd=cli.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        first = process.stderr.readline()
        said_at = time.monotonic() - started
        rest, _ = process.communicate(timeout=60)[::-1], None
        ended_at = time.monotonic() - started
        assert f"127.0.0.1:{port} refused the connection" in first and "smtp.port" in first, first
        assert "trying again for up to 3 s" in first
        assert process.returncode == 1, rest
        assert ended_at - said_at >= 2.0, (said_at, ended_at)  # said before the waiting, not after
        assert ended_at < 40
        assert "could not be reached" in rest[0] and f"breach notices send {incident}" in rest[0]
        assert rest[0].count("refused the connection") == 0  # said once, not per recipient or attempt
        status = cli.json("notices", "status", incident)
        assert status["deliveries"] == {"customer_notice": {"pending": 3}, "client_notice": {"pending": 1}}
        assert status["channels"] == {"email": {"pending": 4}}
        assert {g["reason"] for g in status["reasons"]} == {
            f"mail server 127.0.0.1:{port} refused the connection: is it running, and are smtp.host and "
            "smtp.port right?"
        }
        from aiosmtpd.controller import Controller

        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            again = cli("notices", "send", incident)
            assert again.returncode == 0, again.stderr
            ids = Counter(sink.ids())
            assert len(ids) == 4 and set(ids.values()) == {1}
            assert cli("notices", "send", incident).returncode == 0
            assert len(sink.ids()) == 4
        finally:
            controller.stop()
        shown = cli.json("notices", "status", incident)
        assert shown["channels"] == {"email": {"sent": 4}} and shown["problems"] == []

    def test_refused_login_stops_at_once(self, store, builtin_source, tmp_path, db_url, monkeypatch):
        """A login the server refuses: said once, no waiting (time will not mend it), nothing charged."""
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult
        from test_people import do_import, give_content, open_incident

        def refuse(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=False, handled=False)

        sink = Sink()
        sink.port = free_port()
        controller = Controller(
            sink,
            hostname="127.0.0.1",
            port=sink.port,
            authenticator=refuse,
            auth_required=True,
            auth_require_tls=False,
        )
        controller.start()
        try:
            incident = open_incident(store, builtin_source)
            do_import(store, incident, DATA / "agency.csv")
            give_content(store, incident)
            login = 'username = "notices"\npassword_env = "TEST_SMTP_PW"\n'
            settings = mail_settings(sink, smtp_extra=login).replace(
                "give_up_seconds = 0.5", "give_up_seconds = 60"
            )
            ws = workspace(tmp_path / "ws", db_url, settings)
            monkeypatch.setenv("TEST_SMTP_PW", "wrong")
            said: list[str] = []
            started = time.monotonic()
            report = send_notices(
                store, ws, incident, actor="alice", hooks=hooks_for(ws), on_problem=said.append
            )
            took = time.monotonic() - started
        finally:
            controller.stop()
        assert took < 20, said
        assert len(said) == 1 and "refused the login" in said[0] and "TEST_SMTP_PW" in said[0]
        assert "stopping" in said[0] and "wrong" not in said[0]
        assert not report.complete and report.sent.failed == [] and sink.received == []
        assert report.to_json()["server_unreachable"]
        from sqlalchemy import select

        from engine.notices.delivery import DELIVERY

        with store.read() as s:
            rows = s.execute(select(DELIVERY.c.status, DELIVERY.c.attempts)).all()
        assert rows and {(status, attempts) for status, attempts in rows} == {("pending", 0)}

    def test_silent_server_times_out_and_is_named(self, store, builtin_source, tmp_path, db_url):
        """A server that accepts but never greets: the timeout is named with what to check, bounded."""
        from test_people import do_import, give_content, open_incident

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        try:
            sink = Sink()
            sink.port = listener.getsockname()[1]
            incident = open_incident(store, builtin_source)
            do_import(store, incident, DATA / "agency.csv")
            give_content(store, incident)
            settings = mail_settings(sink).replace("timeout_seconds = 2", "timeout_seconds = 0.5")
            ws = workspace(
                tmp_path / "ws", db_url, settings.replace("give_up_seconds = 0.5", "give_up_seconds = 1")
            )
            said: list[str] = []
            started = time.monotonic()
            report = send_notices(
                store, ws, incident, actor="alice", hooks=hooks_for(ws), on_problem=said.append
            )
            took = time.monotonic() - started
        finally:
            listener.close()
        assert len(said) == 1 and "did not answer within 0.5 s" in said[0] and "firewall" in said[0]
        assert 1.0 <= took < 20 and not report.complete and report.sent.unreachable


class TestProgress:
    def test_progress_ends_at_its_total_despite_retries(self, store, builtin_source, tmp_path, db_url):
        """Deliveries retried within the run count once: the bar's count ends at its total."""
        from aiosmtpd.controller import Controller
        from test_people import do_import, give_content, open_incident

        sink = Sink()
        sink.port = free_port()
        sink.refuse_data = 2
        controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
        controller.start()
        try:
            incident = open_incident(store, builtin_source)
            do_import(store, incident, DATA / "agency.csv")
            give_content(store, incident)
            ws = workspace(tmp_path / "ws", db_url, mail_settings(sink))
            totals: list[int] = []
            steps: list[int] = []
            report = send_notices(
                store,
                ws,
                incident,
                actor="alice",
                hooks=hooks_for(ws),
                on_total=totals.append,
                on_advance=steps.append,
            )
        finally:
            controller.stop()
        assert report.complete and len(report.sent.retrying) == 2
        assert totals == [4] and sum(steps) == 4


@pytest.mark.parametrize("listing", [False, True])
def test_status_is_a_summary_rows_only_with_list(cli, listing):
    """notices status: counts by kind and channel and grouped reasons; customer ids only with --list."""
    port = free_port()
    incident = prepare(cli, closed_port_settings(port, give_up=0))
    assert cli("notices", "send", incident).returncode == 1
    shown = cli("notices", "status", incident, *(["--list"] if listing else []), check=True).stdout
    assert "channel email: pending 4" in shown and "pending ×4: mail server 127.0.0.1" in shown
    assert ("P-0001" in shown) == listing
