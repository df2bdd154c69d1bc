"""The registry of generated documents.

Every generated file is recorded in ``document`` with its hash and the hash of the templates that
made it, under a unique key (incident, kind, format, subject), so a document is recorded at most once
however often a run is repeated.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, Integer, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from engine.documents.render import Rendered
from engine.store.db import UTCDateTime, changed_rows, table_of

__all__ = ["DOCUMENT", "Document", "document_values", "insert_documents", "insert_ignore", "record_document"]

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


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
    # The notice content version a notice was rendered from (a correction notice: its correction's).
    version: int = Field(default=1, sa_column=Column(Integer(), nullable=False, server_default="1"))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str


DOCUMENT: Table = table_of(Document)


def insert_ignore(session: Session, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table).on_conflict_do_nothing()


def insert_documents(session: Session, rows: list[dict[str, Any]]) -> None:
    """Record ``rows`` (from :func:`document_values`) in the session's transaction, skipping each whose
    (incident, kind, format, subject) is recorded already.

    One executemany on the driver, with each value converted by its column's type as SQLAlchemy would:
    its per-row parameter handling cost as much as the database's own insert, for thousands of rows.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert_ignore(session, DOCUMENT).compile(dialect=dialect, column_keys=keys)
    convert = {key: DOCUMENT.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys}
    if compiled.positional:
        order = compiled.positiontup or []
        params: list[Any] = [tuple(_bind(convert[k], row[k]) for k in order) for row in rows]
    else:
        params = [{k: _bind(convert[k], row[k]) for k in keys} for row in rows]
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(str(compiled), params)
    finally:
        cursor.close()


def _bind(convert: Any, value: Any) -> Any:
    return value if convert is None else convert(value)


def document_values(
    *,
    incident_id: str,
    rendered: Rendered,
    path: Path | str,
    actor: str,
    at: datetime,
    subject: str = "",
    person_id: int | None = None,
    person_ref: str | None = None,
    version: int = 1,
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
        "version": version,
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
    return bool(changed_rows(session.execute(insert_ignore(session, DOCUMENT).values(**values))))
