"""Deadline rules, due times, the lifecycle in the flow's transaction, waivers and the checker's decisions.

Database tests run on SQLite and on PostgreSQL. Legal figures are read from the legal data, not repeated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import assert_one_line_error, at_rest, team_toml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from engine.clocks.calendars import get_calendar
from engine.clocks.plan import IncidentView, PlanContext, plan_rules
from engine.clocks.rules import parse_warning
from engine.deadlines.checker import decide
from engine.deadlines.tables import Deadline
from engine.deadlines.waiver import waive
from engine.errors import BadInput, NotAllowed, NotFound
from engine.incidents import flow, opening
from engine.incidents.audit import verify_chain
from engine.incidents.reassess import update_facts
from engine.incidents.tables import Event, Incident
from engine.incidents.tasks import complete_task
from engine.legal.data import builtin_legal
from engine.legal.facts import facts_to_dict, merge_facts
from engine.playbooks.parsing import parse_playbook
from engine.wiring import hooks_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"
CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]
NOTIFICATION = ["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"]


def people_for(grade: str) -> int:
    """The CN-CAC-GRADE people threshold of ``grade``, from the legal data."""
    return next(t.people_affected for t in builtin_legal().cac_grade.thresholds if t.grade == grade)


def initial_hours(operator_type: str) -> int:
    """The CN-CAC-RPT-4 hours for an operator type, from the legal data."""
    return int(builtin_legal().initial_report_clock(operator_type).duration.removesuffix("h"))


@pytest.fixture
def ws(tmp_path, db_url):
    """A workspace whose team is alice, who walks incidents, and wang, the DPO who approves waivers."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "settings.toml").write_text(team_toml("alice", "wang"), encoding="utf-8")
    return Workspace.resolve(tmp_path, db_url)


@pytest.fixture
def hooks(ws):
    return hooks_for(ws)


def open_incident(store, source, hooks, *, hours_ago=1.0, facts=None, drill=False):
    return opening.open_incident(
        store,
        source=source,
        title="客户台账泄露",
        actor="alice",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        facts=facts_to_dict(merge_facts({}, facts)) if facts else None,
        drill=drill,
        hooks=hooks,
    )


def deadlines(store, incident_id):
    with store.read() as s:
        rows = s.exec(select(Deadline).where(Deadline.incident_id == incident_id))
        return {(d.rule_id + (f" {d.subject}" if d.subject else "")): d for d in rows}


def events(store, incident_id, kind):
    with store.read() as s:
        return list(s.exec(select(Event).where(Event.incident_id == incident_id, Event.kind == kind)))


def walk(store, incident_id, hooks, tasks, trigger=None, **kw):
    for task in tasks:
        complete_task(store, incident_id, task, actor="alice", hooks=hooks)
    if trigger:
        flow.advance(store, incident_id, trigger, actor="alice", zone=ZONE, hooks=hooks, **kw)


def context(**policy):
    return PlanContext(
        legal=builtin_legal(), zone=ZONE, calendar=lambda name: get_calendar(name), policy_durations=policy
    )


def view(**kw):
    base = {"anchors": {}, "flags": {}, "facts": {}, "records": {}, "assessment": {}}
    return IncidentView(**{**base, **kw})


def plan_of(source, rule_id, incident_view, ctx=None):
    rules = [r for r in source.playbook.deadlines if r.id == rule_id]
    return plan_rules(rules, incident_view, ctx or context())


