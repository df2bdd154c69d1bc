"""Correcting notices that already went out: a new version of the content, and a correction notice
(更正通知) to everyone already notified, quoting what changed.

Once a notice has reached someone, its content cannot silently change: that person holds the old text.
``breach notices correct ID FILE`` therefore stores the new content as the next version (every version is
kept in ``notice_revision``), lists in ``notice_correction`` everyone notified so far through their own
channel (email, SMS, post), and discards the notices that reached no one yet, so they are rendered again
from the corrected content. ``breach notices render`` then renders one correction notice per listed
person, ``breach notices send`` mails them and ``breach notices record`` records the others; each has its
own delivery, under the version's number. A correction email answers the notice email it corrects
(``In-Reply-To`` and ``References`` name its Message-ID), so the reader's mail program shows the two
together. People reached only by public announcement read the corrected announcement (version 2 onward,
with the same list of changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Integer, Table, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from engine.documents.registry import DOCUMENT
from engine.errors import BadInput, NotAllowed, NotFound
from engine.incidents.audit import append_event
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.notices.content import (
    NoticeContentRecord,
    content_body,
    discard_unsent,
    reached_condition,
    reached_count,
)
from engine.notices.contexts import NoticeContent, NoticeContexts, localize
from engine.notices.fields import CONTENT_FIELDS, field_label, field_value, missing_fields
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "CORRECTION",
    "REVISION",
    "Correction",
    "NoticeCorrection",
    "NoticeRevision",
    "changed_fields",
    "correct_content",
    "correction_changes",
    "correction_context",
    "original_message_ids",
]

_JSON = JSON().with_variant(JSONB(), "postgresql")
_TEXT_LIMIT = 2000  # a quoted value longer than this is cut in the notice (the full text is in the record)


class NoticeRevision(SQLModel, table=True):
    """One version of an incident's notice content, kept for good: what each correction changed."""

    __tablename__ = "notice_revision"

    incident_id: str = Field(primary_key=True, foreign_key="incident.id", max_length=32)
    version: int = Field(primary_key=True)
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON, nullable=False))
    content_sha256: str = Field(max_length=64)
    changed: list[str] = Field(default_factory=list, sa_column=Column(_JSON, nullable=False))
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    set_by: str


class NoticeCorrection(SQLModel, table=True):
    """A person or client company owed the correction notice of a version (notified before it)."""

    __tablename__ = "notice_correction"

    incident_id: str = Field(primary_key=True, foreign_key="incident.id", max_length=32)
    version: int = Field(sa_column=Column(Integer(), primary_key=True))
    person_id: int = Field(primary_key=True, foreign_key="person.id")


REVISION: Table = table_of(NoticeRevision)
CORRECTION: Table = table_of(NoticeCorrection)


