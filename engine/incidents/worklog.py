"""The workspace log: what happened outside any one incident's trail, hash-chained like it.

Two kinds of entry: ``refused`` (an attempt refused for want of a role; the incident stays untouched, yet
the attempt is kept) and ``purged`` (an incident deleted after its retention period; the tombstone keeps
its id, when it closed, how many events it had and its last audit hash).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Column, text
from sqlmodel import Field, Session, SQLModel, select

from engine.incidents.audit import GENESIS, canonical_json
from engine.store.db import UTCDateTime, utcnow

__all__ = ["WorkspaceLog", "append_log", "verify_log"]


class WorkspaceLog(SQLModel, table=True):
    """One entry of the workspace log."""

    __tablename__ = "workspace_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str
    kind: str = Field(max_length=16)
    incident_id: str = Field(index=True, max_length=32)
    detail: str
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def _digest(row: WorkspaceLog) -> str:
    payload = canonical_json(
        {
            "at": row.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": row.actor,
            "kind": row.kind,
            "incident": row.incident_id,
            "detail": row.detail,
            "prev": row.prev_hash,
        }
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append_log(session: Session, *, actor: str, kind: str, incident_id: str, detail: str) -> WorkspaceLog:
    """Append an entry chained to the previous one, in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # Two entries at once must not both chain to the same predecessor (SQLite's BEGIN IMMEDIATE
        # already serialises writers).
        session.execute(text("LOCK TABLE workspace_log IN EXCLUSIVE MODE"))
    last = session.exec(select(WorkspaceLog).order_by(WorkspaceLog.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    row = WorkspaceLog(
        at=utcnow(),
        actor=actor,
        kind=kind,
        incident_id=incident_id,
        detail=detail,
        prev_hash=last.hash if last else GENESIS,
        hash="",
    )
    row.hash = _digest(row)
    session.add(row)
    return row


def verify_log(session: Session) -> str | None:
    """None when the workspace log is intact, else what is wrong with the first bad entry."""
    prev = GENESIS
    for row in session.exec(select(WorkspaceLog).order_by(WorkspaceLog.id)):  # type: ignore[arg-type]
        if row.prev_hash != prev or _digest(row) != row.hash:
            return f"workspace log entry {row.id} ({row.kind}) was changed, removed or reordered"
        prev = row.hash
    return None
