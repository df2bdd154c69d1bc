"""The incident write path in SQLAlchemy Core: what a trigger reads and writes, without the ORM's cost.

Firing a trigger touches one incident row, its tasks and one event. Through the ORM's unit of work, and
even through freshly built Core statements, Python overhead costs several times the SQL itself. Here
every statement is built once, at import, with bind parameters, and runs on the session's connection;
SQLAlchemy then reuses its compiled form. The incident is handed to hooks as a plain ``IncidentRecord``
built from the row, so they read and change it as before; ``write_incident`` stores it with the
optimistic version check ``UPDATE ... WHERE id = ? AND version = ?``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, column, insert, select, table, update
from sqlmodel import Session

from engine.errors import Conflict, IncidentNotFound
from engine.incidents.audit import refuse_finding, refuse_if_held
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Event, Incident, Task
from engine.playbooks.model import Playbook
from engine.store.db import table_of

__all__ = [
    "EVENT",
    "IncidentRecord",
    "TaskState",
    "insert_event",
    "insert_incident",
    "load_incident",
    "load_tasks",
    "open_early_tasks",
    "open_state_tasks",
    "write_incident",
]

INCIDENT = table_of(Incident)
TASK = table_of(Task)
EVENT = table_of(Event)
# What a step may change on the incident row; id, playbook and opening data never change.
WRITABLE = (
    "state",
    "facts",
    "anchors",
    "flags",
    "records",
    "assessment",
    "closed_at",
    "event_count",
    "audit_head",
)

_LOG = table("workspace_log", column("id"), column("incident_id"), column("kind"), column("detail"))


def _latest_finding(value: Any) -> Any:
    """``value`` of the latest finding about the incident's trail (broken, or acknowledged since)."""
    log = _LOG.c
    return (
        select(value)
        .where(log.incident_id == INCIDENT.c.id, log.kind.in_(("chain_broken", "acknowledged")))
        .order_by(log.id.desc())
        .limit(1)
        .scalar_subquery()
    )


# The incident with the latest finding about its trail, read in the same statement: a step's events
# are refused on a held trail (engine.incidents.audit) without one more query per event.
_SELECT_INCIDENT = select(
    INCIDENT,
    _latest_finding(_LOG.c.kind).label("trail_finding"),
    _latest_finding(_LOG.c.detail).label("trail_detail"),
).where(INCIDENT.c.id == bindparam("b_id"))
# On PostgreSQL a writer locks the row it read, so a second writer waits and then sees the new version
# (and is told "changed meanwhile") instead of racing it to the next event number. SQLite's
# BEGIN IMMEDIATE already serialises writers; there the clause compiles to nothing.
_SELECT_INCIDENT_FOR_UPDATE = _SELECT_INCIDENT.with_for_update()
_UPDATE_INCIDENT = (
    update(INCIDENT)
    .where(INCIDENT.c.id == bindparam("b_id"), INCIDENT.c.version == bindparam("b_seen"))
    .values({**{name: bindparam(f"v_{name}") for name in WRITABLE}, "version": bindparam("v_version")})
)
_INSERT_INCIDENT = insert(INCIDENT)
_SELECT_TASKS = select(TASK.c.key, TASK.c.status, TASK.c.state_id, TASK.c.opened_at).where(
    TASK.c.incident_id == bindparam("b_id")
)
_INSERT_TASK = insert(TASK)
_REOPEN_TASK = (
    update(TASK)
    .where(TASK.c.incident_id == bindparam("b_id"), TASK.c.key == bindparam("b_key"))
    .values(status="open", opened_at=bindparam("v_at"), done_at=None, done_by=None, note=None)
)
_FINISH_TASK = (
    update(TASK)
    .where(TASK.c.incident_id == bindparam("b_id"), TASK.c.key == bindparam("b_key"))
    .values(status="done", done_at=bindparam("v_at"), done_by=bindparam("v_by"), note=bindparam("v_note"))
)
_INSERT_EVENT = insert(EVENT)


@dataclass(slots=True)
class IncidentRecord:
    """An incident row as plain attributes, cheap to build and change (an :class:`IncidentShape`)."""

    id: str
    title: str
    playbook_id: str
    playbook_version: int
    playbook_sha256: str
    state: str
    version: int
    drill: bool
    opened_by: str
    opened_at: datetime
    discovered_at: datetime
    closed_at: datetime | None
    facts: dict[str, Any]
    anchors: dict[str, Any]
    flags: dict[str, Any]
    records: dict[str, Any]
    assessment: dict[str, Any]
    event_count: int
    audit_head: str
    # The latest finding about the trail in the workspace log when the row was loaded (None: none).
    trail_finding: str | None = None
    trail_detail: str | None = None
    trail_read: bool = False

    def column_values(self) -> dict[str, Any]:
        """Every column's value, for inserting the row."""
        return {c.name: getattr(self, c.name) for c in INCIDENT.columns}


def load_incident(session: Session, incident_id: str, *, for_update: bool = True) -> IncidentRecord:
    """The incident, detached (changes to it are written by ``write_incident``), locked for writing."""
    statement = _SELECT_INCIDENT_FOR_UPDATE if for_update else _SELECT_INCIDENT
    row = session.connection().execute(statement, {"b_id": incident_id}).mappings().first()
    if row is None:
        raise IncidentNotFound(incident_id)
    return IncidentRecord(**row, trail_read=True)


