"""Replaying an incident's audit trail and comparing what it implies with the stored rows.

The hash chain proves the events were not changed; it says nothing about the incident row, its tasks or
its deadlines, which an insider with write access could edit directly (``UPDATE incident SET
state='closed'``). Every change breach makes to those rows is recorded as an event with enough detail to
redo it, so walking the events from the start rebuilds the state, facts, grade, flags, records and task
statuses they imply, and which deadlines were waived. Any stored value that differs is reported with both
values; a trail that cannot be replayed (a step from a state the incident was not in, an unknown kind of
event) is reported too.

A deadline marked met names what met it (``task:X``, ``trigger:Y``, ``filing:RULE:clock`` or ``<record>
closed``); the replay keeps every moment each of those happened, so a row set to met by SQL without the
event that meets it, or whose ``met_at`` or lateness was changed, is reported. A missed deadline must have
been missed at or after its due time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from engine.deadlines.tables import Deadline
from engine.incidents.repository import incident_playbook
from engine.incidents.tables import Event, Incident, Task
from engine.legal.facts import flatten_facts
from engine.playbooks.effects import Mutable, apply_effects
from engine.playbooks.model import Playbook

__all__ = ["KINDS_WITHOUT_ROW_CHANGES", "Difference", "Replayed", "replay_events", "row_differences"]

# Steps that record work done around the incident (documents, notices, exports, acknowledgements) and
# change none of the rows compared here: replaying them checks that they happened in the state the
# incident was in, and nothing more.
KINDS_WITHOUT_ROW_CHANGES = frozenset(
    {
        "notices_rendered",
        "notices_recorded",
        "deliveries_resolved",
        "notices_sent",
        "notice_content_set",
        "notice_corrected",
        "report_data",
        "documents_produced",
        "responsible_recorded",
        "exported",
        "deadline_recomputed",
        "deadline_acknowledged",  # stops a missed deadline's alerts; its status stays missed
        "investigated",
        "approval_requested",
        "delivered",
        "bounced",
        "returned",
        "recorded",
    }
)


@dataclass(frozen=True)
class Difference:
    """One value the stored rows hold that the audit trail does not imply."""

    incident_id: str
    field: str
    stored: Any
    implied: Any

    def describe(self) -> str:
        """One line for the operator: the incident, the field and both values."""
        return (
            f"{self.incident_id}: {self.field} is {self.stored!r} "
            f"but the audit trail implies {self.implied!r}"
        )


@dataclass
class Replayed:
    """What the events of one incident imply."""

    state: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    grade: str | None = None
    grade_known: bool = True
    flags: dict[str, Any] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    waived: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    final: bool = False
    problems: list[tuple[str, Any, Any]] = field(default_factory=list)
    # What can meet a deadline, and every moment it happened: "task:X", "trigger:Y", "filing:KEY".
    moments: dict[str, list[datetime]] = field(default_factory=dict)

    def happened(self, what: str, at: datetime) -> None:
        """Note that ``what`` (a task done, a trigger fired, a filing recorded) happened at ``at``."""
        times = self.moments.setdefault(what, [])
        if at not in times:
            times.append(at)


def _filings(replayed: Replayed) -> None:
    """Note each filing time the facts now hold (``filings.<RULE:clock>.at``)."""
    for key, value in replayed.facts.items():
        if key.startswith("filings.") and key.endswith(".at") and value:
            try:
                replayed.happened(f"filing:{key[len('filings.') : -len('.at')]}", _utc(value))
            except (TypeError, ValueError):
                continue  # not a time: the facts comparison names the field if it differs


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _enter(replayed: Replayed, playbook: Playbook, state_id: str) -> None:
    # As the flow does: a task that opens early and was seen already keeps its status, and the later
    # tasks that open with this state open (again).
    for spec in playbook.state(state_id).tasks:
        if spec.opens is not None and spec.id in replayed.tasks:
            continue
        replayed.tasks[spec.id] = "open"
    for home, spec in playbook.early_tasks():
        if spec.opens is not None and spec.opens.state == state_id and home.id != state_id:
            replayed.tasks[spec.id] = "open"


def _apply_facts(replayed: Replayed, ev: Event) -> None:
    changed = (ev.inputs or {}).get("changed") or {}
    for key, change in changed.items():
        value = change.get("to") if isinstance(change, dict) else None
        if value is None:
            replayed.facts.pop(key, None)
        else:
            replayed.facts[key] = value
    grade = (ev.inputs or {}).get("grade")
    if isinstance(grade, dict):
        replayed.grade, replayed.grade_known = grade.get("to"), True


def _apply_trigger(replayed: Replayed, playbook: Playbook, ev: Event) -> None:
    label = f"event #{ev.seq} ({ev.trigger})"
    spec = playbook.transition(str(ev.trigger), str(ev.from_state))
    if spec is None:
        replayed.problems.append((label, ev.trigger, f"no such step from {ev.from_state}"))
        return
    inputs = {k: v for k, v in (ev.inputs or {}).items() if k != "effects"}
    mutable = Mutable(
        flags=replayed.flags,
        anchors={},
        records=replayed.records,
        at=ev.at,
        actor=ev.actor,
        inputs=inputs,
        reason=ev.reason,
    )
    try:
        done = apply_effects(spec.effects, mutable)
    except Exception as exc:  # an effect that cannot be redone means the trail does not fit the playbook
        replayed.problems.append((f"{label} effects", str(exc), "effects that can be redone"))
        return
    recorded = (ev.inputs or {}).get("effects") or []
    if done != recorded:
        replayed.problems.append((f"{label} effects", recorded, done))
    if not spec.internal and spec.dest:
        _enter(replayed, playbook, spec.dest)
        replayed.state = spec.dest


def replay_events(playbook: Playbook, events: Iterable[Event]) -> Replayed:
    """Redo each event in order on an empty incident and return what the trail implies.

    A task the playbook opens early on a clock or an anchor opens without an event of its own: the
    replay cannot tell when, so such a task may be found open (or done) before its state.
    """
    replayed = Replayed()
    early = {spec.id for _home, spec in playbook.early_tasks()}
    for ev in events:
        inputs = ev.inputs or {}
        # When the step really happened (``--at``), as the deadline it meets records it.
        happened_at = _utc(ev.occurred_at or ev.at)
        if ev.kind == "trigger" and ev.trigger:
            replayed.happened(f"trigger:{ev.trigger}", happened_at)
        if ev.kind != "opened" and ev.from_state != replayed.state:
            replayed.problems.append(
                (f"event #{ev.seq} ({ev.kind}) from state", ev.from_state, replayed.state)
            )
        if ev.kind == "opened":
            replayed.state = ev.to_state
            replayed.facts = flatten_facts(dict(inputs.get("facts") or {}))
            if "grade" in inputs:
                replayed.grade, replayed.grade_known = inputs["grade"], True
            else:
                # Trails written before the opening grade was recorded: an incident opened without
                # facts has none; with facts, the grade is known again at its next change.
                replayed.grade_known = not inputs.get("facts")
            if ev.to_state:
                _enter(replayed, playbook, ev.to_state)
            _filings(replayed)
        elif ev.kind == "trigger":
            _apply_trigger(replayed, playbook, ev)
        elif ev.kind == "task_done":
            task = str(inputs.get("task"))
            if replayed.tasks.get(task) != "open" and task not in early:
                replayed.problems.append((f"event #{ev.seq} task {task}", replayed.tasks.get(task), "open"))
            replayed.tasks[task] = "done"
            replayed.happened(f"task:{task}", happened_at)
        elif ev.kind == "facts":
            _apply_facts(replayed, ev)
            _filings(replayed)
        elif ev.kind == "people_imported":
            # Residents by country (the people file's country column) add to the incident's facts.
            for code, number in (inputs.get("residents") or {}).items():
                resident_key = f"residents.{code}"
                replayed.facts[resident_key] = int(replayed.facts.get(resident_key) or 0) + int(number)
        elif ev.kind == "deadline_waived":
            key = (str(inputs.get("rule")), str(inputs.get("subject") or ""))
            replayed.waived[key] = {"approver": inputs.get("approver"), "reason": ev.reason}
        elif ev.kind not in KINDS_WITHOUT_ROW_CHANGES:
            replayed.problems.append((f"event #{ev.seq} kind", ev.kind, "a kind of step breach records"))
        if ev.kind != "opened" and ev.to_state != replayed.state:
            replayed.problems.append((f"event #{ev.seq} ({ev.kind}) to state", ev.to_state, replayed.state))
    if replayed.state is not None:
        replayed.final = playbook.state(replayed.state).final
    return replayed


def _comparable(value: Any) -> Any:
    """Values as JSON would hold them, so a datetime and its ISO text compare equal."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def row_differences(session: Session, incident: Incident) -> list[Difference]:
    """Every stored value of the incident, its tasks and deadlines that its audit trail does not imply."""
    events = session.exec(select(Event).where(Event.incident_id == incident.id).order_by(Event.seq))  # type: ignore[arg-type]
    playbook = incident_playbook(session, incident).playbook
    replayed = replay_events(playbook, events)
    found = [Difference(incident.id, what, stored, implied) for what, stored, implied in replayed.problems]

    def differ(name: str, stored: Any, implied: Any) -> None:
        if _comparable(stored) != _comparable(implied):
            found.append(Difference(incident.id, name, stored, implied))

    differ("state", incident.state, replayed.state)
    differ("closed", incident.closed_at is not None, replayed.final)
    stored_facts = {k: v for k, v in flatten_facts(dict(incident.facts or {})).items() if v is not None}
    for key in sorted(stored_facts.keys() | replayed.facts.keys()):
        differ(f"facts.{key}", stored_facts.get(key), replayed.facts.get(key))
    if replayed.grade_known:
        differ("assessment.grade", (incident.assessment or {}).get("grade"), replayed.grade)
    stored_flags = dict(incident.flags or {})
    for key in sorted(stored_flags.keys() | replayed.flags.keys()):
        differ(f"flags.{key}", stored_flags.get(key), replayed.flags.get(key))
    stored_records = dict(incident.records or {})
    for key in sorted(stored_records.keys() | replayed.records.keys()):
        differ(f"records.{key}", stored_records.get(key), replayed.records.get(key))
    tasks = {t.key: t.status for t in session.exec(select(Task).where(Task.incident_id == incident.id))}
    early = {spec.id for _home, spec in playbook.early_tasks()}
    for key in sorted(tasks.keys() | replayed.tasks.keys()):
        if key in early and replayed.tasks.get(key) is None and tasks.get(key) == "open":
            continue  # opened early by its clock or anchor, which no event records
        differ(f"task {key}", tasks.get(key), replayed.tasks.get(key))
    deadlines = session.exec(select(Deadline).where(Deadline.incident_id == incident.id))
    for row in sorted(deadlines, key=lambda r: (r.rule_id, r.subject)):
        name = f"deadline {row.rule_id}" + (f" {row.subject}" if row.subject else "")
        waiver = replayed.waived.get((row.rule_id, row.subject))
        if row.status == "waived" or waiver is not None:
            differ(f"{name} status", row.status, "waived" if waiver is not None else "not waived")
        if row.status == "waived" and waiver is not None:
            differ(f"{name} approver", row.waiver_approver, waiver["approver"])
        found += [
            Difference(incident.id, f"{name} {what}", stored, implied)
            for what, stored, implied in _settled(row, replayed)
        ]
    return found


