"""Loading and storing incidents: the one place that knows how an incident is found, pinned and written.

Everything that changes an incident outside the flow's hot path (facts, notices, people, documents,
deadlines) loads it with :func:`get_incident`, writes with :func:`flush_or_conflict` and reads the rules
it was opened with from :func:`incident_playbook`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.errors import Conflict, IncidentNotFound, NotFound
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Incident, PlaybookSnapshot
from engine.playbooks.model import Playbook
from engine.playbooks.parsing import PlaybookSource, parse_playbook

__all__ = ["flush_or_conflict", "get_incident", "incident_playbook", "playbook_summary"]

# Parsed playbooks by the sha256 of their text: an incident's playbook never changes, so neither does this.
_parsed: dict[str, PlaybookSource] = {}


def incident_playbook(session: Session, incident: IncidentShape) -> PlaybookSource:
    """The playbook version the incident was opened with, from its stored snapshot."""
    cached = _parsed.get(incident.playbook_sha256)
    if cached is None:
        snapshot = session.get(PlaybookSnapshot, incident.playbook_sha256)
        if snapshot is None:
            raise NotFound(f"playbook snapshot {incident.playbook_sha256[:12]} of {incident.id} is missing")
        cached = _parsed[incident.playbook_sha256] = parse_playbook(snapshot.source, snapshot.origin)
    return cached


def playbook_summary(playbook: Playbook) -> dict[str, Any]:
    """Titles and labels of a playbook, stored beside its text for fast display."""
    return {
        "titles": playbook.titles,
        "states": {s.id: {"labels": s.labels, "phase": s.phase, "final": s.final} for s in playbook.states},
        "tasks": {
            t.id: {"labels": t.labels, "required": t.required, "state": s.id}
            for s in playbook.states
            for t in s.tasks
        },
        "triggers": {t.trigger: t.labels for t in playbook.transitions},
    }


def flush_or_conflict(session: Session, incident_id: str) -> None:
    """Write the pending changes; another writer's newer version of the incident is a conflict."""
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"{incident_id} was changed meanwhile by someone else: reload and try again") from None


def get_incident(session: Session, incident_id: str) -> Incident:
    """The incident row, or the one "no incident" error every command gives."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    return incident
