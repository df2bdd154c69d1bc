"""Obligations on their own clocks: tasks that open before their phase, and steps dated when they happened.

The law's clocks run from awareness, in parallel; the phases run in sequence. These tests pin that a task
the playbook opens early (with a clock, an anchor or an earlier state) can be done before its phase, stays
done, and still gates its phase; and that ``--at`` dates a step by when it really happened, refusing times
that cannot be true. Database tests run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import assert_one_line_error, lift_append_only, restore_append_only
from sqlalchemy import text
from sqlmodel import select

from engine.deadlines.tables import Deadline
from engine.errors import BadInput, GuardFailed, NotAllowed
from engine.incidents import flow, opening
from engine.incidents.audit import verify_chain
from engine.incidents.hooks import NO_HOOKS
from engine.incidents.reassess import update_facts
from engine.incidents.tables import Event, Incident, Task
from engine.incidents.tasks import complete_task, complete_tasks
from engine.legal.data import builtin_legal
from engine.playbooks.machine import mermaid_diagram
from engine.playbooks.parsing import parse_playbook, playbook_errors
from engine.retention.export import export_bundle
from engine.retention.verify import verify_bundle
from engine.wiring import hooks_for
from engine.workspace import Workspace, builtin_root

ZONE = "Asia/Shanghai"
BUILTIN = (builtin_root() / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")
CONTAIN = ["stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"]
NOTIFY = ["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"]
FIRM = """
[firm]
name = "示例财税咨询有限公司"
address = "北京市海淀区示例路88号"
contact_name = "李静"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "工作日 9:00–18:00"
protection_officer = "法务部 周宁（个人信息保护负责人）"
"""


def relatively_major() -> int:
    """The people count at which the CAC grade reaches 较大, from the legal data."""
    return next(
        t.people_affected for t in builtin_legal().cac_grade.thresholds if t.grade == "relatively_major"
    )


def tasks_of(store, incident_id: str) -> dict[str, Task]:
    with store.read() as s:
        return {t.key: t for t in s.exec(select(Task).where(Task.incident_id == incident_id))}


def deadline(store, incident_id: str, rule: str) -> Deadline:
    with store.read() as s:
        return s.exec(
            select(Deadline).where(Deadline.incident_id == incident_id, Deadline.rule_id == rule)
        ).one()


def events(store, incident_id: str) -> list[Event]:
    with store.read() as s:
        return list(s.exec(select(Event).where(Event.incident_id == incident_id).order_by(Event.seq)))


@pytest.fixture
def ws(tmp_path, db_url):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "settings.toml").write_text(FIRM, encoding="utf-8")
    return Workspace.resolve(tmp_path, db_url)


@pytest.fixture
def hooks(ws):
    return hooks_for(ws)


def open_incident(store, source, hooks, *, hours_ago: float = 5.0):
    return opening.open_incident(
        store,
        source=source,
        title="客户台账泄露",
        actor="alice",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        facts={"people_affected": 8000},
        hooks=hooks,
    )


def grade_up(store, incident_id: str, hooks) -> None:
    update_facts(
        store,
        incident_id,
        {"people_affected": relatively_major()},
        actor="alice",
        legal=builtin_legal(),
        hooks=hooks,
    )


class TestSchema:
    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("opens: {clock: CN-CAC-RPT-4}", "opens: {clock: CN-NOPE-1}", "no deadline rule has that id"),
            ("opens: {clock: CN-CAC-RPT-4}", "opens: {anchor: reported_at}", "not an anchor"),
            ("opens: {clock: CN-CAC-RPT-4}", "opens: {state: remediation}", "not a state before"),
            ("opens: {clock: CN-CAC-RPT-4}", "opens: {state: regulator_report}", "not a state before"),
            ("opens: {clock: CN-CAC-RPT-4}", "opens: {state: nowhere}", "no such state"),
            (
                "opens: {clock: CN-CAC-RPT-4}",
                "opens: {clock: CN-CAC-RPT-4, state: containment}",
                "exactly one of",
            ),
        ],
    )
    def test_a_task_that_could_never_open_is_refused(self, old, new, message):
        """An unknown rule or anchor, a state not before the task's own, or two moments: refused."""
        assert old in BUILTIN
        source, errors = playbook_errors(BUILTIN.replace(old, new, 1), "pb.yaml")
        assert source is None
        assert any(message in e for e in errors), errors

    def test_builtin_playbook_opens_the_obligations_early(self, builtin_source):
        """The CAC report opens with its clock; clients, police, statement, cooperation at containment."""
        playbook = builtin_source.playbook
        opens = {t.id: t.opens for _, t in playbook.early_tasks()}
        assert opens["submit_initial_report"].clock == "CN-CAC-RPT-4"
        for task in (
            "notify_client_companies",
            "report_to_police",
            "public_statement",
            "cooperate_with_authorities",
        ):
            assert opens[task].state == "containment"

    def test_diagram_shows_early_tasks(self, builtin_source):
        """The Mermaid diagram notes, on the state requiring it, when each early task opens."""
        text = mermaid_diagram(builtin_source.playbook, "en")
        note = next(line for line in text.splitlines() if line.startswith("  note right of regulator_report"))
        assert "submit_initial_report" in note and "clock CN-CAC-RPT-4 starts" in note

    def test_anchor_opening_playbook_validates(self):
        """A task may open when an anchor is recorded, e.g. containment's end."""
        text = BUILTIN.replace("opens: {state: containment}", "opens: {anchor: contained_at}", 1)
        source = parse_playbook(text, "pb.yaml")
        (task,) = [t for _, t in source.playbook.early_tasks() if t.opens and t.opens.anchor]
        assert task.id == "notify_client_companies"


