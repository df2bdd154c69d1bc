"""Emailing notices to a real SMTP server on loopback: once per person, paced, retried, drill-safe."""

from __future__ import annotations

import email
import email.policy
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import BREACH
from sqlalchemy import select
from test_notices import workspace
from test_people import DATA, do_import, give_content, open_incident

from engine.deadlines.tables import Deadline
from engine.documents.registry import DOCUMENT
from engine.incidents import flow
from engine.incidents.tables import Task
from engine.incidents.tasks import complete_task
from engine.notices.delivery import DELIVERY
from engine.notices.recorded import record_deliveries
from engine.notices.render import render_notices
from engine.notices.send import send_notices
from engine.wiring import hooks_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """An aiosmtpd handler that keeps every accepted message (repeats included) and can misbehave."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()
        self.refuse_data = 0  # answer DATA with 451 this many times first
        self.reject = ""  # refuse RCPT TO of this address with 550
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.refuse_data:
                self.refuse_data -= 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for _, m in self.received]


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.port = port
    yield sink
    controller.stop()


def mail_settings(sink: Sink, notices: str = "", smtp_extra: str = "") -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\ntimeout_seconds = 2\n'
        'sender = "bounces@example-tax.cn"\n'
        f"{smtp_extra}[notices]\nrate_per_second = 200\nretry_seconds = 0.1\nmax_wait_seconds = 20\n"
        "give_up_seconds = 0.5\n"
        f"lease_seconds = 30\n{notices}"
    )


@pytest.fixture
def mailing(store, builtin_source, tmp_path, db_url, smtp):
    """An incident with the agency list, a workspace sending to the sink, and a send() helper."""

    class Mailing:
        def __init__(self, drill: bool = False, notices: str = "") -> None:
            self.incident = open_incident(store, builtin_source, drill=drill)
            do_import(store, self.incident, DATA / "agency.csv")
            give_content(store, self.incident)
            self.configure(notices)

        def configure(self, notices: str = "", smtp_extra: str = "") -> None:
            self.ws = workspace(tmp_path / "ws", db_url, mail_settings(smtp, notices, smtp_extra))

        def send(self):
            return send_notices(store, self.ws, self.incident, actor="alice", hooks=hooks_for(self.ws))

        def rows(self) -> dict[str, dict]:
            from engine.notices.people import PERSON

            with store.read() as s:
                found = s.execute(
                    select(DELIVERY, PERSON.c.customer_id).join(PERSON, PERSON.c.id == DELIVERY.c.person_id)
                )
                return {r.customer_id: dict(r._mapping) for r in found}

    return Mailing


EMAILED = {"zhangsan@example.com", "john.smith@example.com", "chenjing@example.cn", "wangwu@example-tech.cn"}


class TestSend:
    def test_each_email_recipient_gets_one_message(self, mailing, smtp, store):
        """Every email-channel recipient gets their notice once; To, Subject and both parts read back."""
        m = mailing()
        report = m.send()
        assert report.sent.sent == 4 and report.complete
        assert {rcpt[0] for rcpt, _ in smtp.received} == EMAILED
        message = next(msg for rcpt, msg in smtp.received if rcpt == ["zhangsan@example.com"])
        assert message["To"].addresses[0].display_name == "张三"
        assert message["Subject"] == "关于您的个人信息可能泄露的告知（示例财税咨询有限公司）"
        assert message["From"].addresses[0].addr_spec == "privacy@example-tax.cn"
        assert "尊敬的张三" in message.get_body(("plain",)).get_content()
        assert "<h1>" in message.get_body(("html",)).get_content()
        english = next(msg for rcpt, msg in smtp.received if rcpt == ["john.smith@example.com"])
        assert english["Subject"].startswith("Your personal information")
        rows = m.rows()
        assert {r["status"] for r in rows.values()} == {"sent"} and set(rows) == {
            "P-0001",
            "P-0002",
            "P-0005",
            "CO-1001",
        }
        with store.read() as s:
            docs = dict(s.execute(select(DOCUMENT.c.id, DOCUMENT.c.sha256)).all())
        assert all(len(r["sent_sha256"]) == 64 and r["document_id"] in docs for r in rows.values())

    def test_the_date_a_reader_sees_is_when_the_email_was_sent(self, mailing, smtp, store):
        """An email rendered earlier carries the moment it was sent in Date, not its render time."""
        m = mailing()
        render_notices(store, m.ws, m.incident, actor="alice", channel="email")
        with store.read() as s:
            path = s.execute(select(DOCUMENT.c.path).where(DOCUMENT.c.person_ref == "P-0001")).scalar_one()
        rendered = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)["Date"]
        time.sleep(1.2)
        m.send()
        sent = next(msg for rcpt, msg in smtp.received if rcpt == ["zhangsan@example.com"])["Date"]
        assert sent.datetime > rendered.datetime
        assert abs((datetime.now(UTC) - sent.datetime).total_seconds()) < 60

    def test_a_second_run_sends_nothing(self, mailing, smtp):
        """Run again, nobody gets a second message: no Message-ID repeats."""
        m = mailing()
        m.send()
        again = m.send()
        assert again.sent.sent == 0 and again.enqueued == 0
        assert len(smtp.ids()) == len(set(smtp.ids())) == 4

    def test_tasks_and_deadline_are_met_when_everyone_has_it(self, mailing, store):
        """Emails sent and the other channels recorded: both notice tasks are done, the deadline met."""
        m = mailing()
        hooks = hooks_for(m.ws)
        for task in (
            "stop_transfer",
            "preserve_evidence",
            "establish_scope",
            "start_investigation",
            "grade_incident",
        ):
            complete_task(store, m.incident, task, actor="alice", hooks=hooks)
        flow.advance(store, m.incident, "contain", actor="alice", zone="Asia/Shanghai", hooks=hooks)
        report = m.send()
        assert set(report.tasks) == {"notify_individuals", "notify_client_companies"}
        assert all(outcome.startswith("open:") for outcome in report.tasks.values())
        render_notices(store, m.ws, m.incident, actor="alice")
        for channel in ("sms", "post", "public"):
            recorded = record_deliveries(
                store, m.incident, channel=channel, reference="R-1", actor="alice", hooks=hooks
            )
        assert recorded.tasks == {
            "notify_individuals": "completed",
            "notify_client_companies": "done already",
        }
        with store.read() as s:
            tasks = dict(s.execute(select(Task.key, Task.status).where(Task.incident_id == m.incident)).all())
            rule = s.execute(
                select(Deadline.status).where(
                    Deadline.incident_id == m.incident, Deadline.rule_id == "POLICY-PIPL57-INDIVIDUALS"
                )
            ).scalar_one()
        assert tasks["notify_individuals"] == tasks["notify_client_companies"] == "done"
        assert rule == "met"

    def test_rate_limit_spaces_the_messages(self, mailing, smtp):
        """At 10 a second, four messages take at least 0.3 s."""
        m = mailing()
        m.ws = workspace(
            m.ws.home,
            m.ws.db_url,
            mail_settings(smtp).replace("rate_per_second = 200", "rate_per_second = 10"),
        )
        started = time.monotonic()
        m.send()
        assert time.monotonic() - started >= 0.3 and len(smtp.received) == 4


class TestFailures:
    def test_transient_refusals_are_retried_with_backoff(self, mailing, smtp):
        """Two 451 answers: those deliveries wait and go out on a later attempt, in the same run."""
        smtp.refuse_data = 2
        m = mailing()
        report = m.send()
        assert report.complete and len(smtp.received) == 4 and len(report.sent.retrying) == 2
        assert sorted(r["attempts"] for r in m.rows().values()) == [1, 1, 2, 2]

    def test_permanent_rejection_is_recorded_without_the_address(self, mailing, smtp):
        """A 550 for one mailbox fails that delivery with the reason; the others are sent."""
        smtp.reject = "john.smith@example.com"
        m = mailing()
        report = m.send()
        assert not report.complete and report.sent.sent == 3
        failed = m.rows()["P-0002"]
        assert failed["status"] == "failed" and "550" in failed["last_error"]
        assert "john.smith" not in failed["last_error"] and "<address>" in failed["last_error"]
        # Nobody's task completes while recipients are missing; the client-company task, open since
        # containment, says how many are still to be notified.
        assert not [task for task, status in report.tasks.items() if status == "done"], report.tasks
        assert "not notified yet" in report.tasks["notify_client_companies"], report.tasks

    def test_server_down_keeps_them_pending(self, mailing, smtp):
        """No server: every delivery stays pending for a later run, none lost."""
        m = mailing()
        m.ws = workspace(
            m.ws.home,
            m.ws.db_url,
            mail_settings(smtp)
            .replace(f"port = {smtp.port}", f"port = {free_port()}")
            .replace("max_wait_seconds = 20", "max_wait_seconds = 0"),
        )
        report = m.send()
        assert not report.complete and {r["status"] for r in m.rows().values()} == {"pending"}
        m.configure()
        assert m.send().complete and len(smtp.received) == 4

    def test_a_delivery_leased_elsewhere_is_left_alone(self, mailing, smtp, store):
        """A row another live sender holds is not sent here, and does not hold up the others."""
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import update

        m = mailing()
        m.ws = workspace(
            m.ws.home,
            m.ws.db_url,
            mail_settings(smtp)
            .replace(f"port = {smtp.port}", f"port = {free_port()}")
            .replace("max_wait_seconds = 20", "max_wait_seconds = 0"),
        )
        m.send()  # everyone pending: the server was down
        held = m.rows()["P-0001"]["id"]
        with store.write() as s:
            s.execute(
                update(DELIVERY)
                .where(DELIVERY.c.id == held)
                .values(
                    status="sending",
                    claim_token="another-host:1:abc",
                    lease_until=datetime.now(UTC) + timedelta(minutes=5),
                )
            )
        m.configure()
        report = m.send()
        assert report.sent.sent == 3 and report.sent.busy == 1 and not report.complete
        assert "zhangsan@example.com" not in {rcpt[0] for rcpt, _ in smtp.received}


class TestDrill:
    def test_drill_goes_only_to_the_drill_mailbox(self, mailing, smtp):
        """In a drill no person's address is used: the drill mailbox gets every message."""
        m = mailing(drill=True, notices='drill_recipient = "drill@example-tax.cn"\n')
        assert m.send().complete
        assert {rcpt[0] for rcpt, _ in smtp.received} == {"drill@example-tax.cn"} and len(smtp.received) == 4
        for _, message in smtp.received:
            assert (
                message["To"].addresses[0].addr_spec == "drill@example-tax.cn" and message["X-Breach-Drill"]
            )
            assert "演练" in message["Subject"] or "DRILL" in message["Subject"]
        assert {r["sent_to"] for r in m.rows().values()} == {"drill"}

    def test_drill_without_a_mailbox_sends_nothing(self, mailing, smtp):
        """Without a drill recipient, drill deliveries are recorded as skipped and nothing is sent."""
        m = mailing(drill=True)
        report = m.send()
        assert smtp.received == [] and report.complete and report.sent.drill_skipped == 4
        assert {r["status"] for r in m.rows().values()} == {"drill_skipped"}


