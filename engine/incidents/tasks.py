"""Completing the tasks of an incident, all or none in one transaction, and listing the tasks a
playbook opens before their state.

It stands alone because a task's life is its own: done in its state, or earlier when the playbook opens
it early (a clock, an anchor or an earlier state), never after its state was left; and marking it done
changes no state, so it needs no guard or trigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from engine.errors import BadInput, NotAllowed, NotFound
from engine.incidents.audit import next_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import incident_playbook
from engine.incidents.rows import (
    TaskState,
    finish_task,
    insert_event,
    load_incident,
    load_tasks,
    write_incident,
)
from engine.incidents.steptime import check_step_time
from engine.incidents.tables import Incident
from engine.playbooks.model import Playbook, StateSpec
from engine.store.db import Store, utcnow

__all__ = ["EarlyTask", "complete_task", "complete_tasks", "early_tasks"]


def _doable(playbook: Playbook, state: str, key: str, row: TaskState) -> bool:
    """Whether an operator may mark the task done now.

    A task is done in its own state; one the playbook opens early also before it, once opened, but
    never after its state was left (like any task of a left phase) nor in a final state.
    """
    if row.status != "open":
        return False
    if row.state_id == state:
        return True
    try:
        home, spec = playbook.task(key)
        here = playbook.state(state)
    except NotFound:
        return False
    return spec.opens is not None and _ahead(playbook, here, home)


def _ahead(playbook: Playbook, here: StateSpec, home: StateSpec) -> bool:
    """Whether the incident, in ``here``, has yet to reach ``home`` (by phase, else by transitions)."""
    if here.final:
        return False
    if home.phase is not None and here.phase is not None:
        return here.phase < home.phase
    return home.id in playbook.reachable_from(here.id)


def complete_task(
    store: Store,
    incident_id: str,
    task_key: str,
    *,
    actor: str,
    note: str | None = None,
    hooks: Hooks = NO_HOOKS,
    at: datetime | None = None,
    reason: str | None = None,
    zone: str = "UTC",
) -> str:
    """Mark an open task done (see :func:`complete_tasks`); return its key."""
    return complete_tasks(
        store, incident_id, [task_key], actor=actor, note=note, hooks=hooks, at=at, reason=reason, zone=zone
    )[0]


def complete_tasks(
    store: Store,
    incident_id: str,
    task_keys: list[str],
    *,
    actor: str,
    note: str | None = None,
    hooks: Hooks = NO_HOOKS,
    at: datetime | None = None,
    reason: str | None = None,
    zone: str = "UTC",
) -> list[str]:
    """Mark open tasks done, all or none, one audit event each, in one transaction; return their keys.

    A task is open in its state, or earlier when the playbook opens it early. ``at`` is when the work
    was really done (``--at``): the task's done time, the deadlines it meets and the documents it owes
    take it; it may not precede the moment the task opened. ``reason`` explains a time more than a day
    back and is kept in the events.
    """
    keys = [k.strip() for k in task_keys]
    if not keys:
        raise BadInput("name at least one task")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise BadInput(f"task {', '.join(repeated)} named twice")
    note, reason = (note or "").strip() or None, (reason or "").strip() or None
    with store.write() as session, session.no_autoflush:
        incident = load_incident(session, incident_id)
        source = incident_playbook(session, incident)
        playbook = source.playbook
        tasks = load_tasks(session, incident_id)
        now = utcnow()
        for key in keys:
            _check_doable(playbook, incident.state, tasks, key)
            if at is not None:
                opened = tasks[key].opened_at
                check_step_time(
                    at,
                    now=now,
                    discovered_at=incident.discovered_at,
                    zone=zone,
                    reason=reason,
                    floors=[(opened, f"task {key} opened")] if opened is not None else [],
                )
        happened = at or now
        for key in keys:
            finish_task(session, incident_id, key, at=happened, by=actor, note=note)
            tasks[key] = TaskState("done", tasks[key].state_id, tasks[key].opened_at)
            event = next_event(
                incident,
                kind="task_done",
                actor=actor,
                at=now,
                occurred_at=at,
                from_state=incident.state,
                to_state=incident.state,
                reason=reason if at is not None else None,
                inputs={"task": key, **({"note": note} if note else {})},
            )
            insert_event(session, event, incident)
            for hook in hooks.after_change:
                hook(Step(session, incident, source, now, f"task:{key}", actor, occurred_at=at))
        write_incident(session, incident, incident.version)
        return keys


def _check_doable(playbook: Playbook, state: str, tasks: dict[str, TaskState], key: str) -> None:
    """Refuse (one line, with the open tasks) a task that cannot be marked done now."""
    state_spec, task_spec = playbook.task(key)
    row = tasks.get(key)
    if row is not None and _doable(playbook, state, key, row):
        return
    open_now = ", ".join(k for k, t in tasks.items() if _doable(playbook, state, k, t))
    if row is not None and row.status == "done":
        why = "done already"
    elif task_spec.opens is not None:
        why = (
            f"not open yet (it opens when {task_spec.opens.describe()}, or with state "
            f"{state_spec.id}; the incident is in {state})"
        )
    else:
        why = f"not open (it belongs to state {state_spec.id}; the incident is in {state})"
    raise NotAllowed(f"task {key!r} is {why}; open tasks: {open_now or 'none'}")


@dataclass(frozen=True)
class EarlyTask:
    """A task opened before the state that requires it, as ``incident triggers`` lists it."""

    task: str
    state: str
    status: str
    opens: str


def early_tasks(session: Session, incident: Incident) -> list[EarlyTask]:
    """The tasks opened before their state and not yet past it: what may be done out of phase order."""
    playbook = incident_playbook(session, incident).playbook
    tasks = load_tasks(session, incident.id)
    found = []
    for home, spec in playbook.early_tasks():
        row = tasks.get(spec.id)
        if row is None or spec.opens is None or not _ahead(playbook, playbook.state(incident.state), home):
            continue
        found.append(EarlyTask(spec.id, home.id, row.status, spec.opens.describe()))
    return found
