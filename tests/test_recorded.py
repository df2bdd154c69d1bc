"""Notices delivered outside breach (SMS, post, announcement), and emails held in doubt, settled by operators.

The notice tasks complete only once every recipient is notified, whatever their channel; what was
recorded points at the exact rendered text (its sha256) and the operator's evidence.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import assert_one_line_error
from sqlalchemy import func, select
from test_delivery import DATA, mail_settings, mailing, smtp  # noqa: F401
from test_notices import workspace

from engine.deadlines.tables import Deadline
from engine.documents.registry import DOCUMENT
from engine.errors import BadInput, NotAllowed
from engine.incidents import flow
from engine.incidents.tables import Event, Incident, Task
from engine.incidents.tasks import complete_task
from engine.notices.delivery import DELIVERY
from engine.notices.people import PERSON
from engine.notices.recorded import record_deliveries, resolve_deliveries
from engine.notices.render import render_notices
from engine.wiring import hooks_for

CONTAIN = ("stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident")


def contained(m, store) -> None:
    """Walk the incident into the notification phase, where the notice tasks are open."""
    hooks = hooks_for(m.ws)
    for task in CONTAIN:
        complete_task(store, m.incident, task, actor="alice", hooks=hooks)
    flow.advance(store, m.incident, "contain", actor="alice", zone="Asia/Shanghai", hooks=hooks)


def record(m, channel: str, ref: str | None = "GW-20261122-01", **options):
    return record_deliveries(
        m.store, m.incident, channel=channel, reference=ref, actor="bob", hooks=hooks_for(m.ws), **options
    )


def snapshot(store, incident_id: str) -> tuple:
    """What a refused call must leave untouched: the incident's version, its events, its deliveries."""
    with store.read() as s:
        version = s.execute(select(Incident.version).where(Incident.id == incident_id)).scalar_one()
        events = s.execute(select(func.count()).where(Event.incident_id == incident_id)).scalar_one()
        rows = s.execute(select(DELIVERY).order_by(DELIVERY.c.id)).all()
    return version, events, [tuple(r) for r in rows]


def task_status(store, incident_id: str) -> dict[str, str]:
    with store.read() as s:
        return dict(s.execute(select(Task.key, Task.status).where(Task.incident_id == incident_id)).all())


@pytest.fixture
def m(mailing, store):  # noqa: F811
    made = mailing()
    made.store = store
    contained(made, store)
    return made


