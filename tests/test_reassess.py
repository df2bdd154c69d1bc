"""Facts of an incident: given at open or later, audited, re-assessed, and read by guards."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error

from engine.errors import BadInput, GuardFailed
from engine.incidents import flow
from engine.incidents.hooks import Hooks
from engine.incidents.opening import open_incident
from engine.incidents.reassess import assessment_hook, update_facts
from engine.incidents.tables import Incident
from engine.legal.data import builtin_legal
from engine.legal.facts import facts_to_dict, merge_facts
from engine.playbooks.parsing import parse_playbook

ZONE = "Asia/Shanghai"
FACTS = REPO / "tests" / "data" / "facts"


def open_with(store, source, facts=None):
    hooks = Hooks(on_open=[assessment_hook(builtin_legal)])
    return open_incident(
        store,
        source=source,
        title="t",
        actor="alice",
        zone=ZONE,
        hooks=hooks,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
        facts=facts_to_dict(merge_facts({}, facts or {})) if facts else None,
    )


class TestFactsFlow:
    def test_facts_at_open_are_assessed_in_version_one(self, store, builtin_source):
        """Opening with facts stores the assessment at once, in the same first version."""
        inc = open_with(
            store, builtin_source, {"people_affected": 8000, "records": {"property": 8000}, "insider": True}
        )
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.version == 1 and row.assessment["grade"] == "general"
            spc = next(f for f in row.assessment["findings"] if f["rule"] == "CN-SPC-2017-5")
            assert spc["outcome"] == "especially_serious"

    def test_update_is_audited_with_old_and_new_values_and_grade(self, store, builtin_source):
        """A facts change records which keys changed (from → to) and the grade change."""
        inc = open_with(store, builtin_source, {"people_affected": 8000})
        change = update_facts(
            store,
            inc.id,
            {"people_affected": 1_000_000},
            actor="bob",
            legal=builtin_legal(),
            reason="count confirmed",
        )
        assert change.changed == ["people_affected"]
        assert (change.grade_before, change.grade_after) == ("general", "relatively_major")
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.assessment["grade"] == "relatively_major" and "graded_at" in row.anchors
        events = flow_events(store, inc.id)
        assert events[-1].kind == "facts" and events[-1].reason == "count confirmed"
        assert events[-1].inputs["changed"]["people_affected"] == {"from": 8000, "to": 1_000_000}
        assert events[-1].inputs["grade"] == {"from": "general", "to": "relatively_major"}

    def test_no_change_writes_nothing(self, store, builtin_source):
        """Setting facts to what they already are adds no event and keeps the version."""
        inc = open_with(store, builtin_source, {"people_affected": 10})
        change = update_facts(store, inc.id, {"people_affected": 10}, actor="a", legal=builtin_legal())
        assert change.changed == [] and change.version == 1
        assert len(flow_events(store, inc.id)) == 1

    def test_bad_update_changes_nothing(self, store, builtin_source):
        """An unknown key or a negative count is refused and leaves the incident as it was."""
        inc = open_with(store, builtin_source, {"people_affected": 10})
        for bad in ({"peple_affected": 3}, {"records": {"property": -1}}):
            with pytest.raises(BadInput):
                update_facts(store, inc.id, bad, actor="a", legal=builtin_legal())
        with store.read() as s:
            row = s.get(Incident, inc.id)
            assert row.version == 1 and row.facts["people_affected"] == 10

    def test_grade_guard_reads_the_assessment(self, store, builtin_source):
        """A playbook guard grade_at_least blocks until the facts reach the grade."""
        text = builtin_source.text.replace(
            "guards: [required_tasks_done]\n    effects: [{set_anchor: contained_at}]",
            "guards: [{grade_at_least: relatively_major}]\n    effects: [{set_anchor: contained_at}]",
        )
        source = parse_playbook(text, "graded.yaml")
        inc = open_with(store, source, {"people_affected": 999_999})
        with pytest.raises(GuardFailed, match="grade is general, this step needs relatively_major"):
            flow.advance(store, inc.id, "contain", actor="a", zone=ZONE)
        update_facts(store, inc.id, {"people_affected": 1_000_000}, actor="a", legal=builtin_legal())
        assert (
            flow.advance(store, inc.id, "contain", actor="a", zone=ZONE).to_state == "customer_notification"
        )


def flow_events(store, incident_id):
    from sqlmodel import select

    from engine.incidents.tables import Event

    with store.read() as s:
        return list(s.exec(select(Event).where(Event.incident_id == incident_id).order_by(Event.seq)))


class TestAssessCli:
    def test_what_if_json_shape(self, cli):
        """assess --facts FILE --json gives grade, grade_label and findings with the contract's keys."""
        data = cli.json("assess", "--facts", str(FACTS / "demo.yaml"))
        assert data["grade"] == "general" and data["grade_label"] == "一般"
        rules = [f["rule"] for f in data["findings"]]
        assert rules == ["CN-CAC-GRADE", "CN-MIIT-GRADE", "CN-CAC-RPT-4", "CN-SPC-2017-5", "CN-SPC-2019-4"]
        for f in data["findings"]:
            assert {"rule", "outcome", "score", "items", "explain", "basis", "source", "verified"} <= set(f)

    def test_worked_example(self, cli):
        """30 track + 300 health records: 30/50 + 300/500 = 1.2 ≥ 1, serious."""
        data = cli.json("assess", "--set", "records.whereabouts=30", "--set", "records.health=300")
        spc = next(f for f in data["findings"] if f["rule"] == "CN-SPC-2017-5")
        assert spc["outcome"] == "serious" and abs(spc["score"] - 1.2) < 1e-9

    @pytest.mark.parametrize(
        "name, needle",
        [
            ("bad_yaml.yaml", "bad_yaml.yaml"),
            ("list.yaml", "list.yaml"),
            ("unknown_key.yaml", "unknown"),
            ("negative_count.yaml", "≥ 0"),
        ],
    )
    def test_malformed_fact_files(self, cli, name, needle):
        """Malformed what-if files are one clear line, exit 2."""
        assert_one_line_error(cli("assess", "--facts", str(FACTS / name)), needle)

    def test_incident_facts_and_report(self, cli):
        """CLI facts re-assess the incident; the report file is private and says it is not advice."""
        out = cli(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "t",
            "--discovered-at",
            "2026-11-20 09:00",
            "--facts",
            str(FACTS / "demo.yaml"),
            check=True,
        )
        incident_id = out.stdout.strip()
        result = cli("incident", "facts", incident_id, "--set", "people_affected=1000000", check=True)
        assert "general → relatively_major" in result.stdout
        assert cli.json("incident", "show", incident_id)["assessment"]["grade"] == "relatively_major"
        assert_one_line_error(
            cli("incident", "facts", incident_id, "--set", "records.property=1.5"), "records.property"
        )
        report = cli.home / "reports" / "assessment.md"
        report.parent.mkdir()
        cli("assess", incident_id, "--report", str(report), check=True)
        assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
        text = report.read_text(encoding="utf-8")
        assert "不构成法律意见" in text and "CN-SPC-2017-5" in text and "个人信息保护法" in text

    def test_assess_needs_exactly_one_source(self, cli):
        """Neither an id nor facts, or both, is bad input."""
        assert_one_line_error(cli("assess"), "give an incident id")
        shown = json.dumps(cli.json("playbook", "list"))
        assert "cn-agency-firm" in shown


def test_demo_facts_file_matches_demo_scenario():
    """The what-if sample file is the demo scenario (8,000 people's payroll, insider)."""
    import yaml

    data = yaml.safe_load(Path(FACTS / "demo.yaml").read_text(encoding="utf-8"))
    assert data["people_affected"] == 8000 and data["insider"] is True
