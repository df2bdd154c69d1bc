"""``--at`` on facts changes and on filed reports: the real time, checked as every entered step time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import assert_one_line_error
from sqlalchemy import select

from engine.errors import BadInput
from engine.incidents.opening import open_incident
from engine.incidents.reassess import update_facts
from engine.incidents.repository import get_incident
from engine.incidents.tables import Event
from engine.legal.data import builtin_legal

ZONE = "Asia/Shanghai"


class TestFactsAt:
    @pytest.fixture
    def incident(self, store, builtin_source):
        return open_incident(
            store,
            source=builtin_source,
            title="t",
            actor="alice",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=30),
        ).id

    def test_entered_time_dates_the_grade_and_the_event(self, store, incident):
        """Facts learned 20 hours ago: the grade is reached then (clocks from grading start there) and
        the event keeps the entered time beside its recording time."""
        learned = (datetime.now(UTC) - timedelta(hours=20)).replace(microsecond=0)
        update_facts(
            store,
            incident,
            {"people_affected": 200_000},
            actor="alice",
            legal=builtin_legal(),
            occurred_at=learned,
            zone=ZONE,
        )
        with store.read() as s:
            row = get_incident(s, incident)
            assert datetime.fromisoformat(row.anchors["graded_at"]) == learned
            event = s.exec(select(Event).where(Event.incident_id == incident, Event.kind == "facts")).one()[0]
            assert event.occurred_at == learned and event.at > learned

    @pytest.mark.parametrize(
        ("hours_back", "reason", "message"),
        [
            (-1, None, "is in the future"),
            (31, "found later", "before the incident was discovered"),
            (26, None, "more than 24 hours before now: give --reason"),
        ],
    )
    def test_impossible_times_change_nothing(self, store, incident, hours_back, reason, message):
        """A time in the future, before discovery, or over a day back without a reason is refused and
        nothing is written."""
        with store.read() as s:
            before = get_incident(s, incident).version
        with pytest.raises(BadInput, match=message):
            update_facts(
                store,
                incident,
                {"people_affected": 5},
                actor="alice",
                legal=builtin_legal(),
                occurred_at=datetime.now(UTC) - timedelta(hours=hours_back),
                reason=reason,
                zone=ZONE,
            )
        with store.read() as s:
            row = get_incident(s, incident)
            assert row.version == before and not (row.facts or {}).get("people_affected")


class TestCli:
    def test_facts_and_filed_refuse_impossible_times(self, cli):
        """incident facts --at and incident filed --at: one line, exit 2, nothing changed; a time over a
        day back is taken with --reason, which the audit trail keeps."""
        discovered = datetime.now(UTC) - timedelta(hours=50)
        incident = cli.open_incident(discovered_at=discovered.isoformat())
        version = cli.json("incident", "show", incident)["version"]
        future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        early = (discovered - timedelta(hours=1)).isoformat()
        old = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
        facts = ("incident", "facts", incident, "--set", "people_affected=12")
        filed = ("incident", "filed", incident, "EU-GDPR-33", "notification")
        for command in (facts, filed):
            assert_one_line_error(cli(*command, "--at", future), "in the future")
            assert_one_line_error(cli(*command, "--at", early), "before the incident was discovered")
            assert_one_line_error(cli(*command, "--at", old), "give --reason")
            assert_one_line_error(cli(*command, "--at", "noon"), "malformed time")
        assert_one_line_error(cli("incident", "facts", incident, "--at", old), "give them with --set")
        assert cli.json("incident", "show", incident)["version"] == version

        cli(*facts, "--at", old, "--reason", "counted from the export log", check=True)
        cli(*filed, "--at", old, "--reason", "entered after the DPA confirmed receipt", check=True)
        events = cli.json("incident", "show", incident)["events"]
        assert {
            "counted from the export log",
            "filed EU-GDPR-33:notification: entered after the DPA confirmed receipt",
        } <= {e.get("reason") for e in events}
        assert cli("audit", "verify", incident).returncode == 0