class TestCrashes:
    def cli_send(self, cli, incident, failpoint: str | None = None) -> subprocess.CompletedProcess:
        env = {"BREACH_FAILPOINT": failpoint} if failpoint else {}
        return cli("notices", "send", incident, env=env)

    def prepare(self, cli, smtp, notices: str = "") -> str:
        workspace(cli.home, cli.db_url or "", mail_settings(smtp, notices))
        incident = cli.open_incident()
        cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        return incident

    def test_crash_after_acceptance_resends_with_the_same_id(self, cli, smtp):
        """Killed after the server accepted but before 'sent': resent once, same Message-ID, marked."""
        incident = self.prepare(cli, smtp)
        assert self.cli_send(cli, incident, "notices_after_send").returncode == 75
        assert len(smtp.received) == 1
        assert cli("notices", "send", incident).returncode == 0
        ids = Counter(smtp.ids())
        assert len(ids) == 4 and sorted(ids.values()) == [1, 1, 1, 2]
        repeated = [m for _, m in smtp.received if ids[str(m["Message-ID"])] == 2]
        assert repeated[0]["X-Breach-Delivery"] is None and "in doubt" in repeated[1]["X-Breach-Delivery"]

    def test_hold_never_resends_in_doubt(self, cli, smtp):
        """With in_doubt = "hold" the uncertain delivery is kept for a person, not sent again."""
        incident = self.prepare(cli, smtp, 'in_doubt = "hold"\n')
        self.cli_send(cli, incident, "notices_after_send")
        result = cli("notices", "send", incident)
        assert result.returncode == 1 and "not sent yet" in result.stderr
        assert len(smtp.ids()) == len(set(smtp.ids())) == 4
        status = cli.json("notices", "status", incident)
        assert [p["status"] for p in status["problems"]] == ["in_doubt"]
        assert [g["count"] for g in status["reasons"]] == [1]
        shown = cli("notices", "status", incident, check=True).stdout
        assert "in_doubt ×1: " in shown and "--list" in shown and not re.search(r"(P|CO)-\d", shown)
        assert re.search(
            r"in_doubt: (P|CO)-\d", cli("notices", "status", incident, "--list", check=True).stdout
        )

    def test_crash_before_data_sends_once(self, cli, smtp):
        """Killed after the hand-off but before DATA: the next run sends it, once."""
        incident = self.prepare(cli, smtp)
        assert self.cli_send(cli, incident, "notices_after_handoff").returncode == 75
        assert smtp.received == []
        cli("notices", "send", incident, check=True)
        assert len(smtp.ids()) == len(set(smtp.ids())) == 4

    @pytest.mark.slow
    def test_killed_sends_deliver_to_everyone(self, cli, smtp, tmp_path, store):
        """SIGKILL at random moments, then run again: everyone has the notice; repeats only in doubt."""
        smtp.delay = 0.01
        workspace(
            cli.home,
            cli.db_url or "",
            mail_settings(smtp).replace("rate_per_second = 200", "rate_per_second = 40"),
        )
        incident = cli.open_incident()
        csv = tmp_path / "many.csv"
        csv.write_text(
            "customer_id,name,email,channel,categories\n"
            + "".join(f"M-{i},收件人{i},m{i}@example.com,email,name\n" for i in range(60)),
            encoding="utf-8",
        )
        cli("people", "import", incident, str(csv), check=True)
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        env = {**os.environ, "BREACH_HOME": str(cli.home)}
        if cli.db_url:
            env["BREACH_DATABASE_URL"] = cli.db_url
        rng = random.Random(11)
        for _trial in range(3):
            process = subprocess.Popen(
                [BREACH, "notices", "send", incident],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(1.2, 2.6))
            process.send_signal(signal.SIGKILL)
            process.wait()
        cli("notices", "send", incident, check=True)
        ids = Counter(smtp.ids())
        assert len(ids) == 60
        status = cli.json("notices", "status", incident)
        assert status["deliveries"] == {"customer_notice": {"sent": 60}}
        from engine.store.db import Store

        with Store(cli.db_url or f"sqlite:///{cli.home / 'breach.db'}").read() as s:
            doubtful = set(s.execute(select(DELIVERY.c.message_id).where(DELIVERY.c.in_doubt)).scalars())
        assert {mid for mid, n in ids.items() if n > 1} <= doubtful


