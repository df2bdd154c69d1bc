"""What now: the few things an operator under pressure must see about an incident, computed from the
read model (``Reader.incident``), with no database, CLI or web library.

Every write command ends with this block and ``breach incident show`` starts with it: the state, the
nearest running clock with its countdown, every overdue clock, the required tasks still open and the
next command(s) to type. The rendering lives with the CLI; this module only decides what to say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from engine.clocks.durations import format_countdown
from engine.playbooks.labels import label_of

__all__ = ["OWED", "RUNNING", "ClockNow", "TaskNow", "WhatNow", "clock_now", "what_now"]

RUNNING = ("pending", "warned")
"""A clock that still counts down."""
OWED = ("pending", "warned", "missed")
"""A clock not met, waived or void: once past due it is overdue."""
MAX_TASK_COMMANDS = 3
"""More ``task done`` lines than this hide the rest of the block; the task list names them all."""


def _utc(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return dict(value or {})


@dataclass(frozen=True)
class ClockNow:
    """A clock as the summary shows it: which rule, what it asks, when due and how long is left."""

    rule: str
    subject: str | None
    label: str
    status: str
    due_at: datetime
    remaining_seconds: int
    countdown: str
    article: str

    @property
    def overdue(self) -> bool:
        """Past due and still owed."""
        return self.remaining_seconds <= 0


@dataclass(frozen=True)
class TaskNow:
    """A required task still open; ``ahead`` when it belongs to a phase other than the current one."""

    key: str
    label: str
    phase_state: str
    ahead: bool


@dataclass(frozen=True)
class WhatNow:
    """The summary of one incident at one moment."""

    incident_id: str
    state: str
    state_label: str
    final: bool
    grade: str | None
    facts_given: bool
    nearest: ClockNow | None
    overdue: list[ClockNow]
    open_tasks: list[TaskNow]
    next_commands: list[str] = field(default_factory=list)

    def to_json(self, iso: Any) -> dict[str, Any]:
        """As JSON; ``iso`` turns a moment into ISO-8601 in the workspace zone."""

        def clock(c: ClockNow) -> dict[str, Any]:
            return {
                "rule": c.rule,
                "subject": c.subject,
                "label": c.label,
                "status": c.status,
                "due_at": iso(c.due_at),
                "remaining_seconds": c.remaining_seconds,
                "countdown": c.countdown,
                "overdue": c.overdue,
            }

        return {
            "id": self.incident_id,
            "state": self.state,
            "state_label": self.state_label,
            "final": self.final,
            "grade": self.grade,
            "nearest_deadline": clock(self.nearest) if self.nearest else None,
            "overdue": [clock(c) for c in self.overdue],
            "open_tasks": [
                {"id": t.key, "label": t.label, "phase_state": t.phase_state, "ahead": t.ahead}
                for t in self.open_tasks
            ],
            "next": list(self.next_commands),
        }


def clock_now(d: dict[str, Any], now: datetime | None = None) -> ClockNow:
    """A stored deadline row as a clock of the summary, its countdown from ``now``."""
    now = now or datetime.now(UTC)
    due = _utc(d["due_at"])
    assert due is not None, "a stored deadline always has a due time"
    left = due - now
    basis = d.get("basis") or {}
    if isinstance(basis, str | bytes):
        basis = json.loads(basis)
    return ClockNow(
        rule=str(d.get("rule_id") or d.get("rule")),
        subject=d.get("subject") or None,
        label=_labels(d.get("labels")).get("zh-CN", ""),
        status=str(d["status"]),
        due_at=due,
        remaining_seconds=int(left.total_seconds()),
        countdown=format_countdown(left),
        article=str(basis.get("article") or ""),
    )


def _has_facts(facts: dict[str, Any]) -> bool:
    """Whether any figure or flag was recorded. Defaults say nothing: zero counts, false flags, empty
    lists, and category words such as ``operator_type`` (which has a default of its own)."""
    for value in facts.values():
        if isinstance(value, dict):
            if _has_facts(value):
                return True
        elif isinstance(value, bool):
            if value:
                return True
        elif isinstance(value, int | float):
            if value > 0:
                return True
        elif isinstance(value, list) and value:
            return True
    return False


def what_now(
    row: dict[str, Any], now: datetime | None = None, *, allowed: list[str] | None = None
) -> WhatNow:
    """The summary of ``row`` (from ``Reader.incident``) at ``now``.

    ``allowed`` are the triggers that may fire now, when the caller knows them (write commands do);
    without them the next command is ``breach incident triggers``, which says.
    """
    moment = now or datetime.now(UTC)
    labels = row.get("labels") or {}
    incident_id = str(row["id"])
    state = str(row["state"])
    final = bool(labels.get("states", {}).get(state, {}).get("final")) or row.get("closed_at") is not None
    owed = [clock_now(d, moment) for d in row.get("deadlines", []) if d["status"] in OWED]
    overdue = sorted((c for c in owed if c.overdue), key=lambda c: c.due_at)
    running = sorted((c for c in owed if not c.overdue and c.status in RUNNING), key=lambda c: c.due_at)
    tasks = [
        TaskNow(t["key"], label_of(labels, "tasks", t["key"]), t["state_id"], t["state_id"] != state)
        for t in row.get("tasks", [])
        if t["status"] == "open" and t["required"]
    ]
    # The current phase's tasks first: they are the ones ``task done`` accepts now.
    tasks.sort(key=lambda t: t.ahead)
    assessment = row.get("assessment") or {}
    summary = WhatNow(
        incident_id=incident_id,
        state=state,
        state_label=label_of(labels, "states", state),
        final=final,
        grade=assessment.get("grade"),
        facts_given=_has_facts(row.get("facts") or {}),
        nearest=running[0] if running else None,
        overdue=overdue,
        open_tasks=tasks,
    )
    return replace(summary, next_commands=_next(summary, allowed))


def _next(s: WhatNow, allowed: list[str] | None) -> list[str]:
    """The commands to type next, most pressing first."""
    if s.final:
        return [f"breach audit verify {s.incident_id}"]
    commands: list[str] = []
    if not s.facts_given:
        commands.append(f"breach incident facts {s.incident_id} --set people_affected=N --set records.KIND=N")
    current = [t for t in s.open_tasks if not t.ahead]
    commands += [f"breach task done {s.incident_id} {t.key}" for t in current[:MAX_TASK_COMMANDS]]
    if len(current) > MAX_TASK_COMMANDS:
        commands.append(f"(and {len(current) - MAX_TASK_COMMANDS} more task(s) of this phase, listed above)")
    if not current:
        if allowed:
            commands += [f"breach incident advance {s.incident_id} {t}" for t in allowed]
        else:
            commands.append(f"breach incident triggers {s.incident_id}")
    if s.overdue:
        commands.append(f"breach deadlines list --incident {s.incident_id}")
    return commands
