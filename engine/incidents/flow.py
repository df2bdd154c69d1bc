"""Running an incident: opening it, firing triggers, completing tasks, each in one transaction.

Every accepted change runs guards, changes the incident, opens the next state's tasks and appends its
audit event in the same transaction, under optimistic locking: the incident row is updated only if its
``version`` is still the one the operator saw. A refused or conflicting attempt leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session

from engine.access import normal_name
from engine.clocks.durations import format_instant, parse_instant
from engine.errors import BadInput, Conflict, GuardFailed, NotAllowed, NotFound
from engine.incidents.audit import next_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import incident_playbook, playbook_summary
from engine.incidents.rows import (
    EVENT,
    IncidentRecord,
    TaskState,
    finish_task,
    insert_event,
    insert_incident,
    load_incident,
    load_tasks,
    open_early_tasks,
    open_state_tasks,
    write_incident,
)
from engine.incidents.shape import IncidentShape
from engine.incidents.steptime import check_step_time
from engine.incidents.tables import Incident, PlaybookSnapshot
from engine.incidents.worklog import append_log
from engine.playbooks.effects import Mutable
from engine.playbooks.guards import Situation, evaluate_guards
from engine.playbooks.machine import Run, machine_for
from engine.playbooks.model import Playbook, StateSpec, TransitionSpec
from engine.playbooks.parsing import PlaybookSource
from engine.store.db import Store, utcnow

__all__ = [
    "AdvanceResult",
    "TriggerInfo",
    "advance",
    "complete_task",
    "complete_tasks",
    "early_tasks",
    "list_triggers",
    "open_incident",
]


def _situation(
    incident: IncidentShape, tasks: dict[str, TaskState], actor: str, inputs: dict[str, Any], hooks: Hooks
) -> Situation:
    grade = (incident.assessment or {}).get("grade")
    order = tuple((incident.assessment or {}).get("grade_order") or ())
    return Situation(
        state=incident.state,
        tasks={k: t.status for k, t in tasks.items()},
        flags=dict(incident.flags),
        anchors=dict(incident.anchors),
        records={k: list(v) for k, v in incident.records.items()},
        facts=dict(incident.facts),
        actor=actor,
        inputs=inputs,
        grade=grade,
        grade_order=order,
        role_map=hooks.roles,
    )


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


def _coerce_inputs(spec: TransitionSpec, raw: dict[str, str], zone: str) -> dict[str, Any]:
    """Check the inputs a trigger takes: none unknown, none missing, each of its declared type."""
    declared = {i.name: i for i in spec.inputs}
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        takes = ", ".join(declared) or "no inputs"
        raise BadInput(f"trigger {spec.trigger!r} does not take {', '.join(unknown)} (it takes: {takes})")
    values: dict[str, Any] = {}
    for name, item in declared.items():
        given = raw.get(name)
        if given is None or not str(given).strip():
            if item.required:
                hint = f" ({item.description})" if item.description else ""
                raise BadInput(f"trigger {spec.trigger!r} needs --input {name}=...{hint}")
            continue
        if item.type == "datetime":
            values[name] = parse_instant(str(given), zone).isoformat()
        elif item.type == "integer":
            try:
                values[name] = int(str(given))
            except ValueError:
                raise BadInput(f"input {name} must be a whole number, got {given!r}") from None
        else:
            values[name] = str(given).strip()
    return values


@dataclass(frozen=True)
class AdvanceResult:
    """What an accepted trigger did."""

    incident_id: str
    trigger: str
    from_state: str
    to_state: str
    version: int
    effects: list[str]


def _transition_or_refuse(playbook: Playbook, incident: IncidentShape, trigger: str) -> TransitionSpec:
    if trigger not in playbook.triggers():
        raise NotFound(
            f"unknown trigger {trigger!r}; playbook {playbook.id} has: {', '.join(playbook.triggers())}"
        )
    spec = playbook.transition(trigger, incident.state)
    if spec is None:
        allowed = (
            ", ".join(t.trigger for t in playbook.transitions_from(incident.state)) or "none (final state)"
        )
        label = playbook.state(incident.state).label("zh-CN")
        raise NotAllowed(
            f"trigger {trigger!r} is not allowed in state {incident.state} ({label}); allowed now: {allowed}"
        )
    return spec


def advance(
    store: Store,
    incident_id: str,
    trigger: str,
    *,
    actor: str,
    zone: str,
    reason: str | None = None,
    approver: str | None = None,
    inputs: dict[str, str] | None = None,
    expected_version: int | None = None,
    hooks: Hooks = NO_HOOKS,
    at: datetime | None = None,
) -> AdvanceResult:
    """Fire ``trigger`` on an incident: guards, state change, tasks, effects and audit in one transaction.

    ``expected_version`` is the version the operator saw; when not given, it is read first, so that
    someone else's change between that read and this write is reported as a conflict, not overwritten.
    ``at`` is when the step really happened (``--at``); anchors, records and deadlines take it, the
    audit event keeps it beside the recording time.
    """
    try:
        return _advance(
            store,
            incident_id,
            trigger,
            actor=actor,
            zone=zone,
            reason=reason,
            approver=approver,
            inputs=inputs,
            expected_version=expected_version,
            hooks=hooks,
            at=at,
        )
    except RoleRefused as refused:
        # The attempt is kept in the workspace log, in its own transaction: the incident stays untouched.
        with store.write() as session:
            append_log(
                session,
                actor=actor,
                kind="refused",
                incident_id=incident_id,
                detail=f"{trigger} needs the role {', '.join(refused.missing)}",
            )
        raise


class RoleRefused(NotAllowed):
    """The operator lacks a role the transition requires."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def _advance(
    store: Store,
    incident_id: str,
    trigger: str,
    *,
    actor: str,
    zone: str,
    reason: str | None,
    approver: str | None,
    inputs: dict[str, str] | None,
    expected_version: int | None,
    hooks: Hooks,
    at: datetime | None,
) -> AdvanceResult:
    reason = (reason or "").strip() or None
    approver = normal_name(approver, what="approver") if approver and approver.strip() else None
    with store.write() as session, session.no_autoflush:
        incident = load_incident(session, incident_id)
        source = incident_playbook(session, incident)
        playbook = source.playbook
        seen = incident.version if expected_version is None else expected_version
        if trigger in playbook.triggers() and incident.version != seen:
            raise Conflict(
                f"{incident_id} was changed meanwhile (now version {incident.version}, you saw "
                f"{seen}): reload with 'breach incident show {incident_id}' and try again"
            )
        spec = _transition_or_refuse(playbook, incident, trigger)
        if spec.reason == "required" and not reason:
            raise BadInput(f"trigger {trigger!r} needs --reason (a written rationale)")
        if spec.approver and not approver:
            raise BadInput(f"trigger {trigger!r} needs --approver NAME (the person who approved it)")
        if approver and not spec.approver:
            raise BadInput(f"trigger {trigger!r} takes no --approver")
        values = _coerce_inputs(spec, dict(inputs or {}), zone)
        if approver:
            values["approver"] = approver
        missing_roles = [r for r in spec.roles if hooks.roles is not None and not hooks.roles.holds(actor, r)]
        if missing_roles:
            raise RoleRefused(
                f"{actor} may not {trigger}: it needs the role {', '.join(missing_roles)} "
                "(the attempt is recorded)",
                missing_roles,
            )
        tasks = load_tasks(session, incident_id)
        situation = _situation(incident, tasks, actor, values, hooks)
        for refine in hooks.situation:
            refine(session, incident, situation)
        now = utcnow()
        if at is not None:
            entered = _state_entered_at(session, incident)
            at = check_step_time(
                at,
                now=now,
                discovered_at=incident.discovered_at,
                zone=zone,
                reason=reason,
                floors=[(entered, f"the incident entered {incident.state}")] if entered else [],
            )
        happened = at or now
        mutable = Mutable(
            flags=dict(incident.flags),
            anchors=dict(incident.anchors),
            records={k: [dict(e) for e in v] for k, v in incident.records.items()},
            at=happened,
            actor=actor,
            inputs=values,
            reason=reason,
        )
        run = Run(
            incident,
            situation,
            mutable,
            lambda state_id: open_state_tasks(session, incident_id, tasks, playbook, state_id, happened),
        )
        before = incident.state
        if not machine_for(source).fire(run, trigger):
            raise GuardFailed(f"cannot {trigger}: " + "; ".join(run.blocked), run.blocked)
        recorded = {k for k, v in mutable.anchors.items() if v and incident.anchors.get(k) != v}
        incident.flags, incident.anchors, incident.records = mutable.flags, mutable.anchors, mutable.records
        open_early_tasks(session, incident_id, tasks, playbook, anchors=incident.anchors, again=recorded)
        if playbook.state(incident.state).final:
            incident.closed_at = happened
        event = next_event(
            incident,
            kind="trigger",
            actor=actor,
            at=now,
            occurred_at=at,
            trigger=trigger,
            from_state=before,
            to_state=incident.state,
            reason=reason,
            inputs={**values, **({"effects": run.effects_done} if run.effects_done else {})},
        )
        insert_event(session, event, incident)
        for hook in hooks.after_change:
            hook(Step(session, incident, source, now, trigger, actor, occurred_at=at))
        version = write_incident(session, incident, seen)
        return AdvanceResult(incident_id, trigger, before, incident.state, version, run.effects_done)


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


