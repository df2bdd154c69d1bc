"""Purging an incident once its retention period has passed (config/legal/retention.yaml, PIPL Art
55-56): the rule in force, and the deletion that leaves a tombstone in the workspace log.

It stands alone because it is the one place that deletes an incident's record, and the law decides when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import delete

from engine.errors import BadInput, NotAllowed
from engine.files import load_yaml, read_text
from engine.incidents.repository import get_incident
from engine.incidents.tables import Incident
from engine.incidents.worklog import append_log
from engine.retention.incident_rows import incident_rows, incident_tables
from engine.store.db import Store, table_of, utcnow
from engine.workspace import Workspace

__all__ = ["Retention", "load_retention", "purge_incident"]


@dataclass(frozen=True)
class Retention:
    """The retention rule in force, with its legal basis."""

    rule: str
    article: str
    source: str
    verified: bool
    minimum_years: int

    def keep_until(self, closed_at: datetime) -> date:
        """The first day the incident may be purged."""
        day = closed_at.astimezone(UTC).date()
        try:
            return day.replace(year=day.year + self.minimum_years)
        except ValueError:  # 29 February closes; the period ends on 28 February (Civil Code month rule)
            return day.replace(year=day.year + self.minimum_years, day=28)


def load_retention(workspace: Workspace) -> Retention:
    """Read ``legal/retention.yaml`` (the workspace's copy shadowing the built-in one)."""
    path = workspace.config_file("legal/retention.yaml")
    raw = load_yaml(read_text(path, what="retention data file"), str(path))
    try:
        years = int(raw["minimum_years"])
        if years < 0:
            raise ValueError("minimum_years must not be negative")
        return Retention(
            str(raw["id"]), str(raw["article"]), str(raw["source"]), bool(raw["verified"]), years
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path}: invalid retention data: {exc}") from None


def purge_incident(
    store: Store,
    incident_id: str,
    *,
    actor: str,
    reason: str,
    retention: Retention,
    now: datetime | None = None,
) -> list[Path]:
    """Delete a closed incident whose retention has passed; return the document files removed."""
    if not reason.strip():
        raise BadInput("purging needs --reason")
    now = now or utcnow()
    with store.write() as session:
        incident = get_incident(session, incident_id)
        if incident.closed_at is None:
            raise NotAllowed(f"{incident_id} is not closed; only closed incidents can be purged")
        until = retention.keep_until(incident.closed_at)
        if now.date() < until:
            raise NotAllowed(
                f"{incident_id} must be kept until {until.isoformat()} ({retention.article}: "
                f"{retention.minimum_years} years after closing, {retention.rule})"
            )
        files = [
            Path(r["path"])
            for t in incident_tables()
            if t.name == "document"
            for r in incident_rows(session, t, incident_id)
            if r.get("path")
        ]
        detail = (
            f"closed {incident.closed_at.isoformat()}, {incident.event_count} events, audit head "
            f"{incident.audit_head}; reason: {reason.strip()}"
        )
        # The tombstone first: the database lets an incident's events go only once the append-only
        # workspace log holds its purge (migration 0014).
        append_log(session, actor=actor, kind="purged", incident_id=incident_id, detail=detail)
        for table in incident_tables():
            session.execute(delete(table).where(table.c.incident_id == incident_id))
        session.execute(delete(table_of(Incident)).where(table_of(Incident).c.id == incident_id))
    removed = []
    for path in files:  # after the commit: a crash here leaves files, never rows pointing nowhere
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
