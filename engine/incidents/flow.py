"""Running an incident: firing a trigger of its playbook, in one transaction, and listing the triggers
that may fire now.

Every accepted trigger runs guards, changes the incident, opens the next state's tasks and appends its
audit event in the same transaction, under optimistic locking: the incident row is updated only if its
``version`` is still the one the operator saw. A refused or conflicting attempt leaves nothing behind.
Opening an incident is :mod:`engine.incidents.opening`; completing tasks is :mod:`engine.incidents.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from engine.access import normal_name
from engine.clocks.durations import parse_instant
from engine.errors import BadInput, Conflict, GuardFailed, NotAllowed, NotFound
from engine.incidents.audit import next_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import incident_playbook
from engine.incidents.rows import (
    EVENT,
    IncidentRecord,
    TaskState,
    insert_event,
    load_incident,
    load_tasks,
    open_early_tasks,
    open_state_tasks,
    write_incident,
)
from engine.incidents.shape import IncidentShape
from engine.incidents.steptime import check_step_time
from engine.incidents.worklog import append_log
from engine.playbooks.effects import Mutable
from engine.playbooks.guards import Situation, evaluate_guards
from engine.playbooks.machine import Run, machine_for
from engine.playbooks.model import Playbook, TransitionSpec
from engine.store.db import Store, utcnow

__all__ = [
    "AdvanceResult",
    "TriggerInfo",
    "advance",
    "list_triggers",
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
