"""Holding an incident whose trail was found broken, and the acknowledged investigation that lifts it.

``audit verify`` records each broken trail it finds as a ``chain_broken`` entry of the workspace log;
from then on :func:`engine.incidents.audit.refuse_if_held` refuses every write to that incident. An
operator holding the acknowledging role (``[audit] acknowledge_role``, the DPO by default) records an
``acknowledged`` entry and an ``investigated`` event on the incident with their written reason; the break
itself stays visible to ``audit verify``, with who acknowledged it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from engine.access import RoleMap
from engine.errors import BadInput, NotAllowed
from engine.incidents.audit import append_event
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.worklog import append_log
from engine.store.db import Store, utcnow

__all__ = ["Finding", "acknowledge", "latest_finding", "record_broken"]

_FINDINGS = text(
    "SELECT kind, detail, actor FROM workspace_log WHERE incident_id = :i "
    "AND kind IN ('chain_broken', 'acknowledged') ORDER BY id DESC LIMIT 1"
)


@dataclass(frozen=True)
class Finding:
    """The latest finding about an incident's trail: ``chain_broken`` or ``acknowledged``."""

    kind: str
    detail: str
    actor: str


def latest_finding(session: Session, incident_id: str) -> Finding | None:
    """The newest ``chain_broken`` or ``acknowledged`` entry of the incident, if any."""
    row = session.connection().execute(_FINDINGS, {"i": incident_id}).first()
    return Finding(str(row[0]), str(row[1]), str(row[2])) if row is not None else None


def record_broken(store: Store, problems: dict[str, str], *, actor: str) -> None:
    """Hold each incident whose trail is broken; one already held or acknowledged for the same
    problem is left as it is, so running ``audit verify`` again adds nothing."""
    with store.write() as session:
        for incident_id, problem in problems.items():
            found = latest_finding(session, incident_id)
            if found is not None and found.detail == problem:
                continue
            append_log(session, actor=actor, kind="chain_broken", incident_id=incident_id, detail=problem)


def acknowledge(store: Store, incident_id: str, *, reason: str, actor: str, roles: RoleMap, role: str) -> str:
    """Record the investigation of a held incident and lift the hold; return what was acknowledged."""
    reason = reason.strip()
    if not reason:
        raise BadInput("an acknowledgement needs --reason (what was investigated and found)")
    with store.write() as session:
        incident = get_incident(session, incident_id)
        found = latest_finding(session, incident_id)
        if found is None or found.kind != "chain_broken":
            raise NotAllowed(f"{incident_id} is not held: audit verify found nothing to acknowledge")
        if not roles.holds(actor, role):
            append_log(
                session,
                actor=actor,
                kind="refused",
                incident_id=incident_id,
                detail=f"acknowledge needs the role {role}",
            )
            session.commit()
            raise NotAllowed(
                f"{actor} may not acknowledge: it needs the role {role} (the attempt is recorded); "
                f"{roles.how_to_grant(actor, [role])}"
            )
        append_log(session, actor=actor, kind="acknowledged", incident_id=incident_id, detail=found.detail)
        now = utcnow()
        append_event(
            session,
            incident,
            kind="investigated",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            reason=reason,
            inputs={"finding": found.detail},
        )
        flush_or_conflict(session, incident_id)
        return found.detail
