"""Escalations: the outbox, real SMTP and HTTP receivers on loopback, retries, and crash recovery.

The receivers count raw arrivals (they never deduplicate), so "exactly once" is checked at the wire.
Crash tests kill a real ``breach deadlines check`` at a fail point (``BREACH_FAILPOINT``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import assert_one_line_error
from escalation_servers import HookServer, SmtpServer, free_port, self_signed, settings_toml
from sqlmodel import select

from engine.deadlines.checker import scan
from engine.deadlines.escalation import load_settings
from engine.deadlines.tables import EscalationDelivery
from engine.errors import BadInput
from engine.incidents import flow
from engine.incidents.opening import open_incident
from engine.incidents.tasks import complete_task
from engine.store.db import Store
from engine.wiring import hooks_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"
TITLE = "张三等员工工资表泄露"  # a title a careless operator might write: must never reach the log
POLICY_RULES = {"POLICY-CLIENT-NOTICE", "POLICY-PIPL57-REGULATOR", "POLICY-PIPL57-INDIVIDUALS"}


class Env:
    """A workspace with its settings, database and hooks, on the test's database."""

    def __init__(self, home, db_url, settings: str) -> None:
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "settings.toml").write_text(settings, encoding="utf-8")
        self.workspace = Workspace.resolve(home, db_url)
        self.store = Store(self.workspace.db_url)
        self.hooks = hooks_for(self.workspace)

    def incident(self, source, *, hours_ago: float, drill: bool = False) -> str:
        discovered = datetime.now(UTC) - timedelta(hours=hours_ago)
        return open_incident(
            self.store,
            source=source,
            title=TITLE,
            actor="alice",
            zone=ZONE,
            discovered_at=discovered,
            drill=drill,
            hooks=self.hooks,
        ).id

    def scan(self):
        settings, channels = load_settings(self.workspace)
        return scan(self.store, settings, channels, zone=ZONE)

    def deliveries(self) -> list[EscalationDelivery]:
        with self.store.read() as s:
            return list(s.exec(select(EscalationDelivery).order_by(EscalationDelivery.id)))


@pytest.fixture
def make_env(store, db_url, tmp_path):
    def make(settings: str) -> Env:
        return Env(tmp_path, db_url, settings)

    return make


class TestSmtp:
    def test_missed_deadlines_are_emailed_once(self, make_env, builtin_source):
        """Each missed target is emailed once to every recipient with its basis; a rescan sends nothing."""
        with SmtpServer() as smtp:
            env = make_env(settings_toml(smtp=smtp, timeout=5, lease=60))
            incident_id = env.incident(builtin_source, hours_ago=80)
            report = env.scan()
            assert {a["rule"] for a in report.alerts} == POLICY_RULES
            assert {a["kind"] for a in report.alerts} == {"missed"}
            mails = list(smtp.sink.messages)
            assert len(mails) == 3 and len(set(smtp.sink.ids())) == 3
            stored = {d.message_id for d in env.deliveries() if d.channel == "smtp"}
            assert set(smtp.sink.ids()) == stored
            mail = mails[0]
            assert mail["To"] == "dpo@example.test, ciso@example.test" and incident_id in mail["Subject"]
            body = mail.get_payload(decode=True).decode("utf-8")
            assert "个人信息保护法" in body and "internal policy, not law" in body
            assert env.scan().alerts == [] and len(smtp.sink.messages) == 3
            assert all(d.status == "sent" and d.attempts == 1 for d in env.deliveries())

    def test_starttls_and_login(self, make_env, builtin_source, tmp_path, monkeypatch):
        """STARTTLS is used and the login password comes from the environment variable named in config."""
        import ssl

        from aiosmtpd.smtp import AuthResult

        pair = self_signed(tmp_path)
        if pair is None:
            pytest.skip("openssl is not available to make a certificate")
        cert, key = pair
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        logins = []

        def authenticate(server, session, envelope, mechanism, auth_data):
            logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=auth_data.password == b"s3cret")

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        with SmtpServer(tls_context=context, require_starttls=True, authenticator=authenticate) as smtp:
            login = f'starttls = true\nca_file = "{cert}"\nusername = "breach"\n'
            login += 'password_env = "TEST_SMTP_PASSWORD"\n'
            env = make_env(settings_toml(smtp=smtp, timeout=5, lease=60, smtp_extra=login))
            env.incident(builtin_source, hours_ago=80)
            env.scan()
            assert len(smtp.sink.messages) == 3 and logins[0] == (b"breach", b"s3cret")

    def test_log_carries_no_personal_data(self, make_env, builtin_source, capsys):
        """The log line names incident, rule, kind and due time, never the title."""
        env = make_env(settings_toml())
        incident_id = env.incident(builtin_source, hours_ago=80)
        env.scan()
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("escalation ")]
        assert len(lines) == 3 and all(incident_id in line and TITLE not in line for line in lines)
        assert {line.split("rule=")[1].split()[0] for line in lines} == POLICY_RULES