class TestEarlyTasks:
    def test_state_opened_task_done_early_stays_done_and_phase_still_gates(self, store, builtin_source):
        """Client notice done in containment stays done in notification, which still needs the rest."""
        incident = open_incident(store, builtin_source, NO_HOOKS)
        opened = tasks_of(store, incident.id)
        for key in (
            "notify_client_companies",
            "report_to_police",
            "public_statement",
            "cooperate_with_authorities",
        ):
            assert opened[key].status == "open"
        complete_task(store, incident.id, "notify_client_companies", actor="alice")
        for key in CONTAIN:
            complete_task(store, incident.id, key, actor="alice")
        flow.advance(store, incident.id, "contain", actor="alice", zone=ZONE)
        assert tasks_of(store, incident.id)["notify_client_companies"].status == "done"
        with pytest.raises(GuardFailed, match="notify_individuals") as refused:
            flow.advance(store, incident.id, "notify", actor="alice", zone=ZONE)
        assert "notify_client_companies" not in str(refused.value)

    def test_initial_report_opens_when_its_clock_starts(self, store, builtin_source, hooks):
        """Graded 较大 during containment, the initial report can be filed at once, and meets its clock."""
        incident = open_incident(store, builtin_source, hooks, hours_ago=2)
        with pytest.raises(NotAllowed, match="opens when clock CN-CAC-RPT-4 starts"):
            complete_task(store, incident.id, "submit_initial_report", actor="alice", hooks=hooks)
        grade_up(store, incident.id, hooks)
        # Two hours into a four-hour clock: nothing to say out loud.
        assert all(not getattr(h, "late_starts", []) for h in hooks.after_change)
        task = tasks_of(store, incident.id)["submit_initial_report"]
        assert task.status == "open" and task.state_id == "regulator_report"
        # It counts as open since the clock's start (discovery), not since the grade was recorded.
        assert task.opened_at == incident.discovered_at
        complete_task(store, incident.id, "submit_initial_report", actor="alice", hooks=hooks)
        rpt = deadline(store, incident.id, "CN-CAC-RPT-4")
        assert rpt.status == "met" and rpt.lateness_seconds == 0

    def test_left_phase_refuses_an_early_task(self, store, builtin_source):
        """An optional early task still open once its phase was left is refused like any other."""
        incident = open_incident(store, builtin_source, NO_HOOKS)
        for keys, trigger in ((CONTAIN, "contain"), (NOTIFY, "notify")):
            for key in keys:
                complete_task(store, incident.id, key, actor="alice")
            flow.advance(store, incident.id, trigger, actor="alice", zone=ZONE)
        complete_tasks(store, incident.id, ["submit_initial_report", "cooperate_with_authorities"], actor="a")
        flow.advance(store, incident.id, "report", actor="alice", zone=ZONE)
        with pytest.raises(NotAllowed, match="report_to_police"):
            complete_task(store, incident.id, "report_to_police", actor="alice")