class TestRecord:
    def test_email_alone_does_not_complete_the_notice_tasks(self, m, store):
        """After the emails, the people on SMS, post and announcement still wait: the tasks stay open."""
        report = m.send()
        assert report.sent.sent == 4 and report.complete
        assert report.tasks["notify_individuals"].startswith("open: 3 of 6 recipients not notified yet")
        assert "post 1, public 1, sms 1" in report.tasks["notify_individuals"]
        assert "post 1" in report.tasks["notify_client_companies"]
        assert task_status(store, m.incident)["notify_individuals"] == "open"

    def test_recording_every_channel_completes_the_tasks_and_meets_the_deadline(self, m, store):
        """SMS, post and the announcement recorded: both tasks done, the customer-notice deadline met."""
        m.send()
        render_notices(store, m.ws, m.incident, actor="alice")
        assert record(m, "sms").changed == ["P-0003"]
        posted = record(m, "post", ref="EMS EA123456789CN")
        assert sorted(posted.changed) == ["CO-1002", "P-0004"]
        assert posted.tasks["notify_client_companies"] == "completed"
        assert posted.tasks["notify_individuals"].startswith("open: 1 of 6")
        announced = record(m, "public", ref="https://example-tax.cn/notice/2026-11")
        assert announced.tasks == {
            "notify_individuals": "completed",
            "notify_client_companies": "done already",
        }
        assert task_status(store, m.incident)["notify_individuals"] == "done"
        with store.read() as s:
            rule = s.execute(
                select(Deadline.status).where(
                    Deadline.incident_id == m.incident, Deadline.rule_id == "POLICY-PIPL57-INDIVIDUALS"
                )
            ).scalar_one()
        assert rule == "met"

    def test_a_recorded_delivery_points_at_the_text_sent_and_the_evidence(self, m, store):
        """The row carries the rendered .sms document's sha256, the reference and who recorded it;
        the audit event carries counts and the reference, never a customer id or a name."""
        render_notices(store, m.ws, m.incident, actor="alice")
        record(m, "sms", ref="GW-BATCH-7")
        with store.read() as s:
            row = s.execute(
                select(DELIVERY, DOCUMENT.c.sha256.label("doc_sha"), DOCUMENT.c.fmt)
                .join(DOCUMENT, DOCUMENT.c.id == DELIVERY.c.document_id)
                .where(DELIVERY.c.channel == "sms")
            ).one()
            event = s.execute(
                select(Event).where(Event.incident_id == m.incident, Event.kind == "notices_recorded")
            ).scalar_one()
        assert row.fmt == "sms" and row.sent_sha256 == row.doc_sha and row.status == "sent"
        assert (row.reference, row.recorded_by, row.sent_to) == ("GW-BATCH-7", "bob", "recipient")
        assert event.inputs == {
            "channel": "sms",
            "status": "sent",
            "recipients": 1,
            "reference": "GW-BATCH-7",
        }
        assert "P-0003" not in str(event.inputs) and "李四" not in str(event.inputs)

    def test_recording_again_changes_nothing(self, m, store):
        """A repeated record leaves the delivered ones as they were and writes no event."""
        render_notices(store, m.ws, m.incident, actor="alice")
        record(m, "sms")
        before = snapshot(store, m.incident)
        again = record(m, "sms", ref="GW-OTHER")
        assert again.changed == [] and again.unchanged == ["P-0003"]
        assert snapshot(store, m.incident) == before

    def test_a_failed_attempt_then_a_successful_one(self, m, store):
        """A failed SMS is kept with its reason and does not count; the later success replaces it."""
        render_notices(store, m.ws, m.incident, actor="alice")
        record(m, "sms", ref=None, failed="gateway: number unreachable")
        rows = m.rows()
        assert rows["P-0003"]["status"] == "failed" and rows["P-0003"]["last_error"].startswith("gateway")
        record(m, "sms", ref="GW-RETRY-2")
        rows = m.rows()
        assert rows["P-0003"]["status"] == "sent" and rows["P-0003"]["attempts"] == 2
        assert rows["P-0003"]["last_error"] is None

    def test_a_bounced_email_can_be_followed_by_a_letter(self, m, smtp, store):  # noqa: F811
        """Rejected by the mail server, the person gets a letter; recorded, they count as notified."""
        smtp.reject = "chenjing@example.cn"
        m.send()
        render_notices(store, m.ws, m.incident, actor="alice", formats=["html"])
        done = record(m, "post", ref="EMS EA000000001CN", customers=["P-0005"])
        assert done.changed == ["P-0005"]
        rows = m.rows()
        assert rows["P-0005"]["channel"] == "post" and rows["P-0005"]["status"] == "sent"

    def test_drill_records_are_marked_as_drill(self, mailing, store):  # noqa: F811
        """In a drill the recorded delivery says it went to the drill, not to the person."""
        made = mailing(drill=True)
        made.store = store
        render_notices(store, made.ws, made.incident, actor="alice")
        record(made, "sms")
        assert made.rows()["P-0003"]["sent_to"] == "drill"