def _state_entered_at(session: Session, incident: IncidentRecord) -> datetime | None:
    """When the incident entered its current state: the real time of the last step that moved it there.

    None while it is still in the state it was opened in: that state's work runs from discovery.
    """
    ev = EVENT.c
    row = (
        session.connection()
        .execute(
            select(ev.occurred_at, ev.at)
            .where(ev.incident_id == incident.id, ev.to_state == incident.state, ev.from_state != ev.to_state)
            .order_by(ev.seq.desc())
            .limit(1)
        )
        .first()
    )
    if row is None:
        return None
    when: datetime = row[0] or row[1]
    return when


@dataclass(frozen=True)
class TriggerInfo:
    """A trigger of the playbook as seen from the incident's current state."""

    trigger: str
    dest: str | None
    allowed: bool
    blocked_by: list[str]
    needs: list[str]
    label: str


def list_triggers(
    session: Session,
    incident: IncidentShape,
    *,
    actor: str,
    hooks: Hooks = NO_HOOKS,
) -> list[TriggerInfo]:
    """Every trigger from the current state, whether it may fire now, and if not, why not."""
    playbook = incident_playbook(session, incident).playbook
    tasks = load_tasks(session, incident.id)
    result = []
    for spec in playbook.transitions_from(incident.state):
        situation = _situation(incident, tasks, actor, {}, hooks)
        for refine in hooks.situation:
            refine(session, incident, situation)
        blocked = evaluate_guards(
            [g for g in spec.guards if g[0] != "approver_not_actor"], situation, playbook
        )
        blocked += [
            f"{actor} does not hold the role {r}"
            for r in spec.roles
            if hooks.roles is not None and not hooks.roles.holds(actor, r)
        ]
        needs = (["--reason"] if spec.reason == "required" else []) + (
            ["--approver"] if spec.approver else []
        )
        needs += [f"--input {i.name}=" for i in spec.inputs if i.required]
        result.append(
            TriggerInfo(
                spec.trigger,
                spec.dest if not spec.internal else incident.state,
                not blocked,
                blocked,
                needs,
                spec.label("zh-CN"),
            )
        )
    return result


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
