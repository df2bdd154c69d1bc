"""Waiving a deadline that is not met: a written rationale, an approver other than the operator, and
the waiver on the audit trail in the same transaction as the row it changes."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.access import normal_name, same_person
from engine.deadlines.sync import ACTIVE, locked_rows
from engine.deadlines.tables import Deadline
from engine.errors import BadInput, Conflict, IncidentNotFound, NotAllowed, NotFound
from engine.incidents.audit import append_event
from engine.incidents.tables import Incident
from engine.store.db import Store

__all__ = ["waive"]


def waive(
    store: Store,
    incident_id: str,
    rule_id: str,
    *,
    reason: str,
    approver: str,
    actor: str,
    subject: str | None = None,
    within: Callable[[Session], None] | None = None,
) -> Deadline:
    """Waive a deadline that is not met: a written rationale and an approver other than the actor.

    ``within`` runs in the waiver's transaction (an approval marks its request approved there).

    The waiver is appended to the incident's audit trail in the same transaction; a checker that
    changed the row meanwhile makes this a conflict (the version check), never a lost update.
    """
    reason, approver = (reason or "").strip(), (approver or "").strip()
    if not reason:
        raise BadInput("a waiver needs --reason (a written rationale)")
    if not approver:
        raise BadInput("a waiver needs --approver NAME (the person who approved it)")
    approver = normal_name(approver, what="approver")
    if same_person(approver, actor):
        raise NotAllowed(f"the approver must be someone other than the operator ({actor})")
    with store.write() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        rows = list(locked_rows(session, incident_id).values())
        matching = [r for r in rows if r.rule_id == rule_id and (subject is None or r.subject == subject)]
        if not matching:
            known = ", ".join(
                sorted({r.rule_id + (f" --record {r.subject}" if r.subject else "") for r in rows})
            )
            wanted = rule_id + (f" --record {subject}" if subject else "")
            raise NotFound(f"{incident_id} has no deadline {wanted} (its deadlines: {known or 'none'})")
        if len(matching) > 1:
            options = ", ".join(r.subject for r in matching)
            raise BadInput(f"{rule_id} has one deadline per record: add --record (one of {options})")
        row = matching[0]
        if row.status not in ACTIVE:
            raise NotAllowed(
                f"deadline {rule_id} is {row.status}: only pending, warned or missed can be waived"
            )
        now = store.db_now(session)
        row.status, row.waived_at, row.waived_by = "waived", now, actor
        row.waiver_reason, row.waiver_approver, row.next_check_at = reason, approver, None
        row.updated_at = now
        append_event(
            session,
            incident,
            kind="deadline_waived",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            reason=reason,
            inputs={
                "rule": rule_id,
                "subject": row.subject,
                "approver": approver,
                "due_at": row.due_at.isoformat(),
            },
        )
        if within is not None:
            within(session)
        try:
            session.flush()
        except StaleDataError:
            raise Conflict(f"{incident_id} or its deadline {rule_id} changed meanwhile: try again") from None
        return row