class TestRuleSchema:
    def test_builtin_playbook_rules(self, builtin_source):
        """The built-in playbook has the CAC clocks, the PIPL targets as policy and the correction order."""
        rules = {r.id: r for r in builtin_source.playbook.deadlines}
        assert {"CN-CAC-RPT-4", "CN-CAC-RPT-8", "CN-SPC-2019-4"} <= set(rules)
        policy = [r for r in rules.values() if r.kind == "policy"]
        assert policy and all(r.id.startswith("POLICY-") for r in policy)
        assert rules["CN-CAC-RPT-4"].legal == "initial_report" and rules["CN-CAC-RPT-4"].duration is None
        assert rules["CN-SPC-2019-4"].record.list == "correction_orders"

    def test_warning_points(self):
        """Warnings are fractions of the window or lead times before the due time."""
        assert parse_warning("50%").fraction == 0.5 and parse_warning("50%").kind == "warn:50%"
        assert parse_warning("1h before").kind == "warn:1h"
        assert parse_warning("30 min before").kind == "warn:30m"
        assert parse_warning("2 days before").kind == "warn:2d"
        for bad in ("150%", "0%", "soon", "3 working days before"):
            with pytest.raises(ValueError):
                parse_warning(bad)

    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("\n    anchor: handling_ended_at\n", "\n    anchor: ended_at\n", "unknown anchor 'ended_at'"),
            (
                "met_by: {task: submit_summary_report}",
                "met_by: {task: write_report}",
                "unknown task 'write_report'",
            ),
            (
                'met_by: [{task: submit_initial_report}, {trigger: report}]\n    warnings: ["50%", "15 min',
                'met_by: [{trigger: reprt}]\n    warnings: ["50%", "15 min',
                "unknown trigger 'reprt'",
            ),
            (
                "id: POLICY-CLIENT-NOTICE",
                "id: CN-CLIENT-NOTICE",
                "kind policy goes with an id starting POLICY-",
            ),
            ("record: {list: correction_orders,", "record: {list: corrections,", "open_record: corrections"),
            ("duration: 30 days", "duration: 30 fortnights", "malformed duration"),
            (
                "    legal: initial_report\n    calendar: CN",
                "    legal: initial_report\n    calendar: Mars",
                "unknown calendar 'Mars'",
            ),
            (
                "    legal: initial_report\n",
                "    legal: initial_report\n    basis: 第四条\n",
                "come from the legal data",
            ),
        ],
    )
    def test_bad_rules_are_refused_with_line(self, builtin_source, old, new, message):
        """A rule naming a missing anchor, task, trigger or records list, or a bad field, is refused."""
        assert old in builtin_source.text
        with pytest.raises(BadInput) as info:
            parse_playbook(builtin_source.text.replace(old, new, 1), "pb.yaml")
        assert message in str(info.value) and "pb.yaml:" in str(info.value)


