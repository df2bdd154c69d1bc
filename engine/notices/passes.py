"""Which notices a render run owes: the passes (a kind in a format for the recipients it concerns), and
the recipients each pass still has to render.

A person's or client company's notice goes by the channel they chose (email: the ``.eml``, SMS: the
text, post: a printable letter). People reachable only by public announcement get no letter of their
own: one aggregate announcement (``public_notice``) speaks to all of them, and names no one. After a
correction, the correction notice (``correction_notice``) goes to everyone the correction lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlmodel import Session

from engine.documents.registry import DOCUMENT
from engine.errors import BadInput
from engine.notices.contexts import IncidentStats
from engine.notices.people import CATEGORY_LABELS, PERSON

__all__ = [
    "AUDIENCE",
    "CHANNEL_FORMATS",
    "KINDS",
    "Pass",
    "eligible",
    "plan",
    "recipient_stats",
    "todo",
]

# Which document each channel needs when no --format is given.
CHANNEL_FORMATS = {"email": "eml", "sms": "sms", "post": "html", "public": "md"}
AUDIENCE = {"customer_notice": "person", "client_notice": "company"}
# Every kind a notices run renders: the two letters, the correction notice, the public announcement.
KINDS = (*AUDIENCE, "correction_notice", "public_notice")
_PERSONAL_CHANNELS = ("email", "sms", "post")


@dataclass(frozen=True)
class Pass:
    """One streaming pass: a kind in a format for the recipients it concerns."""

    kind: str
    fmt: str
    channel: str | None  # only recipients of this channel (the default, channel-driven plan)

    @property
    def label(self) -> str:
        """``kind/format``."""
        return f"{self.kind}/{self.fmt}"


def plan(kinds: list[str] | None, formats: list[str] | None, *, version: int) -> list[Pass]:
    """The passes of a run: per channel by default, else every named format each kind supports.

    Correction notices are planned from version 2 of the content on.
    """
    from engine.documents.render import KINDS as DOCUMENT_KINDS

    chosen = kinds or [k for k in KINDS if k != "correction_notice" or version > 1]
    for kind in chosen:
        if kind not in KINDS:
            raise BadInput(f"--kind {kind!r} is not a notice kind; use one of {', '.join(KINDS)}")
    if not formats:
        passes = []
        for kind in chosen:
            if kind == "public_notice":
                passes += [Pass(kind, fmt, "public") for fmt in DOCUMENT_KINDS[kind].formats]
                continue
            for channel in _PERSONAL_CHANNELS:
                fmt = CHANNEL_FORMATS[channel]
                if fmt in DOCUMENT_KINDS[kind].formats:
                    passes.append(Pass(kind, fmt, channel))
        return passes
    passes = [
        Pass(k, f, "public" if k == "public_notice" else None)
        for f in dict.fromkeys(formats)
        for k in chosen
        if f in DOCUMENT_KINDS[k].formats
    ]
    unused = [f for f in formats if not any(p.fmt == f for p in passes)]
    if unused:
        supported = sorted({f for k in chosen for f in DOCUMENT_KINDS[k].formats})
        raise BadInput(f"--format {', '.join(unused)} is not a notice format; use {', '.join(supported)}")
    return passes


def eligible(p: Pass, incident_id: str, version: int) -> list[Any]:
    """The people pass ``p`` concerns (for the announcement: those it speaks for)."""
    from engine.notices.correction import CORRECTION

    person = PERSON.c
    where: list[Any] = [person.incident_id == incident_id]
    if p.kind in AUDIENCE:
        where.append(person.type == AUDIENCE[p.kind])
    if p.channel is not None:
        where.append(person.channel == p.channel)
    if p.fmt == "eml":
        where.append(person.email.is_not(None))
    if p.kind == "correction_notice":
        k = CORRECTION.c
        where.append(
            exists().where(k.incident_id == incident_id, k.version == version, k.person_id == person.id)
        )
    return where


def _done(p: Pass, version: int) -> Any:
    d = DOCUMENT.c
    same = and_(d.person_id == PERSON.c.id, d.kind == p.kind, d.fmt == p.fmt)
    if p.kind == "correction_notice":
        same = and_(same, d.version == version)
    return exists().where(same)


def todo(p: Pass, incident_id: str, version: int) -> list[Any]:
    """The recipients of a per-recipient pass without its document yet (the WHERE of count and pages)."""
    return [*eligible(p, incident_id, version), ~_done(p, version)]


def recipient_stats(session: Session, incident_id: str) -> IncidentStats:
    """Counts the notices state: people and client companies imported, and every category named."""
    person = PERSON.c
    counts = dict(
        session.execute(
            select(person.type, func.count()).where(person.incident_id == incident_id).group_by(person.type)
        ).all()
    )
    codes: set[str] = set()
    for (joined,) in session.execute(
        select(person.categories).where(person.incident_id == incident_id).distinct()
    ):
        codes.update(c for c in joined.split(";") if c)
    return IncidentStats(
        people=counts.get("person") or None,
        clients=counts.get("company") or None,
        category_codes=tuple(c for c in CATEGORY_LABELS if c in codes),
    )
