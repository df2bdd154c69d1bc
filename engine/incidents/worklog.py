"""The workspace log: what happened outside any one incident's trail, hash-chained like it.

Two kinds of entry: ``refused`` (an attempt refused for want of a role; the incident stays untouched, yet
the attempt is kept) and ``purged`` (an incident deleted after its retention period; the tombstone keeps
its id, when it closed, how many events it had and its last audit hash).

The log has a head like an incident's trail: ``workspace_log_head`` keeps how many entries there are and
the last one's hash, so deleting the newest entries is caught as a deleted event of an incident is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, text
from sqlmodel import Field, Session, SQLModel, select

from engine.incidents.audit import GENESIS, canonical_json
from engine.store.db import UTCDateTime, utcnow

__all__ = ["LogHead", "WorkspaceLog", "WorkspaceLogHead", "append_log", "log_head", "verify_log"]


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


class WorkspaceLogHead(SQLModel, table=True):
    """How many entries the workspace log has and the last one's hash (a single row, ``id`` 1)."""

    __tablename__ = "workspace_log_head"

    id: int = Field(default=1, primary_key=True)
    entries: int = 0
    head: str = Field(default="", max_length=64)


@dataclass(frozen=True)
class LogHead:
    """The workspace log's length and last hash, as recorded or as found."""

    entries: int
    head: str


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
    marker = session.get(WorkspaceLogHead, 1)
    if marker is None:
        marker = WorkspaceLogHead(id=1, entries=0, head="")
        session.add(marker)
    marker.entries += 1
    marker.head = row.hash
    return row


def log_head(session: Session) -> LogHead:
    """The head the workspace log records for itself."""
    marker = session.get(WorkspaceLogHead, 1)
    return LogHead(marker.entries, marker.head) if marker is not None else LogHead(0, "")


def verify_log(session: Session) -> str | None:
    """None when the workspace log is intact, else what is wrong with the first bad entry."""
    prev = GENESIS
    count = 0
    for row in session.exec(select(WorkspaceLog).order_by(WorkspaceLog.id)):  # type: ignore[arg-type]
        if row.prev_hash != prev or _digest(row) != row.hash:
            return f"workspace log entry {row.id} ({row.kind}) was changed, removed or reordered"
        prev = row.hash
        count += 1
    recorded = log_head(session)
    if recorded.entries != count or (recorded.head or GENESIS) != prev:
        return (
            f"the workspace log ends at entry {count} but records {recorded.entries} entries: "
            "the last entries were deleted or replaced"
        )
    return None