class TestPlanning:
    def test_initial_report_follows_operator_type_and_grade(self, builtin_source):
        """CN-CAC-RPT-4 runs from discovery, hours by operator_type, only at grade relatively_major or up."""
        start = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
        for operator in ("cii", "state_organ", "other"):
            graded = view(
                anchors={"discovered_at": start.isoformat()},
                facts={"operator_type": operator},
                assessment={"grade": "relatively_major"},
            )
            (plan,) = plan_of(builtin_source, "CN-CAC-RPT-4", graded)
            assert plan.applies and plan.due.due_at == start + timedelta(hours=initial_hours(operator))
            assert plan.basis["article"] == builtin_legal().initial_report.article
        (ungraded,) = plan_of(
            builtin_source, "CN-CAC-RPT-4", view(anchors={"discovered_at": start.isoformat()})
        )
        assert not ungraded.applies and "no grade yet" in ungraded.why_not
        low = view(anchors={"discovered_at": start.isoformat()}, assessment={"grade": "general"})
        assert "below relatively_major" in plan_of(builtin_source, "CN-CAC-RPT-4", low)[0].why_not

    def test_recorded_grade_and_aware_at_count(self, builtin_source):
        """A grade the operator records counts, and aware_at wins over discovered_at as the anchor."""
        discovered, aware = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
        incident = view(
            anchors={"discovered_at": discovered.isoformat(), "aware_at": aware.isoformat()},
            facts={"recorded_grade": "major"},
        )
        (plan,) = plan_of(builtin_source, "CN-CAC-RPT-4", incident)
        assert plan.anchor == "aware_at" and plan.start_at == aware and plan.applies

    def test_summary_report_moves_off_a_holiday(self, builtin_source):
        """30 days ending in the National Day holiday end at 24:00 of the next working day (Art 203)."""
        ended = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
        incident = view(anchors={"handling_ended_at": ended.isoformat()}, assessment={"grade": "major"})
        (plan,) = plan_of(builtin_source, "CN-CAC-RPT-8", incident)
        assert plan.due.due_at.isoformat() == "2026-10-08T16:00:00+00:00"  # 2026-10-09 00:00 +08:00
        assert not plan.due.provisional and any("National Day" in line for line in plan.explain)

    def test_unannounced_year_is_provisional(self, builtin_source):
        """A due time in a year without an official schedule is marked provisional."""
        ended = datetime(2026, 12, 20, tzinfo=UTC)
        incident = view(anchors={"handling_ended_at": ended.isoformat()}, assessment={"grade": "major"})
        (plan,) = plan_of(builtin_source, "CN-CAC-RPT-8", incident)
        assert plan.due.provisional and plan.calendar_version.startswith("CN")

    def test_policy_targets_are_labelled_and_configurable(self, builtin_source):
        """Internal targets say they are policy, not law; settings can change them, never a law rule."""
        start = datetime(2026, 11, 20, tzinfo=UTC)
        incident = view(anchors={"discovered_at": start.isoformat()})
        (plan,) = plan_of(
            builtin_source, "POLICY-PIPL57-REGULATOR", incident, context(**{"POLICY-PIPL57-REGULATOR": "48h"})
        )
        assert plan.basis["note"] == "internal policy, not law" and plan.due.due_at == start + timedelta(
            hours=48
        )
        with pytest.raises(BadInput, match="only internal POLICY- targets"):
            plan_of(builtin_source, "CN-CAC-RPT-8", incident, context(**{"CN-CAC-RPT-8": "60 days"}))

    def test_warnings_sit_inside_the_window(self, builtin_source):
        """50 % of a 72 h window is 36 h in; a lead time counts back from the due time."""
        start = datetime(2026, 11, 20, tzinfo=UTC)
        (plan,) = plan_of(
            builtin_source, "POLICY-PIPL57-REGULATOR", view(anchors={"discovered_at": start.isoformat()})
        )
        window = plan.due.due_at - start
        assert dict(plan.warnings)["warn:50%"] == start + window / 2
        incident = view(anchors={"discovered_at": start.isoformat()}, assessment={"grade": "major"})
        (report,) = plan_of(builtin_source, "CN-CAC-RPT-4", incident)
        assert dict(report.warnings)["warn:15m"] == report.due.due_at - timedelta(minutes=15)

    def test_record_date_means_end_of_that_day(self, builtin_source):
        """An order due "2026-12-20" is due at 24:00 of that day, local time."""
        due = datetime(2026, 12, 19, 16, 0, tzinfo=UTC)  # 2026-12-20 00:00 +08:00, as the flow stores a date
        entry = {
            "number": 1,
            "ref": "X",
            "at": "2026-11-20T01:00:00+00:00",
            "due_at": due.isoformat(),
            "status": "open",
        }
        (plan,) = plan_of(builtin_source, "CN-SPC-2019-4", view(records={"correction_orders": [entry]}))
        assert plan.subject == "correction_orders#1" and plan.due.due_at == due + timedelta(days=1)


