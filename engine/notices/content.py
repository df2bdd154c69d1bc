"""What the firm states in an incident's notices; the first render freezes it.

``notice_content`` holds the cause, harm, measures and remedies every notice of an incident shares, so
that every recipient reads the same notice.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Table, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from engine.documents.registry import DOCUMENT
from engine.errors import NotAllowed
from engine.incidents.audit import append_event, canonical_json
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.notices.contexts import NoticeContent
from engine.store.db import Store, UTCDateTime, utcnow

__all__ = ["CONTENT", "NOTICE_KINDS", "NoticeContentRecord", "frozen", "set_content"]

NOTICE_KINDS = ("customer_notice", "client_notice")


class NoticeContentRecord(SQLModel, table=True):
    """The incident's notice content; ``generated_at`` is set by the first render, which freezes it."""

    __tablename__ = "notice_content"

    incident_id: str = Field(primary_key=True, foreign_key="incident.id", max_length=32)
    content: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    content_sha256: str = Field(max_length=64)
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    set_by: str
    generated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


CONTENT: Table = NoticeContentRecord.__table__  # type: ignore[attr-defined]


def set_content(store: Store, incident_id: str, content: NoticeContent, *, actor: str) -> str:
    """Store the incident's notice content (refused once a notice was rendered); return its hash."""
    body = json.loads(content.model_dump_json(exclude_defaults=True))
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        record = session.get(NoticeContentRecord, incident_id)
        rendered = session.execute(
            select(func.count())
            .select_from(DOCUMENT)
            .where(DOCUMENT.c.incident_id == incident_id, DOCUMENT.c.kind.in_(NOTICE_KINDS))
        ).scalar_one()
        if rendered:
            raise NotAllowed(
                f"{rendered} notices of {incident_id} were rendered from the current content; it can no "
                "longer change, so that every recipient reads the same notice (a correction is a new notice)"
            )
        if record is None:
            session.add(
                NoticeContentRecord(
                    incident_id=incident_id, content=body, content_sha256=digest, set_at=now, set_by=actor
                )
            )
        else:  # a render that recorded nothing (it failed) does not bind the content
            record.content, record.content_sha256, record.set_at, record.set_by = body, digest, now, actor
            record.generated_at = None
        append_event(
            session,
            incident,
            kind="notice_content_set",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            inputs={"sha256": digest},
        )
        flush_or_conflict(session, incident_id)
    return digest


def frozen(store: Store, incident_id: str) -> bool:
    """Whether the notices of ``incident_id`` started (the content can no longer change)."""
    with store.read() as session:
        found = session.execute(select(CONTENT.c.generated_at).where(CONTENT.c.incident_id == incident_id))
        return found.scalar_one_or_none() is not None