class TestWebhook:
    def test_json_with_stable_key_and_retries(self, make_env, builtin_source):
        """Server errors are retried with backoff, every attempt with the same Idempotency-Key."""
        with HookServer(statuses=[503, 502]) as hook:
            env = make_env(settings_toml(hook=hook, log=False, timeout=5, lease=60))
            incident_id = env.incident(builtin_source, hours_ago=80)
            env.scan()
            keys = hook.keys()
            assert len(keys) == 5 and len(set(keys)) == 3 and keys[0] == keys[1] == keys[2]
            body = hook.requests[-1]["body"]
            assert body["id"] == hook.requests[-1]["headers"]["Idempotency-Key"]
            assert body["incident_id"] == incident_id and body["rule"] in POLICY_RULES
            assert body["due_at"].endswith("+08:00") and body["basis"]["note"] == "internal policy, not law"
            assert all(d.status == "sent" for d in env.deliveries())

    def test_refusal_is_final_and_listed(self, make_env, builtin_source):
        """A 4xx refusal is not retried; the scan lists it for a person."""
        with HookServer(statuses=[400]) as hook:
            env = make_env(settings_toml(hook=hook, log=False, timeout=5, lease=60))
            env.incident(builtin_source, hours_ago=80)
            report = env.scan()
            assert [d.status for d in env.deliveries()].count("failed") == 1
            assert report.attention[0]["status"] == "failed" and "400" in report.attention[0]["error"]
            env.scan()
            assert len(hook.requests) == 3

    def test_unreachable_is_retried_then_failed(self, make_env, builtin_source):
        """A receiver that is down is retried on later scans until max_attempts, then listed as failed."""
        url = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens there
        text = (
            '[escalation]\nchannels = ["webhook"]\nlease_seconds = 30\nretry_seconds = 0\nmax_attempts = 2\n'
        )
        text += f'[webhook]\nurl = "{url}"\ntimeout_seconds = 1\nattempts = 2\nbackoff_seconds = 0\n'
        env = make_env(text)
        env.incident(builtin_source, hours_ago=80)
        first = env.scan()
        assert len(first.delivery.failed) == 3 and {d.attempts for d in env.deliveries()} == {2}
        assert {d.status for d in env.deliveries()} == {"failed"}


class TestOutbox:
    def test_warning_of_a_met_deadline_is_cancelled(self, make_env, builtin_source):
        """A warning still undelivered when its deadline is met is cancelled, not sent late."""
        url = f"http://127.0.0.1:{free_port()}/hook"
        text = '[escalation]\nchannels = ["webhook"]\nlease_seconds = 30\nretry_seconds = 3600\n'
        text += f'[webhook]\nurl = "{url}"\ntimeout_seconds = 1\nattempts = 1\n'
        env = make_env(text)
        incident_id = env.incident(builtin_source, hours_ago=13)  # past 50 % of the 24 h client target
        report = env.scan()
        assert [(a["rule"], a["kind"]) for a in report.alerts] == [("POLICY-CLIENT-NOTICE", "warn:50%")]
        for task in (
            "stop_transfer",
            "preserve_evidence",
            "establish_scope",
            "start_investigation",
            "grade_incident",
        ):
            complete_task(env.store, incident_id, task, actor="alice", hooks=env.hooks)
        flow.advance(env.store, incident_id, "contain", actor="alice", zone=ZONE, hooks=env.hooks)
        complete_task(env.store, incident_id, "notify_client_companies", actor="alice", hooks=env.hooks)
        with env.store.write() as s:  # the retry is due now
            row = s.exec(select(EscalationDelivery)).one()
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        assert len(env.scan().delivery.cancelled) == 1
        assert env.deliveries()[0].status == "cancelled"

    def test_drill_alerts_stay_in_the_log(self, make_env, builtin_source):
        """A drill's escalations go to the log only, never to real recipients."""
        with SmtpServer() as smtp:
            env = make_env(settings_toml(smtp=smtp, timeout=5, lease=60))
            env.incident(builtin_source, hours_ago=80, drill=True)
            env.scan()
            assert smtp.sink.messages == [] and {d.channel for d in env.deliveries()} == {"log"}

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('[escalation]\nchannels = ["pager"]\n', "[escalation] channels"),
            ('[escalation]\nchannels = ["smtp"]\n[smtp]\nrecipients = []\n', "recipients is empty"),
            (
                '[escalation]\nchannels = ["smtp"]\n[smtp]\nrecipients = ["a@b"]\nusername = "u"\n'
                'password_env = "BREACH_TEST_UNSET_PASSWORD"\n',
                "BREACH_TEST_UNSET_PASSWORD is empty",
            ),
            (
                '[escalation]\nchannels = ["webhook"]\nlease_seconds = 5\n[webhook]\nurl = "http://x/"\n',
                "lease_seconds = 5 is not longer",
            ),
            ('[escalation]\nchannels = ["webhook"]\n[webhook]\nurl = "ftp://x/"\n', "http://"),
        ],
    )
    def test_bad_settings_are_named(self, tmp_path, text, message):
        """Misconfigured escalation settings are refused naming the section and the problem."""
        (tmp_path / "config").mkdir()
        (tmp_path / "config" / "settings.toml").write_text(text, encoding="utf-8")
        with pytest.raises(BadInput) as info:
            load_settings(Workspace.resolve(tmp_path))
        assert message in str(info.value)