@dataclass(frozen=True)
class Correction:
    """What ``breach notices correct`` did."""

    incident_id: str
    version: int
    changed: list[str]
    recipients: int
    discarded: int
    sha256: str


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The content fields whose value differs between two stored contents, in the documented order."""
    return [f.path for f in CONTENT_FIELDS if field_value(before, f.path) != field_value(after, f.path)]


def _notified(session: Session, incident_id: str) -> list[int]:
    """The people and companies a notice (or correction) reached through their own channel."""
    from engine.notices.delivery import DELIVERY
    from engine.notices.people import PERSON

    c, p = DELIVERY.c, PERSON.c
    rows = session.execute(
        select(c.person_id)
        .join(PERSON, p.id == c.person_id)
        .where(c.incident_id == incident_id, c.channel != "public", reached_condition())
        .distinct()
        .order_by(c.person_id)
    )
    return [int(r[0]) for r in rows]


def correct_content(
    store: Store, incident_id: str, content: NoticeContent, *, actor: str, locales: tuple[str, ...]
) -> Correction:
    """Make ``content`` the next version and owe a correction notice to everyone notified so far.

    :raises NotAllowed: nothing went out yet (then the content simply changes: ``notices content``).
    :raises BadInput: the new content changes nothing, or lacks a field every notice needs.
    """
    from engine.notices.people import PERSON

    body, digest = content_body(content)
    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        record = session.get(NoticeContentRecord, incident_id)
        if record is None or not reached_count(session, incident_id):
            raise NotAllowed(
                f"no notice of {incident_id} went out yet: change the content with "
                f"breach notices content {incident_id} FILE (nothing needs correcting)"
            )
        if incident.closed_at is not None:
            raise NotAllowed(f"{incident_id} is closed; its notices can no longer be corrected")
        changed = changed_fields(record.content, body)
        if not changed:
            raise BadInput(f"the file states the same as version {record.version}: nothing to correct")
        used = {
            str(loc)
            for (loc,) in session.execute(
                select(PERSON.c.locale).where(PERSON.c.incident_id == incident_id).distinct()
            )
        }
        missing = missing_fields(body, None, used or locales)
        if missing:
            raise BadInput(f"the corrected content still lacks {', '.join(missing)}")
        if not session.execute(
            select(REVISION.c.version).where(REVISION.c.incident_id == incident_id).limit(1)
        ).first():
            session.execute(
                insert(REVISION).values(
                    incident_id=incident_id,
                    version=record.version,
                    content=record.content,
                    content_sha256=record.content_sha256,
                    changed=[],
                    set_at=record.set_at,
                    set_by=record.set_by,
                )
            )
        version = record.version + 1
        session.execute(
            insert(REVISION).values(
                incident_id=incident_id,
                version=version,
                content=body,
                content_sha256=digest,
                changed=changed,
                set_at=now,
                set_by=actor,
            )
        )
        people = _notified(session, incident_id)
        if people:
            session.execute(
                insert(CORRECTION),
                [{"incident_id": incident_id, "version": version, "person_id": pid} for pid in people],
            )
        discarded = discard_unsent(session, incident_id)
        record.content, record.content_sha256, record.version = body, digest, version
        record.set_at, record.set_by, record.generated_at = now, actor, None
        append_event(
            session,
            incident,
            kind="notice_corrected",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            inputs={
                "version": version,
                "sha256": digest,
                "changed": changed,
                "recipients": len(people),
                "discarded_documents": discarded,
            },
        )
        flush_or_conflict(session, incident_id)
    return Correction(incident_id, version, changed, len(people), discarded, digest)


def _shown(value: Any, locale: str) -> str | None:
    """A stored value as a reader sees it quoted: lists joined, per-locale texts in ``locale``."""
    value = localize(value, locale)
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        text = ("；" if locale.startswith("zh") else "; ").join(str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def correction_changes(session: Session, incident_id: str, version: int, locale: str) -> list[dict[str, Any]]:
    """What version ``version`` changed, for a reader in ``locale``: each field's label, before and now.

    :raises NotFound: the version is not recorded.
    """
    rows = {
        int(r.version): r
        for r in session.execute(
            select(REVISION).where(
                REVISION.c.incident_id == incident_id, REVISION.c.version.in_((version - 1, version))
            )
        )
    }
    if version not in rows or version - 1 not in rows:
        raise NotFound(f"{incident_id} has no correction version {version}")
    before, now = rows[version - 1].content, rows[version].content
    return [
        {
            "item": field_label(path, locale),
            "before": _shown(field_value(before, path), locale),
            "now": _shown(field_value(now, path), locale),
        }
        for path in rows[version].changed
    ]


def original_message_ids(session: Session, incident_id: str, person_ids: list[int]) -> dict[int, str]:
    """The Message-ID of the notice email each of ``person_ids`` was sent (a person's or a company's),
    which their correction email answers; people notified otherwise are left out."""
    d = DOCUMENT.c
    rows = session.execute(
        select(d.person_id, d.message_id).where(
            d.incident_id == incident_id,
            d.kind.in_(("customer_notice", "client_notice")),
            d.fmt == "eml",
            d.person_id.in_(person_ids),
            d.message_id.is_not(None),
        )
    )
    return {int(r.person_id): str(r.message_id) for r in rows}


def correction_context(
    contexts: NoticeContexts,
    row: Mapping[str, Any],
    version: int,
    changes: list[dict[str, Any]],
    replies_to: str | None = None,
) -> dict[str, Any]:
    """The ``correction_notice`` context for one person or client company row notified earlier;
    ``replies_to`` is the Message-ID of the notice email it corrects (None: not notified by email)."""
    locale = row["locale"]
    company = row["type"] == "company"
    return {
        **contexts.shared(locale),
        "recipient": {
            "id": row["customer_id"],
            "name": row["name"],
            "company": company,
            "contact_name": row["contact_name"],
            "contact_title": row["contact_title"],
            "display": (row["contact_name"] or row["name"]) if company else row["name"],
            "email": row["email"],
            "address": row["address"],
            "locale": locale,
        },
        "notice": contexts.notice_block(row),
        "correction": {"version": version, "changes": changes, "replies_to": replies_to},
    }
