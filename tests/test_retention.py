"""Retention and evidence: purge refuses young incidents; export bundles verify and detect tampering."""

from __future__ import annotations

import json
import stat
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from conftest import REPO
from sqlalchemy import text
from sqlmodel import select

from engine.errors import NotAllowed
from engine.incidents import flow
from engine.incidents.opening import open_incident
from engine.incidents.tables import Event, Incident
from engine.incidents.tasks import complete_task
from engine.incidents.worklog import WorkspaceLog, verify_log
from engine.retention.export import export_bundle
from engine.retention.purge import Retention, purge_incident
from engine.retention.verify import verify_bundle

ZONE = "Asia/Shanghai"
RULE = Retention("CN-PIPL-55", "个人信息保护法第五十五条、第五十六条", "PIPL", True, 3)
PHASES = [
    (
        ["stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"],
        "contain",
    ),
    (["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"], "notify"),
    (["submit_initial_report", "cooperate_with_authorities"], "report"),
    (["determine_responsibility", "decide_sanctions", "issue_internal_bulletin"], "hold_accountable"),
    ([], "handling_ended"),
    (
        [
            "management_rules",
            "technical_controls",
            "security_training",
            "client_confidentiality",
            "external_audit",
            "lessons_learned",
            "submit_summary_report",
        ],
        "close",
    ),
]


def closed_incident(store, source):
    inc = open_incident(
        store,
        source=source,
        title="t",
        actor="a",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
    )
    for tasks, trigger in PHASES:
        for task in tasks:
            complete_task(store, inc.id, task, actor="a")
        flow.advance(store, inc.id, trigger, actor="a", zone=ZONE)
    return inc.id


class TestPurge:
    def test_open_and_young_incidents_are_kept(self, store, builtin_source):
        """An open incident, or one closed less than three years ago, cannot be purged."""
        young = closed_incident(store, builtin_source)
        opened = open_incident(
            store,
            source=builtin_source,
            title="t",
            actor="a",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        ).id
        with pytest.raises(NotAllowed, match="not closed"):
            purge_incident(store, opened, actor="a", reason="old", retention=RULE)
        with pytest.raises(NotAllowed, match="must be kept until") as err:
            purge_incident(store, young, actor="a", reason="old", retention=RULE)
        assert "3 years" in str(err.value) and "CN-PIPL-55" in str(err.value)
        with store.read() as s:
            assert s.get(Incident, young) is not None

    def test_purge_after_three_years_leaves_a_tombstone(self, store, builtin_source):
        """Three years and a day after closing, the incident goes and the workspace log keeps a tombstone."""
        incident_id = closed_incident(store, builtin_source)
        with store.read() as s:
            head = s.get(Incident, incident_id).audit_head
        later = datetime.now(UTC) + timedelta(days=3 * 366)
        purge_incident(store, incident_id, actor="dpo", reason="retention over", retention=RULE, now=later)
        with store.read() as s:
            assert s.get(Incident, incident_id) is None
            assert not list(s.exec(select(Event).where(Event.incident_id == incident_id)))
            tomb = s.exec(select(WorkspaceLog).where(WorkspaceLog.kind == "purged")).one()
            assert tomb.incident_id == incident_id and head in tomb.detail and verify_log(s) is None

    def test_purge_clears_recipients_too(self, store, builtin_source):
        """An incident with imported recipients is purged whole: people rows go with it."""
        from engine.notices.people import import_people

        opened = open_incident(
            store,
            source=builtin_source,
            title="t",
            actor="a",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        import_people(
            store,
            opened.id,
            REPO / "tests" / "data" / "people" / "agency.csv",
            actor="a",
            locales=("zh-CN", "en"),
            default_locale="zh-CN",
        )
        for tasks, trigger in PHASES:
            for task in tasks:
                complete_task(store, opened.id, task, actor="a")
            flow.advance(store, opened.id, trigger, actor="a", zone=ZONE)
        later = datetime.now(UTC) + timedelta(days=3 * 366)
        purge_incident(store, opened.id, actor="dpo", reason="retention over", retention=RULE, now=later)
        with store.read() as s:
            assert s.get(Incident, opened.id) is None
            assert s.execute(text("SELECT COUNT(*) FROM person")).scalar() == 0


class TestBundle:
    def test_export_verifies_and_is_private(self, store, builtin_source, tmp_path):
        """The bundle is 0600, verifies, and its manifest hash is recorded as an audit event."""
        incident_id = closed_incident(store, builtin_source)
        path, digest = export_bundle(store, incident_id, tmp_path / "b.zip", actor="dpo")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        report = verify_bundle(path)
        assert report.ok and report.incident_id == incident_id and report.manifest_sha256 == digest
        with store.read() as s:
            last = s.exec(
                select(Event).where(Event.incident_id == incident_id).order_by(Event.seq.desc())
            ).first()
            assert last.kind == "exported" and last.inputs["manifest_sha256"] == digest

    def test_tampered_bundle_is_detected(self, store, builtin_source, tmp_path):
        """Changing an event inside the bundle (even with the manifest rewritten) is caught by the chain."""
        incident_id = closed_incident(store, builtin_source)
        path, _ = export_bundle(store, incident_id, tmp_path / "b.zip", actor="dpo")
        with zipfile.ZipFile(path) as z:
            files = {n: z.read(n) for n in z.namelist()}
        events = json.loads(files["event.json"])
        events[2]["actor"] = "mallory"
        files["event.json"] = json.dumps(events).encode()
        forged = tmp_path / "forged.zip"
        with zipfile.ZipFile(forged, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        report = verify_bundle(forged)
        assert not report.ok and any("event.json" in p for p in report.problems)
        assert any("audit trail: event #3" in p for p in report.problems)


def test_cli_export_verify_and_purge_refusal(cli):
    """export writes a bundle that audit verify --bundle accepts; purge of a young incident exits 2."""
    incident_id = cli.open_incident(discovered_at="2026-11-20 09:00")
    out = cli("incident", "export", incident_id, check=True).stdout.splitlines()[0]
    assert out.startswith(str(cli.home / "out"))
    assert cli("audit", "verify", "--bundle", out).returncode == 0
    with zipfile.ZipFile(out, "a") as z:
        z.writestr("extra.txt", "smuggled")
    assert cli("audit", "verify", "--bundle", out).returncode == 1
    result = cli("incident", "purge", incident_id, "--reason", "test")
    assert result.returncode == 2 and "not closed" in result.stderr
    assert (REPO / "config" / "legal" / "retention.yaml").is_file()