class TestRecordRefusals:
    @pytest.mark.parametrize(
        ("channel", "options", "needle"),
        [
            ("email", {}, "breach notices send"),
            ("fax", {}, "not one of sms, post, public"),
            ("sms", {"ref": "  "}, "--ref is required"),
            ("sms", {"customers": ["P-0003", "NOPE-1"]}, "no recipient NOPE-1"),
            ("sms", {"ref": "x" * 201}, "longer than 200"),
        ],
    )
    def test_bad_input_changes_nothing(self, m, store, channel, options, needle):
        render_notices(store, m.ws, m.incident, actor="alice")
        before = snapshot(store, m.incident)
        with pytest.raises(BadInput, match=needle):
            record(m, channel, **({"ref": "GW-1"} | options))
        assert snapshot(store, m.incident) == before

    def test_unrendered_notices_are_refused_all_or_nothing(self, m, store):
        """P-0003's SMS text is not rendered yet: nobody of the call is recorded, the command says how."""
        render_notices(store, m.ws, m.incident, actor="alice", formats=["html"])
        before = snapshot(store, m.incident)
        with pytest.raises(BadInput, match=r"no sms notice rendered for P-0003: run 'breach notices render"):
            record(m, "sms")
        assert snapshot(store, m.incident) == before


class TestResolve:
    def held(self, m, smtp, store):  # noqa: F811
        """One email left in doubt and held (the crash after acceptance, replayed on the row)."""
        m.configure('in_doubt = "hold"\n')
        m.send()
        past = datetime.now(UTC) - timedelta(minutes=5)
        with store.write() as s:
            s.execute(
                DELIVERY.update()
                .where(
                    DELIVERY.c.person_id
                    == select(PERSON.c.id).where(PERSON.c.customer_id == "P-0001").scalar_subquery()
                )
                .values(status="sending", handed_off_at=past, lease_until=past, claim_token="elsewhere:1:y")
            )
        report = m.send()
        assert report.sent.held == ["P-0001"]
        return report

    def test_marked_delivered_after_checking_the_mail_log(self, m, smtp, store):  # noqa: F811
        self.held(m, smtp, store)
        done = resolve_deliveries(
            store,
            m.incident,
            outcome="delivered",
            reference="maillog 2026-11-22 10:01 status=sent (250 queued as 4F2A)",
            actor="bob",
            hooks=hooks_for(m.ws),
        )
        assert done.changed == ["P-0001"]
        row = m.rows()["P-0001"]
        assert (row["status"], row["resolution"], row["recorded_by"]) == ("sent", "delivered", "bob")
        assert m.send().complete

    def test_resend_lifts_the_hold_once(self, m, smtp, store):  # noqa: F811
        """Asked to resend, the held email goes out again under hold mode, marked as a resend."""
        self.held(m, smtp, store)
        before = len(smtp.received)
        resolve_deliveries(
            store,
            m.incident,
            outcome="resend",
            reference=None,
            actor="bob",
            hooks=hooks_for(m.ws),
            customers=["P-0001"],
        )
        report = m.send()
        assert report.complete and report.sent.sent == 1 and len(smtp.received) == before + 1
        assert "in doubt" in smtp.received[-1][1]["X-Breach-Delivery"]
        assert Counter(smtp.ids())[str(smtp.received[-1][1]["Message-ID"])] == 2

    def test_a_failed_email_can_be_retried(self, m, smtp, store):  # noqa: F811
        """A permanent rejection, then the mailbox is fixed: resend delivers it on the next run."""
        smtp.reject = "zhangsan@example.com"
        assert not m.send().complete
        smtp.reject = ""
        resolve_deliveries(
            store,
            m.incident,
            outcome="resend",
            reference=None,
            actor="bob",
            hooks=hooks_for(m.ws),
            customers=["P-0001"],
        )
        assert m.send().complete and m.rows()["P-0001"]["status"] == "sent"

    def test_only_doubtful_or_failed_ones_can_be_resolved(self, m, smtp, store):  # noqa: F811
        m.send()
        before = snapshot(store, m.incident)
        with pytest.raises(NotAllowed, match="P-0001 is sent"):
            resolve_deliveries(
                store,
                m.incident,
                outcome="delivered",
                reference="r",
                actor="bob",
                hooks=hooks_for(m.ws),
                customers=["P-0001"],
            )
        with pytest.raises(NotAllowed, match="no delivery held in doubt"):
            resolve_deliveries(
                store, m.incident, outcome="resend", reference=None, actor="bob", hooks=hooks_for(m.ws)
            )
        assert snapshot(store, m.incident) == before


