"""The engine: opening incidents, triggers, guards, tasks, effects and optimistic locking.

Every test here runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from engine.errors import BadInput, Conflict, GuardFailed, NotAllowed, NotFound
from engine.incidents import flow
from engine.incidents.audit import verify_chain
from engine.incidents.opening import open_incident
from engine.incidents.tables import Event, Incident, Task
from engine.incidents.tasks import complete_task
from engine.playbooks.parsing import parse_playbook

ZONE = "Asia/Shanghai"
CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]
NOTIFICATION = ["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"]
REPORT = ["submit_initial_report", "cooperate_with_authorities"]
ACCOUNTABILITY = ["determine_responsibility", "decide_sanctions", "issue_internal_bulletin"]
REMEDIATION = [
    "management_rules",
    "technical_controls",
    "security_training",
    "client_confidentiality",
    "external_audit",
    "lessons_learned",
    "submit_summary_report",
]


def open_one(store, source, **kw):
    return open_incident(
        store,
        source=source,
        title="客户台账泄露",
        actor="alice",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=2),
        **kw,
    )


def do_tasks(store, incident_id, keys, actor="alice"):
    for key in keys:
        complete_task(store, incident_id, key, actor=actor)


def snapshot(store, incident_id):
    """Everything a refused trigger must leave untouched."""
    with store.read() as s:
        inc = s.get(Incident, incident_id)
        events = [(e.seq, e.hash) for e in s.exec(select(Event).where(Event.incident_id == incident_id))]
        tasks = sorted((t.key, t.status) for t in s.exec(select(Task).where(Task.incident_id == incident_id)))
        return (
            inc.state,
            inc.version,
            dict(inc.flags),
            dict(inc.anchors),
            dict(inc.records),
            inc.audit_head,
            events,
            tasks,
        )


class TestOpen:
    def test_readable_ids_count_up(self, store, builtin_source):
        """Incidents get readable ids INC-<year>-0001, -0002, ..."""
        a, b = open_one(store, builtin_source), open_one(store, builtin_source)
        year = datetime.now(UTC).astimezone().year
        assert a.id.endswith("-0001") and b.id.endswith("-0002")
        assert a.id.startswith("INC-") and str(year - 1 if a.id[4:8] != str(year) else year) in a.id

    def test_opens_first_phase_tasks(self, store, builtin_source):
        """Opening puts the incident in containment with that phase's tasks open and one audit event."""
        inc = open_one(store, builtin_source)
        with store.read() as s:
            tasks = {t.key: t.status for t in s.exec(select(Task).where(Task.incident_id == inc.id))}
            assert set(CONTAINMENT) <= set(tasks) and set(tasks.values()) == {"open"}
            assert s.get(Incident, inc.id).event_count == 1

    def test_future_discovery_refused(self, store, builtin_source):
        """A discovery time in the future is bad input."""
        with pytest.raises(BadInput, match="future"):
            open_incident(
                store,
                source=builtin_source,
                title="x",
                actor="a",
                zone=ZONE,
                discovered_at=datetime.now(UTC) + timedelta(days=1),
            )


class TestAdvance:
    def test_full_walk_to_closed(self, store, builtin_source):
        """An incident goes through all five phases to closed, with an intact audit chain."""
        inc = open_one(store, builtin_source)
        for tasks, trigger in [
            (CONTAINMENT, "contain"),
            (NOTIFICATION, "notify"),
            (REPORT, "report"),
            (ACCOUNTABILITY, "hold_accountable"),
            ([], "handling_ended"),
            (REMEDIATION, "close"),
        ]:
            do_tasks(store, inc.id, tasks)
            flow.advance(store, inc.id, trigger, actor="alice", zone=ZONE)
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.state == "closed" and row.closed_at is not None
            assert verify_chain(s, row).ok

    def test_guard_failure_names_the_missing_tasks_and_changes_nothing(self, store, builtin_source):
        """A blocked trigger says which guard failed and leaves incident, tasks and audit as they were."""
        inc = open_one(store, builtin_source)
        do_tasks(store, inc.id, CONTAINMENT[:2])
        before = snapshot(store, inc.id)
        with pytest.raises(GuardFailed) as err:
            flow.advance(store, inc.id, "contain", actor="alice", zone=ZONE)
        assert "establish_scope" in str(err.value) and "stop_transfer" not in str(err.value)
        assert snapshot(store, inc.id) == before

    def test_trigger_not_allowed_lists_allowed_ones(self, store, builtin_source):
        """A trigger of another phase is refused with the triggers allowed now."""
        inc = open_one(store, builtin_source)
        before = snapshot(store, inc.id)
        with pytest.raises(NotAllowed, match="allowed now: contain"):
            flow.advance(store, inc.id, "report", actor="alice", zone=ZONE)
        assert snapshot(store, inc.id) == before

    def test_unknown_trigger_and_incident(self, store, builtin_source):
        """Unknown names are NotFound errors."""
        inc = open_one(store, builtin_source)
        with pytest.raises(NotFound, match="unknown trigger 'fly'"):
            flow.advance(store, inc.id, "fly", actor="alice", zone=ZONE)
        with pytest.raises(NotFound, match="no incident 'INC-1999-0001'"):
            flow.advance(store, "INC-1999-0001", "contain", actor="alice", zone=ZONE)

    def test_stale_version_is_a_conflict_with_nothing_written(self, store, builtin_source):
        """An operator acting on an old version gets 'changed meanwhile' and nothing is kept."""
        inc = open_one(store, builtin_source)
        do_tasks(store, inc.id, CONTAINMENT)
        before = snapshot(store, inc.id)
        with pytest.raises(Conflict, match="changed meanwhile"):
            flow.advance(store, inc.id, "contain", actor="bob", zone=ZONE, expected_version=1)
        assert snapshot(store, inc.id) == before

    def test_version_rises_once_per_change(self, store, builtin_source):
        """Each accepted change raises the version by exactly one."""
        inc = open_one(store, builtin_source)
        do_tasks(store, inc.id, CONTAINMENT)
        result = flow.advance(store, inc.id, "contain", actor="alice", zone=ZONE)
        assert result.version == 1 + len(CONTAINMENT) + 1


