"""The audit trail and the workspace log are append-only in the database: SQL cannot rewrite them.

Someone who shares the database login (PostgreSQL) or can write the file (SQLite) may insert, as breach
does, but an UPDATE or DELETE of an event or a workspace-log entry is refused by the database itself.
The one deletion allowed is breach's own purge after retention, which first writes its tombstone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select
from test_retention import RULE, closed_incident

from engine.incidents.audit import verify_chain
from engine.incidents.opening import open_incident
from engine.incidents.tables import Event, Incident
from engine.incidents.tasks import complete_task
from engine.incidents.worklog import WorkspaceLog, append_log
from engine.retention.purge import purge_incident

ZONE = "Asia/Shanghai"


@pytest.fixture
def incident_id(store, builtin_source) -> str:
    """An incident with a few events and one workspace-log entry."""
    inc = open_incident(
        store,
        source=builtin_source,
        title="t",
        actor="alice",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
    )
    complete_task(store, inc.id, "stop_transfer", actor="alice")
    with store.write() as session:
        append_log(session, actor="alice", kind="refused", incident_id=inc.id, detail="no role")
    return inc.id


def refused(store, sql: str, **params: object) -> str:
    """Run raw SQL as any connection would; return the database's refusal, failing if it went through."""
    with pytest.raises(DBAPIError) as caught, store.engine.begin() as conn:
        conn.execute(text(sql), params)
    return str(caught.value.orig)


def counts(store, incident_id: str) -> tuple[int, int]:
    with store.read() as s:
        events = len(list(s.exec(select(Event).where(Event.incident_id == incident_id))))
        return events, len(list(s.exec(select(WorkspaceLog))))


class TestRawSql:
    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE event SET actor = 'mallory' WHERE incident_id = :i AND seq = 2",
            "UPDATE event SET reason = 'nothing happened' WHERE incident_id = :i",
            "DELETE FROM event WHERE incident_id = :i AND seq = 2",
            "DELETE FROM event WHERE incident_id = :i",
        ],
    )
    def test_events_cannot_be_changed_or_deleted(self, store, incident_id, sql):
        """An UPDATE or DELETE of an incident's events is refused, and the trail stays intact."""
        before = counts(store, incident_id)
        assert "event is append-only" in refused(store, sql, i=incident_id)
        assert counts(store, incident_id) == before
        with store.read() as s:
            assert verify_chain(s, s.get(Incident, incident_id)).ok

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE workspace_log SET actor = 'wang.dpo'",
            "UPDATE workspace_log SET kind = 'purged' WHERE incident_id = :i",
            "DELETE FROM workspace_log WHERE incident_id = :i",
        ],
    )
    def test_workspace_log_cannot_be_changed_or_deleted(self, store, incident_id, sql):
        """An UPDATE or DELETE of the workspace log is refused (a fake purge cannot be made of a refusal)."""
        before = counts(store, incident_id)
        assert "workspace_log is append-only" in refused(store, sql, i=incident_id)
        assert counts(store, incident_id) == before

    @pytest.mark.pg
    def test_truncate_is_refused_on_postgresql(self, pg_schema_url, builtin_source):
        """TRUNCATE, which skips row triggers, is refused on its own."""
        from engine.migrations.migrate import upgrade
        from engine.store.db import Store

        store = Store(pg_schema_url)
        try:
            upgrade(store)
            inc = open_incident(
                store, source=builtin_source, title="t", actor="a", zone=ZONE, discovered_at=datetime.now(UTC)
            )
            for table in ("event", "workspace_log"):
                assert f"{table} is append-only" in refused(store, f"TRUNCATE {table} CASCADE")
            assert counts(store, inc.id)[0] == 1
        finally:
            store.dispose()

    def test_another_incidents_tombstone_does_not_free_these_events(self, store, incident_id):
        """A purge tombstone lets only its own incident's events go."""
        with store.write() as session:
            append_log(session, actor="x", kind="purged", incident_id="INC-2000-0001", detail="old")
        found = refused(store, "DELETE FROM event WHERE incident_id = :i", i=incident_id)
        assert "event is append-only" in found


class TestPurge:
    def test_purge_after_retention_still_deletes_the_trail(self, store, builtin_source):
        """breach's own purge writes the tombstone first, so the database lets the events go."""
        incident_id = closed_incident(store, builtin_source)
        later = datetime.now(UTC) + timedelta(days=3 * 366)
        purge_incident(store, incident_id, actor="dpo", reason="retention over", retention=RULE, now=later)
        with store.read() as s:
            assert s.get(Incident, incident_id) is None
            assert not list(s.exec(select(Event).where(Event.incident_id == incident_id)))
            assert s.exec(select(WorkspaceLog).where(WorkspaceLog.kind == "purged")).one()