class TestStepTime:
    def test_refusals_change_nothing(self, store, builtin_source, hooks):
        """Future, before discovery, before the task opened, over a day back without a reason: refused."""
        incident = open_incident(store, builtin_source, hooks, hours_ago=30)
        now = datetime.now(UTC)
        cases = [
            (now + timedelta(minutes=5), None, "in the future"),
            (incident.discovered_at - timedelta(minutes=1), None, "before the incident was discovered"),
            (now - timedelta(hours=26), None, "more than 24 hours"),
        ]
        for at, reason, message in cases:
            with pytest.raises(BadInput, match=message):
                complete_task(
                    store,
                    incident.id,
                    "stop_transfer",
                    actor="a",
                    hooks=hooks,
                    at=at,
                    reason=reason,
                    zone=ZONE,
                )
        for key in CONTAIN:
            complete_task(store, incident.id, key, actor="alice", hooks=hooks)
        contained = now - timedelta(hours=2)
        flow.advance(store, incident.id, "contain", actor="alice", zone=ZONE, hooks=hooks, at=contained)
        with pytest.raises(BadInput, match="before the incident entered customer_notification"):
            flow.advance(
                store,
                incident.id,
                "waive_notification",
                actor="a",
                zone=ZONE,
                hooks=hooks,
                reason="加密",
                approver="bob",
                at=contained - timedelta(minutes=1),
            )
        with pytest.raises(BadInput, match="before task offer_remedies opened"):
            complete_task(
                store,
                incident.id,
                "offer_remedies",
                actor="a",
                hooks=hooks,
                at=contained - timedelta(minutes=1),
                zone=ZONE,
            )
        assert tasks_of(store, incident.id)["offer_remedies"].status == "open"
        with store.read() as s:
            inc = s.get(Incident, incident.id)
            assert datetime.fromisoformat(inc.anchors["contained_at"]) == contained
            assert inc.state == "customer_notification"

    def test_backdated_step_meets_by_entered_time_and_verifies(
        self, store, builtin_source, hooks, ws, tmp_path
    ):
        """A report entered as done 3 h after discovery meets the 4 h clock; the chain and bundle verify."""
        incident = open_incident(store, builtin_source, hooks, hours_ago=30)
        grade_up(store, incident.id, hooks)
        filed = incident.discovered_at + timedelta(hours=3)
        complete_task(
            store,
            incident.id,
            "submit_initial_report",
            actor="alice",
            hooks=hooks,
            at=filed,
            reason="报送后补录",
            zone=ZONE,
        )
        rpt = deadline(store, incident.id, "CN-CAC-RPT-4")
        assert rpt.status == "met" and rpt.met_at == filed and rpt.lateness_seconds == 0
        task = tasks_of(store, incident.id)["submit_initial_report"]
        assert task.done_at == filed
        done = [e for e in events(store, incident.id) if e.kind == "task_done"][-1]
        assert done.occurred_at == filed and done.at > filed and done.reason == "报送后补录"
        with store.read() as s:
            assert verify_chain(s, s.get(Incident, incident.id)).ok
        path, _ = export_bundle(store, incident.id, tmp_path / "bundle.zip", actor="alice")
        assert verify_bundle(path).ok

    def test_changed_entered_time_breaks_the_chain(self, store, builtin_source, hooks):
        """The entered time is hashed: editing it in the database is caught by the audit chain."""
        incident = open_incident(store, builtin_source, hooks)
        at = datetime.now(UTC) - timedelta(hours=1)
        complete_task(store, incident.id, "stop_transfer", actor="alice", hooks=hooks, at=at, zone=ZONE)
        with store.read() as s:
            ev = s.exec(
                select(Event).where(Event.incident_id == incident.id, Event.kind == "task_done")
            ).one()
        # As the database's owner would: the append-only triggers stop everyone else.
        with store.engine.begin() as conn:
            lift_append_only(conn)
            conn.execute(
                text("UPDATE event SET occurred_at = :at WHERE id = :id"),
                {"at": (at - timedelta(minutes=30)).replace(tzinfo=None), "id": ev.id},
            )
            restore_append_only(conn)
        with store.read() as s:
            report = verify_chain(s, s.get(Incident, incident.id))
            assert not report.ok and "altered" in (report.problem or "")