class TestBranches:
    def _to_notification(self, store, source):
        inc = open_one(store, source)
        do_tasks(store, inc.id, CONTAINMENT)
        flow.advance(store, inc.id, "contain", actor="alice", zone=ZONE)
        return inc

    def test_waiver_needs_reason_then_approver_then_another_person(self, store, builtin_source):
        """Waiving notice needs --reason, --approver, and the approver must not be the operator."""
        inc = self._to_notification(store, builtin_source)
        before = snapshot(store, inc.id)
        with pytest.raises(BadInput, match="needs --reason"):
            flow.advance(store, inc.id, "waive_notification", actor="alice", zone=ZONE)
        with pytest.raises(BadInput, match="needs --approver"):
            flow.advance(store, inc.id, "waive_notification", actor="alice", zone=ZONE, reason="加密")
        with pytest.raises(GuardFailed, match="someone other than the operator"):
            flow.advance(
                store, inc.id, "waive_notification", actor="alice", zone=ZONE, reason="加密", approver="Alice"
            )
        assert snapshot(store, inc.id) == before
        flow.advance(
            store,
            inc.id,
            "waive_notification",
            actor="alice",
            zone=ZONE,
            reason="数据已加密，密钥未泄露",
            approver="dpo-wang",
        )
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.state == "regulator_report" and row.flags["notification_waived"]
            assert row.records["waivers"][0]["approver"] == "dpo-wang"

    def test_regulator_order_undoes_waiver(self, store, builtin_source):
        """A regulator's order to notify sends the incident back to notification and clears the waiver."""
        inc = self._to_notification(store, builtin_source)
        with pytest.raises(NotAllowed):
            flow.advance(
                store,
                inc.id,
                "regulator_orders_notice",
                actor="a",
                zone=ZONE,
                reason="x",
                inputs={"ref": "1"},
            )
        flow.advance(
            store, inc.id, "waive_notification", actor="alice", zone=ZONE, reason="加密", approver="bob"
        )
        flow.advance(
            store,
            inc.id,
            "regulator_orders_notice",
            actor="alice",
            zone=ZONE,
            reason="网信办要求",
            inputs={"ref": "网信〔2026〕3号"},
        )
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.state == "customer_notification" and "notification_waived" not in row.flags
            tasks = {t.key: t.status for t in s.exec(select(Task).where(Task.incident_id == inc.id))}
            assert tasks["notify_individuals"] == "open"

    def test_correction_order_recorded_and_blocks_close(self, store, builtin_source):
        """An order to correct is kept with its due date (UTC) and must be complied with before closing."""
        inc = self._to_notification(store, builtin_source)
        with pytest.raises(BadInput, match="needs --input due_at"):
            flow.advance(store, inc.id, "correction_order", actor="a", zone=ZONE, inputs={"ref": "R1"})
        with pytest.raises(BadInput, match="malformed time"):
            flow.advance(
                store,
                inc.id,
                "correction_order",
                actor="a",
                zone=ZONE,
                inputs={"ref": "R1", "due_at": "next week"},
            )
        flow.advance(
            store,
            inc.id,
            "correction_order",
            actor="a",
            zone=ZONE,
            inputs={"ref": "R1", "due_at": "2030-12-01 17:00"},
        )
        with store.read() as s:
            order = s.get(Incident, inc.id).records["correction_orders"][0]
            assert order["due_at"] == "2030-12-01T09:00:00+00:00" and order["status"] == "open"
        do_tasks(store, inc.id, NOTIFICATION)
        flow.advance(store, inc.id, "notify", actor="a", zone=ZONE)
        do_tasks(store, inc.id, REPORT)
        flow.advance(store, inc.id, "report", actor="a", zone=ZONE)
        do_tasks(store, inc.id, ACCOUNTABILITY)
        flow.advance(store, inc.id, "hold_accountable", actor="a", zone=ZONE)
        flow.advance(store, inc.id, "handling_ended", actor="a", zone=ZONE)
        do_tasks(store, inc.id, REMEDIATION)
        with pytest.raises(GuardFailed, match="correction orders still open: R1"):
            flow.advance(store, inc.id, "close", actor="a", zone=ZONE)
        with pytest.raises(NotAllowed, match="no open correction_orders with ref 'R2'"):
            flow.advance(store, inc.id, "correction_done", actor="a", zone=ZONE, inputs={"ref": "R2"})
        flow.advance(store, inc.id, "correction_done", actor="a", zone=ZONE, inputs={"ref": "R1"})
        flow.advance(store, inc.id, "close", actor="a", zone=ZONE)

    def test_reopen_from_remediation_reopens_containment_tasks(self, store, builtin_source):
        """Reopening on new facts goes back to containment with its tasks open again."""
        inc = self._to_notification(store, builtin_source)
        for tasks, trig in [
            (NOTIFICATION, "notify"),
            (REPORT, "report"),
            (ACCOUNTABILITY, "hold_accountable"),
        ]:
            do_tasks(store, inc.id, tasks)
            flow.advance(store, inc.id, trig, actor="a", zone=ZONE)
        with pytest.raises(BadInput, match="needs --reason"):
            flow.advance(store, inc.id, "reopen", actor="a", zone=ZONE)
        flow.advance(store, inc.id, "reopen", actor="a", zone=ZONE, reason="发现另一批泄露数据")
        with store.read() as s:
            tasks = {t.key: t.status for t in s.exec(select(Task).where(Task.incident_id == inc.id))}
            assert all(tasks[k] == "open" for k in CONTAINMENT)
            assert s.get(Incident, inc.id).records["reopenings"][0]["reason"] == "发现另一批泄露数据"

    def test_supplementary_reports_are_numbered(self, store, builtin_source):
        """Supplementary reports stay in the phase and are numbered 1, 2, ..."""
        inc = self._to_notification(store, builtin_source)
        do_tasks(store, inc.id, NOTIFICATION)
        flow.advance(store, inc.id, "notify", actor="a", zone=ZONE)
        for text in ("人数更正", "原因初判"):
            flow.advance(store, inc.id, "supplementary_report", actor="a", zone=ZONE, reason=text)
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.state == "regulator_report"
            assert [r["number"] for r in row.records["supplementary_reports"]] == [1, 2]


