"""The registry of generated documents, and the notice content of an incident that documents share.

Every generated file is recorded in ``document`` with its hash and the hash of the templates that
made it, under a unique key (incident, kind, format, subject), so a document is recorded at most once
however often a run is repeated. ``notice_content`` holds what the firm states in the notices of an
incident; the first render freezes it, so that every recipient reads the same notice.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from engine.audit import append_event, canonical_json
from engine.contexts import NoticeContent
from engine.documents import Rendered
from engine.errors import NotAllowed
from engine.flow import _load, flush_or_conflict
from engine.store import Store, UTCDateTime, utcnow

__all__ = [
    "CONTENT",
    "DOCUMENT",
    "Document",
    "NoticeContentRecord",
    "document_values",
    "frozen",
    "insert_ignore",
    "record_document",
    "set_content",
]

NOTICE_KINDS = ("customer_notice", "client_notice")
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


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


class Document(SQLModel, table=True):
    """A generated document, recorded with its hash and the hash of the templates that made it.

    ``subject`` tells documents of one kind and format apart: the person's customer id for a notice,
    a supplement's number or an employee for the formal documents, empty for one-per-incident ones.
    """

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "fmt", "subject"),
        Index("ix_document_person", "person_id", "kind", "fmt"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    kind: str = Field(max_length=48)
    fmt: str = Field(max_length=8)
    subject: str = Field(default="", max_length=96)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    person_ref: str | None = Field(default=None, max_length=64)
    path: str
    sha256: str = Field(max_length=64)
    template: str
    template_sha256: str = Field(max_length=64)
    message_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str


DOCUMENT: Table = Document.__table__  # type: ignore[attr-defined]
CONTENT: Table = NoticeContentRecord.__table__  # type: ignore[attr-defined]


def insert_ignore(session: Session, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table).on_conflict_do_nothing()


def document_values(
    *,
    incident_id: str,
    rendered: Rendered,
    path: Path,
    actor: str,
    at: datetime,
    subject: str = "",
    person_id: int | None = None,
    person_ref: str | None = None,
) -> dict[str, Any]:
    """The ``document`` row of a written document (an email's Message-ID read from its header)."""
    found = _MESSAGE_ID.search(rendered.content.split(b"\r\n\r\n", 1)[0]) if rendered.fmt == "eml" else None
    return {
        "incident_id": incident_id,
        "kind": rendered.kind,
        "fmt": rendered.fmt,
        "subject": subject,
        "person_id": person_id,
        "person_ref": person_ref,
        "path": str(path),
        "sha256": rendered.sha256,
        "template": rendered.template,
        "template_sha256": rendered.template_sha256,
        "message_id": found.group(1).decode() if found else None,
        "created_at": at,
        "created_by": actor,
    }


def record_document(
    session: Session,
    *,
    incident_id: str,
    rendered: Rendered,
    path: Path,
    actor: str,
    at: datetime,
    subject: str = "",
    person_id: int | None = None,
    person_ref: str | None = None,
) -> bool:
    """Record a written document in the caller's transaction; False if (kind, format, subject) exists.

    For the formal documents too: write the file with ``write_private``, then record it here.
    """
    values = document_values(
        incident_id=incident_id,
        rendered=rendered,
        path=path,
        actor=actor,
        at=at,
        subject=subject,
        person_id=person_id,
        person_ref=person_ref,
    )
    return bool(session.execute(insert_ignore(session, DOCUMENT).values(**values)).rowcount)


def set_content(store: Store, incident_id: str, content: NoticeContent, *, actor: str) -> str:
    """Store the incident's notice content (refused once a notice was rendered); return its hash."""
    body = json.loads(content.model_dump_json(exclude_defaults=True))
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = _load(session, incident_id)
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
