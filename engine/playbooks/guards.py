"""The allow-list of guards a playbook may put on a transition.

A playbook names a guard (``required_tasks_done``) or a guard with one parameter
(``{fact_present: people_affected}``); it can never name Python code. Each guard answers in words why a
transition is blocked, so the operator sees the reason rather than a bare "not allowed".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.access import same_person

if TYPE_CHECKING:
    from engine.access import RoleMap
    from engine.playbooks.model import Playbook

__all__ = ["GUARDS", "ROLE_GUARDS", "GuardDef", "Situation", "evaluate_guards", "roles_required"]


@dataclass
class Situation:
    """What guards may look at: the incident as it stands plus the attempt being made."""

    state: str
    tasks: dict[str, str]
    flags: dict[str, Any]
    anchors: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    facts: dict[str, Any]
    actor: str
    inputs: dict[str, Any] = field(default_factory=dict)
    grade: str | None = None
    grade_order: tuple[str, ...] = ()
    role_map: RoleMap | None = None


GuardCheck = Callable[[Situation, Any, "Playbook"], str | None]


@dataclass(frozen=True)
class GuardDef:
    """One allowed guard: its parameter kind, a description for docs, and its check."""

    name: str
    param: str | None
    description: str
    check: GuardCheck


def _required_tasks_done(sit: Situation, _param: Any, playbook: Playbook) -> str | None:
    state = playbook.state(sit.state)
    missing = [t for t in state.tasks if t.required and sit.tasks.get(t.id) != "done"]
    if not missing:
        return None
    names = ", ".join(f"{t.id} ({t.label('zh-CN')})" for t in missing)
    return f"required tasks not done: {names}"


def _task_not_done(sit: Situation, param: Any, playbook: Playbook) -> str | None:
    if sit.tasks.get(str(param)) != "done":
        return None
    label = playbook.task(str(param))[1].label("zh-CN")
    return f"task {param} ({label}) is done already, so this step no longer applies"


def _fact_present(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    value: Any = sit.facts
    for part in str(param).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or value == [] or value == {}:
        return f"fact {param!r} is not recorded (breach incident facts ID --set {param}=...)"
    return None


def _flag_set(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    return None if sit.flags.get(param) else f"{param.replace('_', ' ')} has not happened"


def _flag_clear(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    return f"{param.replace('_', ' ')} is in force" if sit.flags.get(param) else None


def _anchor_set(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    return None if sit.anchors.get(param) else f"{param} has not been recorded"


def _records_closed(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    still_open = [r for r in sit.records.get(param, []) if r.get("status", "open") == "open"]
    if not still_open:
        return None
    refs = ", ".join(str(r.get("ref") or r.get("order_ref") or "?") for r in still_open)
    return f"{param.replace('_', ' ')} still open: {refs}"


def _approver_not_actor(sit: Situation, _param: Any, _playbook: Playbook) -> str | None:
    approver = str(sit.inputs.get("approver") or "").strip()
    if approver and same_person(approver, sit.actor):
        return f"the approver must be someone other than the operator ({sit.actor})"
    return None


def _grade_at_least(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    order = sit.grade_order
    current = sit.grade or "none"
    if param in order and current in order and order.index(current) >= order.index(param):
        return None
    return f"incident grade is {current}, this step needs {param} or above"


def _role(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    if sit.role_map is None or sit.role_map.holds(sit.actor, str(param)):
        return None
    hint = sit.role_map.how_to_grant(sit.actor, [str(param)])
    return f"{sit.actor} does not hold the role {param!r} ({hint})"


def _approver_role(sit: Situation, param: Any, _playbook: Playbook) -> str | None:
    approver = str(sit.inputs.get("approver") or "").strip()
    if not approver or sit.role_map is None or sit.role_map.holds(approver, str(param)):
        return None
    hint = sit.role_map.how_to_grant(approver, [str(param)])
    return f"the approver {approver} does not hold the role {param!r} ({hint})"


ROLE_GUARDS = ("role", "approver_role")
"""The guards whose parameter is a role someone must hold."""


def roles_required(playbook: Playbook) -> set[str]:
    """Every role a playbook's steps require of the operator or of the approver."""
    found: set[str] = set()
    for spec in playbook.transitions:
        found.update(str(role) for role in spec.roles)
        found.update(str(param) for name, param in spec.guards if name in ROLE_GUARDS)
    return found


GUARDS: dict[str, GuardDef] = {
    g.name: g
    for g in (
        GuardDef(
            "required_tasks_done",
            None,
            "every required task of the current state is done",
            _required_tasks_done,
        ),
        GuardDef("fact_present", "fact", "the named fact has a value", _fact_present),
        GuardDef(
            "task_not_done", "task", "the named task is not done (a step it makes moot)", _task_not_done
        ),
        GuardDef("flag_set", "name", "the named flag was set by an earlier step", _flag_set),
        GuardDef("flag_clear", "name", "the named flag is not set", _flag_clear),
        GuardDef("anchor_set", "name", "the named moment (e.g. contained_at) is recorded", _anchor_set),
        GuardDef("records_closed", "name", "no record of the named list is still open", _records_closed),
        GuardDef("approver_not_actor", None, "the named approver is not the operator", _approver_not_actor),
        GuardDef(
            "grade_at_least", "grade", "the incident's grade is at least the given one", _grade_at_least
        ),
        GuardDef("role", "role", "the operator holds the given role", _role),
        GuardDef("approver_role", "role", "the named approver holds the given role", _approver_role),
    )
}


def evaluate_guards(specs: list[tuple[str, Any]], sit: Situation, playbook: Playbook) -> list[str]:
    """Run every guard (not just up to the first failure) and return the failures in words."""
    failures = []
    for name, param in specs:
        message = GUARDS[name].check(sit, param, playbook)
        if message:
            failures.append(message)
    return failures