class TestTasksAndPinning:
    def test_task_of_another_phase_is_refused(self, store, builtin_source):
        """Only open tasks of the current phase can be completed; done twice is refused."""
        inc = open_one(store, builtin_source)
        with pytest.raises(NotAllowed, match="belongs to state customer_notification"):
            complete_task(store, inc.id, "notify_individuals", actor="a")
        complete_task(store, inc.id, "stop_transfer", actor="a")
        with pytest.raises(NotAllowed, match="done already"):
            complete_task(store, inc.id, "stop_transfer", actor="a")
        with pytest.raises(NotFound, match="no task 'fly'"):
            complete_task(store, inc.id, "fly", actor="a")

    def test_incident_keeps_its_playbook_version(self, store, builtin_source):
        """An incident runs under the playbook text it was opened with, even after the playbook changes."""
        inc = open_one(store, builtin_source)
        changed = builtin_source.text.replace("version: 1", "version: 2").replace(
            "guards: [required_tasks_done]\n    effects: [{set_anchor: contained_at}]",
            "effects: [{set_anchor: contained_at}]",
        )
        newer = parse_playbook(changed, "changed.yaml")
        later = open_one(store, newer)
        flow.advance(store, later.id, "contain", actor="a", zone=ZONE)  # v2 lets it through
        with pytest.raises(GuardFailed):
            flow.advance(store, inc.id, "contain", actor="a", zone=ZONE)  # v1 still guards
        with store.read() as s:
            assert s.get(Incident, inc.id).playbook_version == 1
