"""What the firm states in an incident's notices, free to change until the first notice reaches someone.

``notice_content`` holds the cause, harm, measures and remedies every notice of an incident shares, so
that every recipient reads the same notice. Until a notice has gone out (a delivery sent, recorded, or
possibly made: in doubt), the content can be replaced: the notices rendered from the old content and not
delivered are discarded (files and records) and are rendered again from the new one. Once a notice has
gone out, a change is a correction (:mod:`engine.notices.correction`): a new version of the content and a
correction notice to everyone already notified.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Integer, Table, delete, event, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from engine.documents.registry import DOCUMENT
from engine.errors import NotAllowed
from engine.incidents.audit import append_event, canonical_json
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.notices.contexts import NoticeContent
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "CONTENT",
    "NOTICE_KINDS",
    "NoticeContentRecord",
    "content_body",
    "discard_unsent",
    "frozen",
    "reached_condition",
    "reached_count",
    "set_content",
]

# Every kind of document rendered from the notice content (a person's, a client's, a correction, the
# public announcement).
NOTICE_KINDS = ("customer_notice", "client_notice", "correction_notice", "public_notice")
_UNLINK_KEY = "breach_notice_files_to_remove"


class NoticeContentRecord(SQLModel, table=True):
    """The incident's notice content in force: its version (1, then one more per correction), and
    ``generated_at``, fixed by the first render of that version so a re-render gives the same bytes."""

    __tablename__ = "notice_content"

    incident_id: str = Field(primary_key=True, foreign_key="incident.id", max_length=32)
    content: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    content_sha256: str = Field(max_length=64)
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    set_by: str
    generated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    version: int = Field(default=1, sa_column=Column(Integer(), nullable=False, server_default="1"))


CONTENT: Table = table_of(NoticeContentRecord)


def content_body(content: NoticeContent) -> tuple[dict[str, Any], str]:
    """The content as stored (defaults left out) and its hash."""
    body = json.loads(content.model_dump_json(exclude_defaults=True))
    return body, hashlib.sha256(canonical_json(body).encode()).hexdigest()


def reached_condition() -> Any:
    """The deliveries that reached someone, or may have: sent, recorded, skipped on purpose in a
    drill, handed to the mail server, or in doubt."""
    from engine.notices.delivery import DELIVERY, DONE

    c = DELIVERY.c
    return or_(c.status.in_(DONE), c.status == "sending", c.in_doubt.is_(True), c.handed_off_at.is_not(None))


def reached_count(session: Session, incident_id: str) -> int:
    """How many of the incident's notice deliveries reached someone (or may have)."""
    from engine.notices.delivery import DELIVERY

    return int(
        session.execute(
            select(func.count()).where(DELIVERY.c.incident_id == incident_id, reached_condition())
        ).scalar_one()
    )


def discard_unsent(session: Session, incident_id: str) -> int:
    """Drop the deliveries that reached no one and the notice documents no remaining delivery holds;
    their files go once the transaction commits. Returns how many documents were dropped."""
    from engine.notices.delivery import DELIVERY

    c, d = DELIVERY.c, DOCUMENT.c
    session.execute(delete(DELIVERY).where(c.incident_id == incident_id, ~reached_condition()))
    held = select(c.document_id).where(c.incident_id == incident_id)
    doomed = session.execute(
        select(d.id, d.path).where(d.incident_id == incident_id, d.kind.in_(NOTICE_KINDS), d.id.not_in(held))
    ).all()
    if doomed:
        session.execute(delete(DOCUMENT).where(d.id.in_([row.id for row in doomed])))
        _unlink_after_commit(session, [row.path for row in doomed])
    return len(doomed)


def _unlink_after_commit(session: Session, paths: list[str]) -> None:
    """Remove ``paths`` once the transaction commits (a rolled-back change keeps them)."""
    if _UNLINK_KEY not in session.info:
        session.info[_UNLINK_KEY] = []

        def committed(s: Session) -> None:
            """The records are gone: their files follow."""
            for path in s.info.pop(_UNLINK_KEY, []):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

        def rolled_back(s: Session) -> None:
            """Nothing changed: the files stay."""
            s.info.pop(_UNLINK_KEY, None)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_rollback", rolled_back, once=True)
    session.info[_UNLINK_KEY] += [str(Path(p)) for p in paths]


def set_content(store: Store, incident_id: str, content: NoticeContent, *, actor: str) -> str:
    """Store the incident's notice content and return its hash.

    Undelivered notices rendered from earlier content are discarded (they are rendered again).

    :raises NotAllowed: once a notice reached someone: a change is then a correction.
    """
    body, digest = content_body(content)
    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        reached = reached_count(session, incident_id)
        if reached:
            raise NotAllowed(
                f"{reached} notices of {incident_id} went out with the current content, so it can no "
                f"longer change; issue a correction notice to them: breach notices correct {incident_id} FILE"
            )
        record = session.get(NoticeContentRecord, incident_id)
        discarded = discard_unsent(session, incident_id)
        if record is None:
            session.add(
                NoticeContentRecord(
                    incident_id=incident_id, content=body, content_sha256=digest, set_at=now, set_by=actor
                )
            )
        else:
            record.content, record.content_sha256, record.set_at, record.set_by = body, digest, now, actor
            record.generated_at = None
        inputs: dict[str, Any] = {"sha256": digest}
        if discarded:
            inputs["discarded_documents"] = discarded
        append_event(
            session,
            incident,
            kind="notice_content_set",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            inputs=inputs,
        )
        flush_or_conflict(session, incident_id)
    return digest


def frozen(store: Store, incident_id: str) -> bool:
    """Whether a notice of ``incident_id`` reached someone (the content then changes only by correction)."""
    with store.read() as session:
        return reached_count(session, incident_id) > 0