class TestLifecycle:
    def test_open_starts_clocks_by_grade(self, store, builtin_source, hooks):
        """A graded incident gets the CAC clock at opening; an ungraded one only the internal targets."""
        graded = open_incident(
            store, builtin_source, hooks, facts={"people_affected": people_for("relatively_major")}
        )
        plain = open_incident(store, builtin_source, hooks)
        assert "CN-CAC-RPT-4" in deadlines(store, graded.id)
        rows = deadlines(store, plain.id)
        assert "CN-CAC-RPT-4" not in rows and "POLICY-PIPL57-REGULATOR" in rows
        assert all(r.status == "pending" and r.due_at.tzinfo is not None for r in rows.values())

    def test_task_meets_and_freezes_lateness(self, store, builtin_source, hooks):
        """Completing the task meets the deadline; a late one keeps its lateness, frozen."""
        incident = open_incident(store, builtin_source, hooks, hours_ago=30)
        walk(store, incident.id, hooks, CONTAINMENT, "contain")
        walk(store, incident.id, hooks, ["notify_client_companies"])
        client = deadlines(store, incident.id)["POLICY-CLIENT-NOTICE"]
        assert client.status == "met" and client.met_by == "task:notify_client_companies"
        late = (client.met_at - client.due_at).total_seconds()
        assert 5 * 3600 < late and client.lateness_seconds == int(late) and client.next_check_at is None
        update_facts(
            store, incident.id, {"operator_type": "cii"}, actor="alice", legal=builtin_legal(), hooks=hooks
        )
        assert (
            deadlines(store, incident.id)["POLICY-CLIENT-NOTICE"].lateness_seconds == client.lateness_seconds
        )

    def test_changed_facts_recompute_with_audit(self, store, builtin_source, hooks):
        """operator_type other → cii moves the initial report's due time, audited old → new."""
        incident = open_incident(store, builtin_source, hooks, facts={"people_affected": people_for("major")})
        before = deadlines(store, incident.id)["CN-CAC-RPT-4"]
        update_facts(
            store, incident.id, {"operator_type": "cii"}, actor="alice", legal=builtin_legal(), hooks=hooks
        )
        after = deadlines(store, incident.id)["CN-CAC-RPT-4"]
        assert before.due_at - after.due_at == timedelta(hours=initial_hours("other") - initial_hours("cii"))
        assert after.alert_round == 2
        (event,) = events(store, incident.id, "deadline_recomputed")
        assert event.inputs["old_due_at"] == before.due_at.isoformat()
        assert event.inputs["new_due_at"] == after.due_at.isoformat() and event.inputs["cause"] == "facts"
        with store.read() as s:
            assert verify_chain(s, s.get(Incident, incident.id)).ok

    def test_grade_down_voids_and_up_resumes(self, store, builtin_source, hooks):
        """A clock whose condition stops holding lapses (void) and comes back when it holds again."""
        incident = open_incident(
            store, builtin_source, hooks, facts={"people_affected": people_for("relatively_major")}
        )
        legal = builtin_legal()
        update_facts(store, incident.id, {"people_affected": 10}, actor="alice", legal=legal, hooks=hooks)
        row = deadlines(store, incident.id)["CN-CAC-RPT-4"]
        assert row.status == "void" and "below" in row.void_reason and row.next_check_at is None
        update_facts(
            store,
            incident.id,
            {"people_affected": people_for("major")},
            actor="alice",
            legal=legal,
            hooks=hooks,
        )
        assert deadlines(store, incident.id)["CN-CAC-RPT-4"].status == "pending"

    def test_waived_notice_lapses_and_order_revives_it(self, store, builtin_source, hooks):
        """The individuals' notice target lapses under a PIPL Art 57 waiver and resumes on a notice order."""
        incident = open_incident(store, builtin_source, hooks)
        walk(store, incident.id, hooks, CONTAINMENT, "contain")
        flow.advance(
            store,
            incident.id,
            "waive_notification",
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            reason="数据已加密",
            approver="wang",
        )
        assert deadlines(store, incident.id)["POLICY-PIPL57-INDIVIDUALS"].status == "void"
        flow.advance(
            store,
            incident.id,
            "regulator_orders_notice",
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            reason="网信办要求通知",
            inputs={"ref": "R-1"},
        )
        assert deadlines(store, incident.id)["POLICY-PIPL57-INDIVIDUALS"].status == "pending"

    def test_correction_orders_each_get_a_deadline(self, store, builtin_source, hooks):
        """Each order to correct has its own deadline at its own date, met when that order is closed."""
        incident = open_incident(store, builtin_source, hooks)
        walk(store, incident.id, hooks, CONTAINMENT, "contain")
        for ref, due in (("A-1", "2026-12-20"), ("A-2", "2027-01-05 18:00")):
            flow.advance(
                store,
                incident.id,
                "correction_order",
                actor="alice",
                zone=ZONE,
                hooks=hooks,
                inputs={"ref": ref, "due_at": due},
            )
        flow.advance(
            store,
            incident.id,
            "correction_done",
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            inputs={"ref": "A-1"},
        )
        rows = deadlines(store, incident.id)
        first, second = rows["CN-SPC-2019-4 correction_orders#1"], rows["CN-SPC-2019-4 correction_orders#2"]
        assert first.status == "met" and first.basis["ref"] == "A-1"
        assert first.due_at.isoformat() == "2026-12-20T16:00:00+00:00"
        assert second.status == "pending" and second.due_at.isoformat() == "2027-01-05T10:00:00+00:00"

    def test_procuratorate_suggestion_reply_date_is_a_clock(self, store, builtin_source, hooks):
        """A procuratorate suggestion's reply date is a deadline of its own, met by the written reply."""
        incident = open_incident(store, builtin_source, hooks)
        flow.advance(
            store,
            incident.id,
            "procuratorate_suggestion",
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            inputs={"ref": "某检建〔2026〕7号", "due_at": "2026-12-31"},
        )
        row = deadlines(store, incident.id)["CN-PROC-SUGGESTION procuratorate_suggestions#1"]
        assert row.status == "pending" and row.due_at.isoformat() == "2026-12-31T16:00:00+00:00"
        assert row.basis["ref"] == "某检建〔2026〕7号"
        flow.advance(
            store,
            incident.id,
            "suggestion_replied",
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            inputs={"ref": "某检建〔2026〕7号"},
        )
        assert deadlines(store, incident.id)["CN-PROC-SUGGESTION procuratorate_suggestions#1"].status == "met"

    def test_refused_change_leaves_deadlines_alone(self, store, builtin_source, hooks):
        """A trigger refused by its guard changes no deadline."""
        incident = open_incident(store, builtin_source, hooks)
        before = {k: (d.status, d.version, d.due_at) for k, d in deadlines(store, incident.id).items()}
        with pytest.raises(BadInput):
            flow.advance(store, incident.id, "contain", actor="alice", zone=ZONE, hooks=hooks)
        assert {
            k: (d.status, d.version, d.due_at) for k, d in deadlines(store, incident.id).items()
        } == before

    def test_bad_settings_refuse_the_change(self, store, builtin_source, ws):
        """A malformed policy duration in settings refuses the step, and nothing is stored."""
        (ws.home / "config" / "settings.toml").write_text(
            '[deadlines.policy]\n"POLICY-PIPL57-REGULATOR" = "3 fortnights"\n', encoding="utf-8"
        )
        broken = hooks_for(Workspace.resolve(ws.home, ws.db_url_override))
        with pytest.raises(BadInput, match="malformed duration"):
            open_incident(store, builtin_source, broken)
        with store.read() as s:
            assert s.exec(select(Incident)).first() is None