def test_record_and_resolve_from_the_command_line(cli, smtp):  # noqa: F811
    """The operator's commands: a refused call is one line with exit 2; the JSON says what changed."""
    workspace(cli.home, cli.db_url or "", mail_settings(smtp, 'in_doubt = "hold"\n'))
    incident = cli.open_incident()
    cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
    cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
    assert cli("notices", "send", incident, env={"BREACH_FAILPOINT": "notices_after_send"}).returncode == 75
    assert cli("notices", "send", incident).returncode == 1  # one held in doubt
    refused = cli("notices", "record", incident, "--channel", "sms", "--ref", "GW-1")
    assert_one_line_error(refused, "no sms notice rendered for P-0003", "--format sms")
    cli("notices", "render", incident, check=True)
    out = cli.json("notices", "record", incident, "--channel", "sms", "--ref", "GW-1")
    assert out["changed"] == 1 and out["action"] == "notices_recorded"
    both = cli("notices", "resolve", incident, "--delivered", "--resend")
    assert_one_line_error(both, "exactly one of --delivered or --resend")
    no_ref = cli("notices", "resolve", incident, "--delivered")
    assert_one_line_error(no_ref, "--ref is required")
    resolved = cli("notices", "resolve", incident, "--delivered", "--ref", "maillog line 42", check=True)
    assert "1 email deliveries marked delivered" in resolved.stdout
    assert cli("audit", "verify", incident).returncode == 0


class TestRecordedAt:
    def test_entered_time_dates_the_deliveries_the_event_and_the_tasks(self, m, store):
        """--at: each delivery's sent_at and the event's occurred_at are the entered time; the tasks it
        completes are done then, or when they opened if that came later."""
        render_notices(store, m.ws, m.incident, actor="alice")
        with store.read() as s:
            discovered = s.get(Incident, m.incident).discovered_at
            client_opened = s.execute(
                select(Task.opened_at).where(
                    Task.incident_id == m.incident, Task.key == "notify_client_companies"
                )
            ).scalar_one()
        sent = discovered + timedelta(minutes=30)
        m.send()
        for channel, ref in (("sms", "GW-1"), ("post", "EMS 1"), ("public", "https://example-tax.cn/n")):
            record(m, channel, ref=ref, at=sent, zone="Asia/Shanghai")
        with store.read() as s:
            rows = s.execute(select(DELIVERY.c.sent_at).where(DELIVERY.c.channel != "email")).scalars().all()
            recorded = (
                s.execute(
                    select(Event).where(Event.incident_id == m.incident, Event.kind == "notices_recorded")
                )
                .scalars()
                .all()
            )
            done = dict(
                s.execute(
                    select(Task.key, Task.done_at).where(
                        Task.incident_id == m.incident,
                        Task.key.in_(("notify_individuals", "notify_client_companies")),  # type: ignore[attr-defined]
                    )
                ).all()
            )
        assert rows and all(r == sent for r in rows)
        assert [e.occurred_at for e in recorded] == [sent] * 3 and all(e.at > sent for e in recorded)
        # The client notice opened with containment (at discovery): done at the entered time.
        assert client_opened == discovered and done["notify_client_companies"] == sent
        # The individuals' notice opened only when containment ended, after the entered time.
        assert done["notify_individuals"] > sent

    @pytest.mark.parametrize(
        ("shift", "needle"),
        [(timedelta(hours=1), "in the future"), (-timedelta(hours=3), "before the incident was discovered")],
    )
    def test_impossible_times_change_nothing(self, m, store, shift, needle):
        """A time in the future or before discovery is refused, and nothing is recorded."""
        render_notices(store, m.ws, m.incident, actor="alice")
        before = snapshot(store, m.incident)
        with pytest.raises(BadInput, match=needle):
            record(m, "sms", at=datetime.now(UTC) + shift, zone="Asia/Shanghai")
        assert snapshot(store, m.incident) == before