def test_starttls_and_login(store, builtin_source, tmp_path, db_url, monkeypatch):
    """STARTTLS with a verified certificate and a login whose password comes from the environment."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
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
        pytest.skip("openssl is not available")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    sink = Sink()
    sink.port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "agency.csv")
        give_content(store, incident)
        login = f'starttls = true\nca_file = "{cert}"\nusername = "notices"\npassword_env = "TEST_SMTP_PW"\n'
        ws = workspace(tmp_path / "ws", db_url, mail_settings(sink, smtp_extra=login))
        monkeypatch.setenv("TEST_SMTP_PW", "s3cret")
        assert send_notices(store, ws, incident, actor="alice", hooks=hooks_for(ws)).complete
        assert len(sink.received) == 4 and logins[0] == (b"notices", b"s3cret")
    finally:
        controller.stop()


def test_missing_password_is_refused_before_sending(
    store, builtin_source, tmp_path, db_url, smtp, monkeypatch
):
    """A username without its password variable is an operator error, before anything is sent."""
    from engine.errors import BadInput

    incident = open_incident(store, builtin_source)
    ws = workspace(
        tmp_path / "ws", db_url, mail_settings(smtp, smtp_extra='username = "x"\npassword_env = "NOPE_PW"\n')
    )
    monkeypatch.delenv("NOPE_PW", raising=False)
    with pytest.raises(BadInput, match="NOPE_PW"):
        send_notices(store, ws, incident, actor="alice", hooks=hooks_for(ws))