def insert_incident(session: Session, incident: IncidentRecord) -> None:
    """Insert a new incident row."""
    session.connection().execute(_INSERT_INCIDENT, incident.column_values())


def write_incident(session: Session, incident: IncidentShape, seen_version: int) -> int:
    """Store the changes unless someone changed the incident since ``seen_version``; return the version."""
    params = {f"v_{name}": getattr(incident, name) for name in WRITABLE}
    params.update(b_id=incident.id, b_seen=seen_version, v_version=seen_version + 1)
    result = session.connection().execute(_UPDATE_INCIDENT, params)
    if result.rowcount != 1:
        raise Conflict(f"{incident.id} was changed meanwhile by someone else: reload and try again")
    incident.version = seen_version + 1
    return int(incident.version)


@dataclass
class TaskState:
    """What guards and the flow need of a task."""

    status: str
    state_id: str
    # Since when it could be worked on: its state's entry, its clock's start, its anchor, or discovery.
    opened_at: datetime | None = None


def load_tasks(session: Session, incident_id: str) -> dict[str, TaskState]:
    """The incident's tasks by key."""
    rows = session.connection().execute(_SELECT_TASKS, {"b_id": incident_id})
    return {key: TaskState(status, state_id, opened) for key, status, state_id, opened in rows}


def _open_rows(
    session: Session, incident_id: str, tasks: dict[str, TaskState], opening: list[tuple[str, Any, datetime]]
) -> None:
    """Insert the tasks not seen yet and reopen the others; each entry is (state id, task spec, since)."""
    new, again = [], []
    for state_id, spec, at in opening:
        if spec.id in tasks:
            again.append({"b_id": incident_id, "b_key": spec.id, "v_at": at})
        else:
            new.append(
                {
                    "incident_id": incident_id,
                    "key": spec.id,
                    "state_id": state_id,
                    "required": spec.required,
                    "status": "open",
                    "opened_at": at,
                    "done_at": None,
                    "done_by": None,
                    "note": None,
                }
            )
        tasks[spec.id] = TaskState("open", state_id, at)
    conn = session.connection()
    if new:
        conn.execute(_INSERT_TASK, new)
    if again:
        conn.execute(_REOPEN_TASK, again)


def open_state_tasks(
    session: Session,
    incident_id: str,
    tasks: dict[str, TaskState],
    playbook: Playbook,
    state_id: str,
    at: datetime,
) -> None:
    """Entering a state (again) opens each of its tasks; done work from an earlier pass is redone.

    A task that opens early (``opens``) and was already opened keeps its status: done early, it stays
    done. Entering a state also opens (again) the later tasks that open with it.
    """
    opening: list[tuple[str, Any, datetime]] = []
    for spec in playbook.state(state_id).tasks:
        if spec.opens is not None and spec.id in tasks:
            continue
        opening.append((state_id, spec, at))
    for home, spec in playbook.early_tasks():
        if spec.opens is not None and spec.opens.state == state_id and home.id != state_id:
            opening.append((home.id, spec, at))
    _open_rows(session, incident_id, tasks, opening)


def open_early_tasks(
    session: Session,
    incident_id: str,
    tasks: dict[str, TaskState],
    playbook: Playbook,
    *,
    clocks: dict[str, datetime] | None = None,
    anchors: dict[str, Any] | None = None,
    again: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Open the early tasks whose moment has come; return their keys.

    A task opens when its clock is among ``clocks`` (rules that just started, with the moment each runs
    from) or its anchor among ``anchors`` (the incident's recorded moments). It counts as open since that
    moment, which is the earliest a completion may be dated. One already opened keeps its status, unless
    its anchor is in ``again`` (recorded anew, as when containment ends a second time after a
    reopening): then it opens again, as a state's tasks do when the state is entered again.
    """
    clocks, anchors = clocks or {}, anchors or {}
    opening: list[tuple[str, Any, datetime]] = []
    for home, spec in playbook.early_tasks():
        opens = spec.opens
        assert opens is not None
        row = tasks.get(spec.id)
        if opens.clock is not None and opens.clock in clocks and row is None:
            opening.append((home.id, spec, clocks[opens.clock]))
        elif opens.anchor is not None and anchors.get(opens.anchor):
            if row is None or (opens.anchor in again and row.status == "done"):
                opening.append((home.id, spec, datetime.fromisoformat(str(anchors[opens.anchor]))))
    _open_rows(session, incident_id, tasks, opening)
    return [spec.id for _, spec, _ in opening]


def finish_task(
    session: Session, incident_id: str, key: str, *, at: datetime, by: str, note: str | None
) -> None:
    """Mark one task done."""
    session.connection().execute(
        _FINISH_TASK, {"b_id": incident_id, "b_key": key, "v_at": at, "v_by": by, "v_note": note}
    )


def insert_event(session: Session, event: dict[str, Any], incident: IncidentShape | None = None) -> None:
    """Insert an audit event built by ``engine.incidents.audit.next_event``, unless the trail is held.

    ``incident``, loaded by :func:`load_incident` in this transaction, already carries the trail's
    latest finding; without it the workspace log is asked.
    """
    if event["kind"] != "opened":  # a new incident has no trail that could have been found broken
        if isinstance(incident, IncidentRecord) and incident.trail_read:
            refuse_finding(event["incident_id"], incident.trail_finding, incident.trail_detail)
        else:
            refuse_if_held(session, event["incident_id"])
    session.connection().execute(_INSERT_EVENT, event)
