"""The audit trail is tamper-evident: edits, deletions and reordering done directly in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import lift_append_only, restore_append_only
from sqlalchemy import text

from engine.incidents.audit import verify_chain
from engine.incidents.opening import open_incident
from engine.incidents.tables import Incident
from engine.incidents.tasks import complete_task

ZONE = "Asia/Shanghai"


@pytest.fixture
def incident_id(store, builtin_source):
    inc = open_incident(
        store,
        source=builtin_source,
        title="t",
        actor="alice",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
    )
    for key in ["stop_transfer", "preserve_evidence", "establish_scope"]:
        complete_task(store, inc.id, key, actor="alice")
    return inc.id  # five events: opened + three tasks... plus nothing else


def check(store, incident_id):
    with store.read() as s:
        return verify_chain(s, s.get(Incident, incident_id))


def tamper(store, sql, **params):
    """Run SQL as the database's owner, who can lift the append-only triggers."""
    with store.engine.begin() as conn:
        lift_append_only(conn)
        conn.execute(text(sql), params)
        restore_append_only(conn)


class TestChain:
    def test_intact_chain_verifies(self, store, incident_id):
        """An untouched trail verifies with every event counted."""
        report = check(store, incident_id)
        assert report.ok and report.events == 4

    def test_edited_event_is_named(self, store, incident_id):
        """Changing an event's actor is detected at that event."""
        tamper(store, "UPDATE event SET actor = 'mallory' WHERE incident_id = :i AND seq = 3", i=incident_id)
        report = check(store, incident_id)
        assert not report.ok and report.first_bad_seq == 3 and "altered" in report.problem

    def test_edited_inputs_are_detected(self, store, incident_id):
        """Changing what a step recorded is detected."""
        tamper(
            store,
            "UPDATE event SET reason = 'nothing happened' WHERE incident_id = :i AND seq = 2",
            i=incident_id,
        )
        assert check(store, incident_id).first_bad_seq == 2

    def test_deleted_middle_event(self, store, incident_id):
        """Deleting an event in the middle leaves a gap that is named."""
        tamper(store, "DELETE FROM event WHERE incident_id = :i AND seq = 2", i=incident_id)
        report = check(store, incident_id)
        assert not report.ok and report.first_bad_seq == 2

    def test_deleted_last_event(self, store, incident_id):
        """Deleting the newest event is detected through the incident's recorded head."""
        tamper(store, "DELETE FROM event WHERE incident_id = :i AND seq = 4", i=incident_id)
        report = check(store, incident_id)
        assert not report.ok and "last events were deleted" in report.problem

    def test_reordered_events(self, store, incident_id):
        """Swapping the order of two events is detected."""
        tamper(store, "UPDATE event SET seq = -1 WHERE incident_id = :i AND seq = 2", i=incident_id)
        tamper(store, "UPDATE event SET seq = 2 WHERE incident_id = :i AND seq = 3", i=incident_id)
        tamper(store, "UPDATE event SET seq = 3 WHERE incident_id = :i AND seq = -1", i=incident_id)
        report = check(store, incident_id)
        assert not report.ok and report.first_bad_seq == 2

    def test_rehashed_forgery_still_breaks_the_chain(self, store, incident_id):
        """Copying another event's hash onto an edited row does not help: the successor no longer fits."""
        tamper(
            store,
            "UPDATE event SET hash = (SELECT hash FROM event e2 WHERE e2.incident_id = :i "
            "AND e2.seq = 4) WHERE incident_id = :i AND seq = 3",
            i=incident_id,
        )
        assert check(store, incident_id).first_bad_seq in (3, 4)