def _closed_moments(replayed: Replayed, subject: str) -> list[datetime]:
    """When the record entry ``<list>#<number>`` was closed, as the trail leaves it."""
    listed, _, number = subject.partition("#")
    return [
        _utc(entry["closed_at"])
        for entry in replayed.records.get(listed) or []
        if str(entry.get("number")) == number and entry.get("closed_at")
    ]


def _settled(row: Deadline, replayed: Replayed) -> list[tuple[str, Any, Any]]:
    """What is wrong with a deadline's met or missed status, given what happened in the trail."""
    problems: list[tuple[str, Any, Any]] = []
    if row.status == "met":
        what = row.met_by or ""
        moments = (
            _closed_moments(replayed, row.subject)
            if row.subject and what == f"{row.subject} closed"
            else replayed.moments.get(what, [])
        )
        if not moments:
            problems.append(("status", f"met by {what or 'nothing named'}", "not met: no event meets it"))
        elif row.met_at is None or _utc(row.met_at) not in moments:
            shown = row.met_at.isoformat() if row.met_at else None
            problems.append(("met_at", shown, " or ".join(m.isoformat() for m in moments)))
        elif row.lateness_seconds != max(0, int((_utc(row.met_at) - _utc(row.due_at)).total_seconds())):
            implied = max(0, int((_utc(row.met_at) - _utc(row.due_at)).total_seconds()))
            problems.append(("lateness_seconds", row.lateness_seconds, implied))
    if row.status == "missed" and (row.missed_at is None or _utc(row.missed_at) < _utc(row.due_at)):
        shown = row.missed_at.isoformat() if row.missed_at else None
        problems.append(("missed_at", shown, f"at or after its due time {_utc(row.due_at).isoformat()}"))
    return problems
