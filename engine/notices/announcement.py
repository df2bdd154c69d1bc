"""The public announcement: one aggregate notice for the people no one can reach individually.

PIPL Art 57 and GB/T 35273 §10.2 allow a public notice when individual notice is impossible. Whatever is
published is read by anyone, so the announcement names no one and carries no one's data: it states what
happened, the categories of information and how many people and client companies are involved, the
measures taken and still to be taken, what people can do to protect themselves, and whom to contact. One
is rendered per content version and per language of the people it speaks for; a correction's
announcement (version 2 onward) lists what changed. ``breach notices record --channel public`` records it
as the notice of every person whose channel is public.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from engine.documents.registry import DOCUMENT, document_values, insert_ignore
from engine.documents.render import DocumentRenderer, safe_filename, write_private
from engine.errors import BadInput
from engine.incidents.shape import IncidentShape
from engine.notices.contexts import NoticeContexts
from engine.notices.correction import correction_changes
from engine.notices.passes import Pass, eligible
from engine.notices.people import PERSON
from engine.store.db import Store, utcnow

__all__ = [
    "announcement_locales",
    "announcement_subject",
    "announcements_owed",
    "public_context",
    "render_announcements",
]


def announcement_subject(version: int, locale: str) -> str:
    """The registry subject of a version's announcement in ``locale``: ``v2-zh-CN``."""
    return f"v{version}-{locale}"


def announcement_locales(session: Session, incident_id: str, version: int, *, asked: bool) -> list[str]:
    """The languages of the people the announcement speaks for (zh-CN when asked for with none)."""
    p = Pass("public_notice", "md", "public")
    found = session.execute(select(PERSON.c.locale).where(*eligible(p, incident_id, version)).distinct())
    locales = sorted(str(r[0]) for r in found)
    return locales or (["zh-CN"] if asked else [])


def announcements_owed(
    session: Session, incident_id: str, p: Pass, version: int, *, asked: bool
) -> tuple[list[str], int]:
    """The locales still without the version's announcement in ``p.fmt``, and how many are rendered."""
    d = DOCUMENT.c
    done = {
        str(r[0])
        for r in session.execute(
            select(d.subject).where(
                d.incident_id == incident_id, d.kind == p.kind, d.fmt == p.fmt, d.version == version
            )
        )
    }
    wanted = announcement_locales(session, incident_id, version, asked=asked)
    owed = [loc for loc in wanted if announcement_subject(version, loc) not in done]
    return owed, len(wanted) - len(owed)


def public_context(
    contexts: NoticeContexts, locale: str, version: int, changes: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``public_notice`` context: the shared incident facts and counts, never a person's data."""
    return {
        **contexts.shared(locale),
        "announcement": {
            "version": version,
            "changes": changes,
            "url": contexts.content.notice.url,
            "remedies": contexts.notice_remedies(locale),
        },
    }


def render_announcements(
    store: Store,
    p: Pass,
    *,
    incident: IncidentShape,
    version: int,
    contexts: NoticeContexts,
    renderer: DocumentRenderer,
    folder: Path,
    root: Path,
    actor: str,
    asked: bool,
) -> int:
    """Render and record the version's missing announcements in ``p.fmt``; return how many."""
    with store.read() as session:
        owed, _already = announcements_owed(session, incident.id, p, version, asked=asked)
        changes = {
            loc: correction_changes(session, incident.id, version, loc) if version > 1 else [] for loc in owed
        }
    rows = []
    at: datetime = utcnow()
    for locale in owed:
        subject = announcement_subject(version, locale)
        context = public_context(contexts, locale, version, changes[locale])
        rendered = renderer.render(p.kind, p.fmt, context, locale=locale)
        name = safe_filename(*(["DRILL"] if incident.drill else []), p.kind, incident.id, subject, ext=p.fmt)
        try:
            path = write_private(folder, name, rendered.content, root=root)
        except OSError as exc:
            raise BadInput(f"cannot write {folder / name}: {exc.strerror or exc}") from None
        rows.append(
            document_values(
                incident_id=incident.id,
                rendered=rendered,
                path=path,
                actor=actor,
                at=at,
                subject=subject,
                version=version,
            )
        )
    if rows:
        with store.write() as session:
            session.execute(insert_ignore(session, DOCUMENT), rows)
    return len(rows)