class TestWaiver:
    def test_waiver_needs_reason_and_other_approver_and_is_audited(self, store, builtin_source, hooks):
        """A waiver without reason, or approved by the actor, is refused; an accepted one is audited."""
        incident = open_incident(store, builtin_source, hooks)
        rule = "POLICY-PIPL57-REGULATOR"
        with pytest.raises(BadInput, match="--reason"):
            waive(store, incident.id, rule, reason=" ", approver="wang", actor="alice")
        with pytest.raises(NotAllowed, match="someone other"):
            waive(store, incident.id, rule, reason="监管同意延后", approver="Alice", actor="alice")
        row = waive(store, incident.id, rule, reason="监管同意延后", approver="wang", actor="alice")
        assert row.status == "waived" and row.waiver_approver == "wang" and row.next_check_at is None
        (event,) = events(store, incident.id, "deadline_waived")
        assert event.reason == "监管同意延后" and event.inputs["approver"] == "wang"
        with pytest.raises(NotAllowed, match="is waived"):
            waive(store, incident.id, rule, reason="x", approver="wang", actor="alice")

    def test_unknown_rule_is_named(self, store, builtin_source, hooks):
        """Waiving a rule the incident has no deadline for lists the ones it has."""
        incident = open_incident(store, builtin_source, hooks)
        with pytest.raises(NotFound, match="POLICY-PIPL57-REGULATOR"):
            waive(store, incident.id, "CN-NOPE-1", reason="x", approver="wang", actor="alice")


T0 = datetime(2026, 11, 20, tzinfo=UTC)


class TestDecide:
    T0 = T0
    WARNINGS = (
        {"kind": "warn:50%", "at": (T0 + timedelta(hours=2)).isoformat()},
        {"kind": "warn:90%", "at": (T0 + timedelta(hours=3, minutes=36)).isoformat()},
    )

    def decide(self, now, next_check=None, alert_round=1):
        return decide(
            status="pending",
            due_at=self.T0 + timedelta(hours=4),
            next_check_at=next_check or self.T0 + timedelta(hours=2),
            warnings=list(self.WARNINGS),
            alert_round=alert_round,
            now=now,
        )

    def test_latest_passed_warning_only(self):
        """A checker that slept through two warning points sends the latest only."""
        first = self.decide(self.T0 + timedelta(hours=2, minutes=1))
        assert first.kind == "warn:50%" and first.next_check_at == self.T0 + timedelta(hours=3, minutes=36)
        both = self.decide(self.T0 + timedelta(hours=3, minutes=50))
        assert both.kind == "warn:90%" and both.skipped == ["warn:50%"] and both.status == "warned"

    def test_due_means_missed_and_rounds_are_named(self):
        """Once due only 'missed' is sent; a recomputed deadline's alerts carry their round."""
        assert self.decide(self.T0 + timedelta(hours=4)).kind == "missed"
        assert self.decide(self.T0 + timedelta(hours=5), alert_round=2).kind == "missed@r2"
        early = self.decide(self.T0 + timedelta(hours=1), next_check=self.T0 + timedelta(hours=1))
        assert early.kind is None and early.next_check_at == self.T0 + timedelta(hours=2)


