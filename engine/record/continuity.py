"""Incident numbers without gaps: every number a year's counter handed out is an incident or a tombstone.

Deleting a whole incident (its rows, events and tasks) leaves no broken chain behind, since the chain
lived in the rows deleted. What remains is the counter that numbered it: ``INC-2026-0003`` was handed out,
so it must still be there, or have been purged after its retention period, which leaves a ``purged``
entry in the hash-chained workspace log.
"""

from __future__ import annotations

import re

from sqlmodel import Session, select

from engine.incidents.tables import Incident, IncidentCounter
from engine.incidents.worklog import WorkspaceLog

__all__ = ["numbering_gaps"]

_ID = re.compile(r"^INC-(\d{4})-(\d{4,})$")


def numbering_gaps(session: Session) -> list[str]:
    """One line per incident number that is missing, or present but never handed out by the counter."""
    counters = {c.year: c.last for c in session.exec(select(IncidentCounter))}
    present = set(session.exec(select(Incident.id)))
    purged = set(session.exec(select(WorkspaceLog.incident_id).where(WorkspaceLog.kind == "purged")))
    problems: list[str] = []
    for year, last in sorted(counters.items()):
        for number in range(1, last + 1):
            wanted = f"INC-{year}-{number:04d}"
            if wanted not in present and wanted not in purged:
                problems.append(
                    f"{wanted}: missing (its number was handed out; the workspace log has no purge of it)"
                )
    for incident_id in sorted(present):
        match = _ID.match(incident_id)
        if match is None or int(match.group(2)) > counters.get(int(match.group(1)), 0):
            problems.append(f"{incident_id}: not numbered by breach (its counter never reached it)")
    return problems
