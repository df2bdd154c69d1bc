"""Opening an incident: its readable id (``INC-2026-0001``), the playbook text pinned by its hash, the
first state's tasks open since discovery, the "opened" audit event and the hooks, in one transaction.

It stands alone because opening creates what every later step loads: there is no version to check, no
guard and no trigger, only numbering and first rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from engine.clocks.durations import format_instant
from engine.errors import BadInput
from engine.incidents.audit import next_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import playbook_summary
from engine.incidents.rows import (
    IncidentRecord,
    TaskState,
    insert_event,
    insert_incident,
    open_early_tasks,
    open_state_tasks,
    write_incident,
)
from engine.incidents.tables import PlaybookSnapshot
from engine.playbooks.parsing import PlaybookSource
from engine.store.db import Store, utcnow

__all__ = ["open_incident"]


def _next_number(session: Session, year: int) -> int:
    """Take the next incident number of ``year`` atomically (safe with several operators)."""
    session.execute(
        text("INSERT INTO incident_counter (year, last) VALUES (:y, 0) ON CONFLICT (year) DO NOTHING"),
        {"y": year},
    )
    row = session.execute(
        text("UPDATE incident_counter SET last = last + 1 WHERE year = :y RETURNING last"), {"y": year}
    ).one()
    return int(row[0])


def open_incident(
    store: Store,
    *,
    source: PlaybookSource,
    title: str,
    discovered_at: datetime,
    actor: str,
    zone: str,
    drill: bool = False,
    facts: dict[str, Any] | None = None,
    hooks: Hooks = NO_HOOKS,
) -> IncidentRecord:
    """Open an incident under ``source`` (pinned by its hash) and return it with its new readable id."""
    title = title.strip()
    if not title:
        raise BadInput("the title must not be empty")
    if len(title) > 500:
        raise BadInput("the title is longer than 500 characters")
    now = utcnow()
    if discovered_at > now:
        raise BadInput(f"--discovered-at {format_instant(discovered_at, zone)} is in the future")
    playbook = source.playbook
    with store.write() as session:
        if session.get(PlaybookSnapshot, source.sha256) is None:
            session.add(
                PlaybookSnapshot(
                    sha256=source.sha256,
                    playbook_id=playbook.id,
                    version=playbook.version,
                    origin=source.origin,
                    source=source.text,
                    stored_at=now,
                    summary=playbook_summary(playbook),
                )
            )
        year = int(format_instant(now, zone)[:4])
        number = _next_number(session, year)
        incident = IncidentRecord(
            id=f"INC-{year}-{number:04d}",
            title=title,
            playbook_id=playbook.id,
            playbook_version=playbook.version,
            playbook_sha256=source.sha256,
            state=playbook.initial,
            version=0,
            drill=drill,
            opened_by=actor,
            opened_at=now,
            discovered_at=discovered_at,
            closed_at=None,
            facts=facts or {},
            anchors={"discovered_at": discovered_at.isoformat(), "opened_at": now.isoformat()},
            flags={},
            records={},
            assessment={},
            event_count=0,
            audit_head="",
        )
        for prepare in hooks.on_open:
            prepare(incident, now)
        grade = (incident.assessment or {}).get("grade")
        opened = next_event(
            incident,
            kind="opened",
            actor=actor,
            at=now,
            to_state=playbook.initial,
            inputs={
                "title": title,
                "playbook": playbook.id,
                "playbook_version": playbook.version,
                "discovered_at": discovered_at.isoformat(),
                "drill": drill,
                **({"facts": facts} if facts else {}),
                # What the assessment made of those facts, so replaying the trail knows the grade.
                **({"grade": grade} if grade else {}),
            },
        )
        # Inserted at version 0 and raised to 1 by the single write below, after the hooks have run.
        insert_incident(session, incident)
        insert_event(session, opened)
        # Containment work starts at discovery, not when the incident was recorded here: its tasks
        # (and those opening with it) count as open since then, which bounds a backdated completion.
        first_tasks: dict[str, TaskState] = {}
        open_state_tasks(session, incident.id, first_tasks, playbook, playbook.initial, discovered_at)
        open_early_tasks(session, incident.id, first_tasks, playbook, anchors=incident.anchors)
        for hook in hooks.after_change:
            hook(Step(session, incident, source, now, "opened", actor))
        write_incident(session, incident, 0)
        return incident