class TestDecideProperties:
    @settings(max_examples=200, deadline=None)
    @given(
        points=st.lists(st.integers(1, 239), unique=True, max_size=5),
        scans=st.lists(st.integers(0, 400), min_size=1, max_size=12),
    )
    def test_scans_at_any_times_alert_once_each_in_order(self, points, scans):
        """Scanning at any times sends each alert at most once, in time order, and 'missed' once when due."""
        due_at = T0 + timedelta(minutes=240)
        warnings = [
            {"kind": f"warn:{m}", "at": (T0 + timedelta(minutes=m)).isoformat()} for m in sorted(points)
        ]
        status, next_check, sent = "pending", min([T0 + timedelta(minutes=m) for m in points] + [due_at]), []
        for minute in sorted(scans):
            now = T0 + timedelta(minutes=minute)
            if next_check is None or next_check > now:
                continue  # find_due would not return the row
            d = decide(
                status=status,
                due_at=due_at,
                next_check_at=next_check,
                warnings=warnings,
                alert_round=1,
                now=now,
            )
            assert d.next_check_at is None or d.next_check_at > now  # every scan moves the row on
            status, next_check = d.status, d.next_check_at
            if d.kind:
                sent.append(d.kind)
        assert len(sent) == len(set(sent)) and "missed" not in sent[:-1]
        order = [int(k.split(":")[1]) for k in sent if k != "missed"]
        assert order == sorted(order)
        assert ("missed" in sent) == (max(scans) >= 240)


