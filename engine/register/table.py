"""The register of documents issued for an incident (``formal_issue``), for formal documents and notices.

Each row is one document issued: the per-incident counter, the number (文号) and date it was issued
under, shared by its formats and kept when it is produced again, and what a regulator report stated,
so the next supplement can say what changed since. It sits below both :mod:`engine.formal` and
:mod:`engine.notices` (client letters are numbered from the same register), so neither needs the other
for it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Table, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from engine.store.db import UTCDateTime, table_of

__all__ = ["ISSUE", "FormalIssue", "next_issue_seq"]

_JSON = JSON().with_variant(JSONB(), "postgresql")


class FormalIssue(SQLModel, table=True):
    """A formal document issued for an incident: its number and date, whatever formats it has."""

    __tablename__ = "formal_issue"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "subject"),
        UniqueConstraint("incident_id", "seq"),
        # A number is the register's (prefix and year) and its serial: unique across kinds and incidents.
        UniqueConstraint("number_register", "serial"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    kind: str = Field(max_length=48)
    subject: str = Field(default="", max_length=96)
    seq: int  # the per-incident counter behind the number
    number: str = Field(max_length=200)
    number_register: str | None = Field(default=None, max_length=200)  # 示例财税〔2026〕; null: older rows
    serial: int | None = None
    issued_on: date = Field(sa_column=Column(Date(), nullable=False))
    # What a regulator report stated, item by item (null: to follow), for the next supplement's changes.
    stated: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str


ISSUE: Table = table_of(FormalIssue)


def next_issue_seq(session: Session, incident_id: str) -> int:
    """The next number of the incident's document counter (the caller holds the incident's lock)."""
    last = session.execute(select(func.max(ISSUE.c.seq)).where(ISSUE.c.incident_id == incident_id)).scalar()
    return int(last or 0) + 1
