"""The content version a notice run renders, fixed before the first file is written.

A run first checks that the content says what every notice needs, fixes the version's
``generated_at`` on its first run (so a re-run renders the same bytes), and takes the client letters'
document numbers from the register, all in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.errors import BadInput
from engine.incidents.repository import get_incident
from engine.incidents.shape import IncidentShape
from engine.notices.content import NoticeContentRecord
from engine.notices.contexts import NoticeContent
from engine.notices.fields import missing_fields
from engine.notices.people import PERSON
from engine.register.numbers import issue_numbers
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

__all__ = ["Frozen", "freeze"]


@dataclass(frozen=True)
class Frozen:
    """The content version a run renders, fixed for every document of it."""

    incident: IncidentShape
    content: NoticeContent
    generated_at: datetime
    version: int
    numbers: dict[str, str]  # a client company's letter number, by customer id


def _locales(session: Session, incident_id: str) -> set[str]:
    rows = session.execute(select(PERSON.c.locale).where(PERSON.c.incident_id == incident_id).distinct())
    return {str(r[0]) for r in rows}


def freeze(store: Store, workspace: Workspace, incident_id: str, actor: str) -> Frozen:
    """Check the content, fix the version's ``generated_at`` on its first run, number client letters.

    :raises BadInput: naming every field a notice needs that is missing (nothing is written then).
    """
    prefix = str(workspace.settings.get("documents", {}).get("number_prefix") or "") or incident_id
    for attempt in (1, 2):
        try:
            with store.write() as session:
                incident = get_incident(session, incident_id)
                record = session.get(NoticeContentRecord, incident_id)
                raw = dict(record.content) if record is not None else {}
                missing = missing_fields(
                    raw, workspace.settings.get("firm", {}), _locales(session, incident_id)
                )
                if record is None or missing:
                    raise BadInput(
                        f"the notices of {incident_id} cannot be rendered: missing {', '.join(missing)} "
                        f"(breach notices content {incident_id} --show lists the fields; fill them in a copy "
                        f"of notice-content.example.yaml, then: breach notices content {incident_id} FILE; "
                        "[firm] keys go in config/settings.toml)"
                    )
                if record.generated_at is None:
                    record.generated_at = utcnow().replace(microsecond=0)
                generated_at = record.generated_at
                content = NoticeContent.parse(record.content, "notice content")
                companies = [
                    str(r[0])
                    for r in session.execute(
                        select(PERSON.c.customer_id)
                        .where(PERSON.c.incident_id == incident_id, PERSON.c.type == "company")
                        .order_by(PERSON.c.id)
                    )
                ]
                day = generated_at.astimezone(ZoneInfo(workspace.timezone)).date()
                numbers = (
                    issue_numbers(
                        session,
                        incident,
                        "client_notice",
                        companies,
                        prefix=prefix,
                        day=day,
                        at=generated_at,
                        actor=actor,
                    )
                    if companies
                    else {}
                )
                session.flush()
                return Frozen(incident, content, generated_at, int(record.version), numbers)
        except IntegrityError:  # a render at the same moment took the numbers: read theirs
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