class TestMigration:
    def test_upgrade_from_0001_keeps_incidents_working(self, db_url, builtin_source, tmp_path):
        """A 0001 database with an incident upgrades to head; the incident then gets its clocks."""
        from engine.migrations.migrate import head_revision, upgrade
        from engine.store.db import Store

        store = Store(db_url)
        assert upgrade(store, "0001") == "0001"
        incident = opening.open_incident(
            store,
            source=builtin_source,
            title="旧事件",
            actor="alice",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        assert upgrade(store) == head_revision()
        hooks = hooks_for(Workspace.resolve(tmp_path, db_url))
        complete_task(store, incident.id, "stop_transfer", actor="alice", hooks=hooks)
        assert "POLICY-PIPL57-REGULATOR" in deadlines(store, incident.id)
        with store.read() as s:
            assert verify_chain(s, s.get(Incident, incident.id)).ok
        store.dispose()

    def test_old_schema_is_a_clear_refusal(self, db_url, builtin_source, tmp_path):
        """Before the upgrade, a step with deadline rules is refused naming 'breach db upgrade'."""
        from engine.migrations.migrate import upgrade
        from engine.store.db import Store

        store = Store(db_url)
        upgrade(store, "0001")
        hooks = hooks_for(Workspace.resolve(tmp_path, db_url))
        with pytest.raises(BadInput, match="breach db upgrade"):
            open_incident(store, builtin_source, hooks)
        with store.read() as s:
            assert s.exec(select(Incident)).first() is None
        store.dispose()


def discovered(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(timespec="seconds")


class TestCommands:
    def test_clock_add(self, cli):
        """clock add answers with due_at (offset), provisional, calendar and the days skipped."""
        out = cli.json("clock", "add", "--from", "2026-09-24 10:00", "--duration", "3 working days")
        assert out["due_at"] == "2026-10-01T00:00:00+08:00" and out["calendar"] == "CN"
        assert out["provisional"] is False and any("Mid-Autumn" in line for line in out["explain"])
        assert (
            cli.json("clock", "add", "--from", "2026-12-30", "--duration", "30 days")["provisional"] is True
        )
        hours = cli.json("clock", "add", "--from", "2026-11-20T09:30:00+08:00", "--duration", "72h")
        assert hours["due_at"] == "2026-11-23T09:30:00+08:00" and hours["calendar"] == "none"
        text = cli("clock", "add", "--from", "2026-12-30", "--duration", "30 days", check=True).stdout
        assert "provisional" in text and "2027 schedule not announced" in text

    def test_bad_input_is_one_line(self, cli):
        """Unknown calendar, malformed duration, missing time, unknown rule: one line, exit 2."""
        add = ("clock", "add", "--from", "2026-11-20")
        assert_one_line_error(cli(*add, "--duration", "3h", "--calendar", "XX"), "unknown calendar 'XX'")
        assert_one_line_error(cli(*add, "--duration", "3 fortnights"), "malformed duration")
        assert_one_line_error(cli("clock", "add", "--duration", "3h"), "Missing option '--from'")
        assert_one_line_error(cli("clock", "add", "--from", "", "--duration", "3h"), "malformed time")
        assert_one_line_error(cli("deadlines", "list", "--due-within", "2 months"), "--due-within")
        incident_id = cli.open_incident(discovered_at=discovered(2))
        before = cli.json("incident", "show", incident_id)
        waive = ("deadlines", "waive", incident_id)
        assert_one_line_error(
            cli(*waive, "CN-NOPE-9", "--reason", "r", "--approver", "wang"), "no deadline CN-NOPE-9"
        )
        assert_one_line_error(cli(*waive, "POLICY-CLIENT-NOTICE", "--reason", "r"), "--approver")
        assert at_rest(cli.json("incident", "show", incident_id)) == at_rest(before)

    def test_list_show_and_waive(self, cli):
        """Deadlines list with countdowns and basis; show carries the clocks; a waiver is audited."""
        incident_id = cli.open_incident(discovered_at=discovered(30))
        rows = cli.json("deadlines", "list")
        assert {r["rule"] for r in rows} == {
            "POLICY-CLIENT-NOTICE",
            "POLICY-PIPL57-REGULATOR",
            "POLICY-PIPL57-INDIVIDUALS",
        }
        assert all(r["due_at"].endswith("+08:00") and r["basis"]["note"] for r in rows)
        (late,) = cli.json("deadlines", "list", "--overdue")
        assert late["rule"] == "POLICY-CLIENT-NOTICE" and late["remaining_seconds"] < 0
        assert late["countdown"].startswith("overdue by")
        assert {r["rule"] for r in cli.json("deadlines", "list", "--due-within", "24h")} == {
            "POLICY-CLIENT-NOTICE"
        }
        shown = cli.json("incident", "show", incident_id)["deadlines"]
        assert all({"rule", "due_at", "status", "basis"} <= set(d) for d in shown)
        human = cli("incident", "show", incident_id, check=True).stdout
        assert "Clocks" in human and "internal policy, not law" in human and "overdue by" in human
        asked = cli(
            "deadlines",
            "waive",
            incident_id,
            "POLICY-CLIENT-NOTICE",
            "--reason",
            "客户已电话告知",
            "--approver",
            "wang",
            "--as",
            "alice",
            check=True,
        )
        # The waiver is a request until wang approves it under his own account.
        assert "waits for wang's approval (request 1)" in asked.stdout
        assert cli.json("deadlines", "list", "--overdue")[0]["rule"] == "POLICY-CLIENT-NOTICE"
        events = cli.json("incident", "show", incident_id)["events"]
        assert events[-1]["reason"] == "客户已电话告知" and events[-1]["inputs"]["approver"] == "wang"
        # The account that entered the request cannot approve it.
        assert_one_line_error(cli("approve", incident_id, "1"), "asked for it and cannot approve it")
        assert cli.json("deadlines", "list", "--overdue")[0]["rule"] == "POLICY-CLIENT-NOTICE"
        assert cli("audit", "verify", incident_id).returncode == 0


class TestRecompute:
    """Deadlines follow data that changes between steps: a year's schedule, policy targets."""

    def grade_major_ended(self, store, builtin_source, hooks):
        """An incident graded major whose handling has just ended: CN-CAC-RPT-8 runs 30 days under CN."""
        incident = open_incident(
            store, builtin_source, hooks, facts={"people_affected": people_for("major")}
        ).id
        walk(store, incident, hooks, CONTAINMENT, "contain")
        walk(store, incident, hooks, NOTIFICATION, "notify")
        walk(store, incident, hooks, [], "handling_ended")
        return incident

    def summary(self, store, incident_id) -> Deadline:
        return deadlines(store, incident_id)["CN-CAC-RPT-8"]

    def test_a_new_holiday_on_the_last_day_moves_the_summary_report(self, store, builtin_source, ws, hooks):
        """A schedule adding a holiday on the due day, then recompute: due the next working day, audited."""
        from engine.deadlines.sync import deadline_context, recompute_deadlines
        from engine.workspace import builtin_root

        incident = self.grade_major_ended(store, builtin_source, hooks)
        before = self.summary(store, incident)
        # Due at 24:00 of the last day, i.e. 00:00 local of the day after.
        last_day = before.due_at.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=1)
        shipped = builtin_root() / "config" / "calendars" / f"CN-{last_day.year}.toml"
        extra = f'    {{ date = {last_day.isoformat()}, name = "Extra rest day" }},\n'
        if shipped.exists():
            text = shipped.read_text(encoding="utf-8").replace("holidays = [\n", "holidays = [\n" + extra, 1)
        else:
            # An unannounced year: the notice written here keeps the package's rest days, so that only the
            # extra day differs from the provisional calendar the clock ran on (whatever today's date).
            from holidays.countries.china import China

            known = "".join(
                f'    {{ date = {day.isoformat()}, name = "rest" }},\n'
                for day in sorted(China(years=last_day.year).keys())
                if day != last_day
            )
            text = f'source = "test notice"\nverified = true\nholidays = [\n{extra}{known}]\n'

        (ws.home / "config" / "calendars").mkdir(parents=True, exist_ok=True)
        (ws.home / "config" / "calendars" / shipped.name).write_text(text, encoding="utf-8")
        with store.read() as s:
            version = s.get(Incident, incident).version
        reports = recompute_deadlines(store, deadline_context(ws), actor="alice", incident_ids=[incident])
        assert reports[incident].recomputed == ["CN-CAC-RPT-8"]
        after = self.summary(store, incident)
        assert after.due_at > before.due_at and after.status == "pending"
        (event,) = events(store, incident, "deadline_recomputed")
        assert event.inputs["old_due_at"] == before.due_at.isoformat()
        assert event.inputs["new_due_at"] == after.due_at.isoformat()
        assert event.inputs["cause"] == "recompute by alice"
        with store.read() as s:
            row = s.get(Incident, incident)
            assert row.version == version + 1 and verify_chain(s, row).ok
        again = recompute_deadlines(store, deadline_context(ws), actor="alice", incident_ids=[incident])
        assert again[incident].recomputed == [] and len(events(store, incident, "deadline_recomputed")) == 1

    def test_cli_recomputes_open_incidents_after_a_policy_change(self, cli):
        """A new policy target in settings moves the open incident's clock; unknown ids change nothing."""
        incident_id = cli.open_incident(discovered_at=discovered(2))
        due = {r["rule"]: r["due_at"] for r in cli.json("deadlines", "list")}
        settings = cli.home / "config" / "settings.toml"
        settings.write_text('[deadlines.policy]\n"POLICY-CLIENT-NOTICE" = "48h"\n', encoding="utf-8")
        before = cli.json("incident", "show", incident_id)
        refused = cli("deadlines", "recompute", incident_id, "INC-1999-0001")
        assert_one_line_error(refused, "no incident 'INC-1999-0001'")
        assert at_rest(cli.json("incident", "show", incident_id)) == at_rest(before)
        out = cli.json("deadlines", "recompute")
        assert out[incident_id]["recomputed"] == ["POLICY-CLIENT-NOTICE"]
        moved = {r["rule"]: r["due_at"] for r in cli.json("deadlines", "list")}
        assert moved["POLICY-CLIENT-NOTICE"] != due["POLICY-CLIENT-NOTICE"]
        assert moved["POLICY-PIPL57-REGULATOR"] == due["POLICY-PIPL57-REGULATOR"]
        assert "no change" in cli("deadlines", "recompute", check=True).stdout
        assert cli("audit", "verify", incident_id).returncode == 0