def crash_env(cli, source, settings: str) -> Env:
    env = Env(cli.home, cli.db_url, settings)
    env.incident(source, hours_ago=30)  # one missed target: the 24 h client notice
    return env


@pytest.mark.slow
class TestCrashRecovery:
    # Long enough that a check started right after the crash still finds the lease held on a busy machine.
    LEASE = 12

    def test_crash_after_claim_is_sent_once_after_the_lease(self, cli, builtin_source):
        """A checker dying after its claim and before sending: another sends it, once, after the lease."""
        with SmtpServer() as smtp:
            env = crash_env(
                cli, builtin_source, settings_toml(smtp=smtp, log=False, timeout=0.4, lease=self.LEASE)
            )
            assert cli("deadlines", "check", env={"BREACH_FAILPOINT": "after_claim"}).returncode == 75
            assert cli("deadlines", "check").returncode == 1 and smtp.sink.messages == []  # lease still held
            time.sleep(self.LEASE + 0.5)
            assert cli("deadlines", "check").returncode == 1
            assert len(smtp.sink.messages) == 1 and smtp.sink.messages[0]["X-Breach-Delivery"] is None
            (row,) = env.deliveries()
            assert row.status == "sent" and not row.in_doubt and row.attempts == 2

    def test_crash_after_send_resends_the_same_id_marked_in_doubt(self, cli, builtin_source):
        """Dying between send and record: after the lease it is re-sent with the same Message-ID, flagged."""
        with SmtpServer() as smtp:
            env = crash_env(
                cli, builtin_source, settings_toml(smtp=smtp, log=False, timeout=0.4, lease=self.LEASE)
            )
            assert cli("deadlines", "check", env={"BREACH_FAILPOINT": "after_send"}).returncode == 75
            assert len(smtp.sink.messages) == 1
            assert cli("deadlines", "check").returncode == 1 and len(smtp.sink.messages) == 1
            time.sleep(self.LEASE + 0.5)
            cli("deadlines", "check")
            first, second = smtp.sink.messages
            assert first["Message-ID"] == second["Message-ID"]
            assert first["X-Breach-Delivery"] is None and "in doubt" in second["X-Breach-Delivery"]
            assert first.get_payload() == second.get_payload()
            (row,) = env.deliveries()
            assert row.status == "sent" and row.in_doubt
            cli("deadlines", "check")
            assert len(smtp.sink.messages) == 2

    def test_hold_policy_never_resends_in_doubt(self, cli, builtin_source):
        """With in_doubt = "hold" a delivery that may have arrived is not re-sent but listed for a person."""
        with SmtpServer() as smtp:
            text = settings_toml(
                smtp=smtp, log=False, timeout=0.4, lease=self.LEASE, extra='in_doubt = "hold"'
            )
            env = crash_env(cli, builtin_source, text)
            assert cli("deadlines", "check", env={"BREACH_FAILPOINT": "after_send"}).returncode == 75
            time.sleep(self.LEASE + 0.5)
            result = cli("deadlines", "check", "--json")
            assert result.returncode == 1 and len(smtp.sink.messages) == 1
            attention = json.loads(result.stdout)["needs_attention"]
            assert [a["status"] for a in attention] == ["in_doubt"]
            assert env.deliveries()[0].status == "in_doubt"


class TestCheckCommand:
    def test_check_exit_codes_and_json(self, cli, builtin_source):
        """check exits 0 with nothing overdue and 1 naming the overdue ones; bad settings exit 2."""
        assert cli("deadlines", "check").returncode == 0
        env = Env(cli.home, cli.db_url, settings_toml())
        env.incident(builtin_source, hours_ago=30)
        result = cli("deadlines", "check", "--json")
        assert result.returncode == 1 and "1 deadline(s) overdue" in result.stderr
        out = json.loads(result.stdout)
        assert [o["rule"] for o in out["overdue"]] == ["POLICY-CLIENT-NOTICE"]
        assert out["overdue"][0]["due_at"].endswith("+08:00") and out["deliveries"]["sent"] == 1
        (cli.home / "config" / "settings.toml").write_text(
            '[escalation]\nchannels = ["pager"]\n', encoding="utf-8"
        )
        assert_one_line_error(cli("deadlines", "check"), "[escalation] channels")