class TestTogether:
    def test_several_tasks_in_one_transaction(self, store, builtin_source, hooks):
        """task done A B C completes all, one event each; an unknown or closed one refuses them all."""
        incident = open_incident(store, builtin_source, hooks)
        before = len(events(store, incident.id))
        with pytest.raises(NotAllowed, match="offer_remedies"):
            complete_tasks(store, incident.id, ["stop_transfer", "offer_remedies"], actor="a", hooks=hooks)
        with pytest.raises(BadInput, match="named twice"):
            complete_tasks(store, incident.id, ["stop_transfer", "stop_transfer"], actor="a", hooks=hooks)
        assert tasks_of(store, incident.id)["stop_transfer"].status == "open"
        assert len(events(store, incident.id)) == before
        complete_tasks(store, incident.id, CONTAIN, actor="alice", hooks=hooks)
        assert all(tasks_of(store, incident.id)[k].status == "done" for k in CONTAIN)
        assert [e.inputs["task"] for e in events(store, incident.id) if e.kind == "task_done"] == CONTAIN


class TestScenario:
    def test_report_filed_during_containment_with_at(self, cli):
        """1,200,000 people graded 较大 during containment; the report, filed 3 h after discovery and
        entered later with --at while notices take days, meets CN-CAC-RPT-4 and is dated when filed."""
        cli.write_settings(FIRM)
        discovered = datetime.now(UTC).astimezone() - timedelta(hours=5)
        incident = cli.open_incident(
            "--set", "people_affected=8000", discovered_at=discovered.strftime("%Y-%m-%d %H:%M:%S%z")
        )
        graded = cli(
            "incident", "facts", incident, "--set", "people_affected=1200000", "--reason", "核实", check=True
        )
        # Graded five hours after discovery, the four-hour clock starts overdue: the command says so.
        assert "clock CN-CAC-RPT-4 started already overdue" in graded.stderr
        assert f"breach task done {incident} submit_initial_report" in graded.stderr
        triggers = cli("incident", "triggers", incident, check=True).stdout
        assert "submit_initial_report: open, required by regulator_report" in triggers
        filed = (discovered + timedelta(hours=3)).isoformat(timespec="seconds")
        assert_one_line_error(
            cli("task", "done", incident, "submit_initial_report", "--at", "2099-01-01 09:00"),
            "in the future",
        )
        assert_one_line_error(
            cli("task", "done", incident, "submit_initial_report", "--at", "yesterday"), "malformed time"
        )
        done = cli("task", "done", incident, "submit_initial_report", "--at", filed, check=True)
        assert "submit_initial_report done at" in done.stdout
        shown = cli.json("incident", "show", incident)
        assert shown["state"] == "containment"
        rpt = next(d for d in shown["deadlines"] if d["rule"] == "CN-CAC-RPT-4")
        assert rpt["status"] == "met" and rpt["lateness_seconds"] == 0
        assert datetime.fromisoformat(rpt["met_at"]) == datetime.fromisoformat(filed)
        event = next(e for e in shown["events"] if e["kind"] == "task_done")
        assert datetime.fromisoformat(event["occurred_at"]) == datetime.fromisoformat(filed)
        docs = cli.json("documents", "list", incident)["documents"]
        report = next(d for d in docs if d["kind"] == "regulator_initial_report")
        assert (
            report["issued_on"] == datetime.fromisoformat(filed).astimezone(ZoneInfo(ZONE)).date().isoformat()
        )
        cli("task", "done", incident, *CONTAIN, check=True)
        cli("incident", "advance", incident, "contain", check=True)
        cli("task", "done", incident, *NOTIFY, check=True)
        cli("incident", "advance", incident, "notify", check=True)
        shown = cli.json("incident", "show", incident)
        tasks = {t["id"]: t["state"] for t in shown["tasks"]}
        assert tasks["submit_initial_report"] == "done"
        assert_one_line_error(cli("incident", "advance", incident, "report"), "cooperate_with_authorities")
        cli("task", "done", incident, "cooperate_with_authorities", check=True)
        cli("incident", "advance", incident, "report", check=True)
        assert cli("audit", "verify", incident).returncode == 0
        rpt = next(
            d for d in cli.json("incident", "show", incident)["deadlines"] if d["rule"] == "CN-CAC-RPT-4"
        )
        assert rpt["status"] == "met" and rpt["lateness_seconds"] == 0
