"""Acknowledging a missed deadline: someone has taken it on, so its alerts stop repeating and climbing.

The deadline stays missed (and overdue in every list) until it is met or waived; only the alerts stop.
The acknowledgement and its audit event are written in one transaction, with the deadline's version
check, so a checker deciding the next repeat at the same moment either comes first (its alert stands,
and the acknowledgement is refused as a conflict to retry) or finds the row changed and sends nothing.
Undelivered repeats are cancelled by the outbox (:mod:`engine.deadlines.escalation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from engine.deadlines.tables import Deadline
from engine.errors import BadInput, Conflict, IncidentNotFound, NotAllowed, NotFound
from engine.incidents.audit import append_event
from engine.incidents.tables import Incident
from engine.store.db import Store

__all__ = ["Acknowledged", "acknowledge_deadline"]

NOTE_LIMIT = 500


@dataclass(frozen=True)
class Acknowledged:
    """What was acknowledged, by whom and when (UTC)."""

    incident_id: str
    rule_id: str
    subject: str
    due_at: datetime
    at: datetime
    by: str


def _matching(session: Session, incident_id: str, rule_id: str, subject: str | None) -> Deadline:
    query = select(Deadline).where(Deadline.incident_id == incident_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a checker skips the row until we commit
    rows = list(session.exec(query))
    matching = [r for r in rows if r.rule_id == rule_id and (subject is None or r.subject == subject)]
    if not matching:
        known = ", ".join(sorted({r.rule_id for r in rows}))
        raise NotFound(f"{incident_id} has no deadline {rule_id} (its deadlines: {known or 'none'})")
    missed = [r for r in matching if r.status == "missed"]
    if len(missed) > 1 and subject is None:
        options = ", ".join(r.subject for r in missed)
        raise BadInput(f"{rule_id} has one deadline per record: add --record (one of {options})")
    if not missed:
        row = matching[0]
        raise NotAllowed(
            f"deadline {rule_id} of {incident_id} is {row.status}, not missed: only a missed deadline "
            "is acknowledged"
        )
    return missed[0]


def acknowledge_deadline(
    store: Store,
    incident_id: str,
    rule_id: str,
    *,
    actor: str,
    note: str = "",
    subject: str | None = None,
) -> Acknowledged:
    """Record that ``actor`` has taken on the missed deadline; its repeated alerts stop.

    :raises IncidentNotFound, NotFound: unknown incident or rule.
    :raises NotAllowed: the deadline is not missed, or was acknowledged already.
    :raises Conflict: a checker or another operator changed it meanwhile.
    """
    note = (note or "").strip()
    if len(note) > NOTE_LIMIT:
        raise BadInput(f"--note is {len(note)} characters: at most {NOTE_LIMIT}")
    with store.write() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        row = _matching(session, incident_id, rule_id, subject)
        if row.acknowledged_at is not None:
            raise NotAllowed(
                f"deadline {rule_id} of {incident_id} was acknowledged already by {row.acknowledged_by}"
            )
        now = store.db_now(session)
        row.acknowledged_at, row.acknowledged_by = now, actor
        row.next_check_at, row.updated_at = None, now
        append_event(
            session,
            incident,
            kind="deadline_acknowledged",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            reason=note or None,
            inputs={"rule": rule_id, "subject": row.subject, "due_at": row.due_at.isoformat()},
        )
        try:
            session.flush()
        except StaleDataError:
            raise Conflict(f"{incident_id} or its deadline {rule_id} changed meanwhile: try again") from None
        return Acknowledged(incident_id, rule_id, row.subject, row.due_at, now, actor)
