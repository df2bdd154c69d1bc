"""When each deadline rule of an incident is due: pure functions over the incident's data, no database.

:func:`plan_rules` turns a playbook's rules and a view of the incident (anchors, flags, facts, records,
grade) into one :class:`Plan` per deadline: whether it applies now and why not, the moment it starts,
its due time with the explain trail, and its warning moments. :mod:`engine.deadlines.sync` stores the plans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.clocks.calendars import Calendar
from engine.clocks.durations import DueResult, add_duration, format_instant, parse_duration
from engine.clocks.rules import DeadlineRule
from engine.errors import BadInput
from engine.legal.data import LegalData
from engine.legal.facts import GRADES
from engine.legal.jurisdictions import Jurisdictions

__all__ = ["IncidentView", "Plan", "PlanContext", "plan_rules", "warning_moments"]

POLICY_NOTE = "internal policy, not law"


@dataclass(frozen=True)
class IncidentView:
    """The parts of an incident that decide its deadlines."""

    anchors: dict[str, Any]
    flags: dict[str, Any]
    facts: dict[str, Any]
    records: dict[str, list[dict[str, Any]]]
    assessment: dict[str, Any]

    @classmethod
    def of(cls, incident: Any) -> IncidentView:
        """A view of an ``Incident`` row (copies, so later edits of the row do not leak in)."""
        return cls(
            anchors=dict(incident.anchors or {}),
            flags=dict(incident.flags or {}),
            facts=dict(incident.facts or {}),
            records={k: [dict(e) for e in v] for k, v in (incident.records or {}).items()},
            assessment=dict(incident.assessment or {}),
        )

    def grade(self) -> tuple[str | None, tuple[str, ...]]:
        """The higher of the assessed grade and a grade the operator recorded, and the ranking used.

        The assessment may not exist yet (no grade): then only a recorded grade counts.
        """
        order = tuple(self.assessment.get("grade_order") or GRADES)
        found = [g for g in (self.assessment.get("grade"), self.facts.get("recorded_grade")) if g in order]
        return (max(found, key=order.index) if found else None), order


@dataclass(frozen=True)
class PlanContext:
    """What planning needs beyond the incident: legal data, the zone, calendars, policy overrides."""

    legal: LegalData
    zone: str
    calendar: Callable[[str], Calendar]
    # settings.toml [deadlines.policy]: rule id -> duration, for internal targets only
    policy_durations: dict[str, str] = field(default_factory=dict)
    # config/legal/jurisdictions: the clocks of the places an incident touches (engine.clocks.intl)
    jurisdictions: Jurisdictions | None = None
    # or how to read them, called only for an incident that touches a place: reading the 14 files took
    # a third of a write command's time, for incidents that touch none
    load_jurisdictions: Callable[[], Jurisdictions] | None = None

    def jurisdiction_rules(self) -> Jurisdictions | None:
        """The jurisdiction rules, read on first use."""
        if self.jurisdictions is None and self.load_jurisdictions is not None:
            object.__setattr__(self, "jurisdictions", self.load_jurisdictions())
        return self.jurisdictions


@dataclass(frozen=True)
class Plan:
    """One deadline as the rules say it should be now."""

    rule: DeadlineRule
    subject: str  # "" for an incident-wide rule, "<list>#<number>" for a per-record one
    applies: bool
    why_not: str | None = None
    anchor: str | None = None
    start_at: datetime | None = None
    duration: str | None = None
    due: DueResult | None = None
    calendar_version: str = ""
    explain: list[str] = field(default_factory=list)
    warnings: list[tuple[str, datetime]] = field(default_factory=list)
    basis: dict[str, Any] = field(default_factory=dict)
    entry: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Identifies the deadline within its incident."""
        return self.rule.id, self.subject


def plan_rules(rules: list[DeadlineRule], view: IncidentView, ctx: PlanContext) -> list[Plan]:
    """Every deadline the rules give for the incident, applicable or not, in playbook order."""
    for rule in rules:
        if rule.id in ctx.policy_durations and rule.kind != "policy":
            raise BadInput(
                f"settings.toml [deadlines.policy] sets {rule.id}, a law rule: only internal POLICY- targets "
                "are configurable there"
            )
    plans: list[Plan] = []
    for rule in rules:
        if rule.record is None:
            plans.append(_plan_incident_rule(rule, view, ctx))
        else:
            for entry in view.records.get(rule.record.list, []):
                plans.append(_plan_record(rule, entry, view, ctx))
    return plans


def _basis(rule: DeadlineRule, ctx: PlanContext) -> dict[str, Any]:
    """The legal basis shown with the deadline: from the legal data for a ``legal:`` rule, else the rule."""
    article: str | None
    source: str | None
    verified: bool | None
    if rule.legal == "initial_report":
        legal = ctx.legal.initial_report
        if legal.id != rule.id:
            raise BadInput(
                f"deadline rule {rule.id} takes its figures from legal data rule {legal.id}: "
                "use the same id in the playbook"
            )
        article, source, verified = legal.article, legal.source, legal.verified
    else:
        article, source, verified = rule.basis, rule.source, rule.verified
    basis: dict[str, Any] = {
        "rule": rule.id,
        "kind": rule.kind,
        "article": article,
        "source": source,
        "verified": bool(verified),
    }
    if rule.kind == "policy":
        basis["note"] = POLICY_NOTE
    return basis


def _conditions(rule: DeadlineRule, view: IncidentView, ctx: PlanContext) -> str | None:
    """Why the rule does not apply now, or None when every condition holds."""
    when = rule.when
    minimum = when.grade_at_least
    if minimum is None and rule.legal == "initial_report":
        minimum = ctx.legal.initial_report.min_grade
    if minimum is not None:
        grade, order = view.grade()
        if grade is None:
            return f"no grade yet (applies from {minimum})"
        if minimum in order and order.index(grade) < order.index(minimum):
            return f"grade {grade} is below {minimum}"
    if when.operator_type is not None:
        operator = view.facts.get("operator_type") or "other"
        if operator not in when.operator_type:
            return f"operator_type {operator} is not {', '.join(when.operator_type)}"
    for flag in when.flag_clear:
        if view.flags.get(flag):
            return f"{flag} is set"
    for flag in when.flag_set:
        if not view.flags.get(flag):
            return f"{flag} is not set"
    return None


def _instant(value: Any, what: str) -> datetime:
    """A stored ISO time as aware UTC; anything else is refused with what it was."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise BadInput(f"{what} is not a time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _duration_text(rule: DeadlineRule, view: IncidentView, ctx: PlanContext) -> tuple[str, list[str]]:
    """The rule's duration and how it was chosen (legal data by operator type, settings, playbook)."""
    override = ctx.policy_durations.get(rule.id)
    if rule.legal == "initial_report":
        given = view.facts.get("operator_type")
        operator = given or "other"
        clock = ctx.legal.initial_report_clock(operator)
        note = "" if given else " (operator_type not recorded: other assumed)"
        return clock.duration, [
            f"operator_type {operator}{note}: {clock.duration} to {clock.recipient} "
            f"({clock.rule.id} {clock.rule.article}, {ctx.legal.files['reporting.yaml'].name})"
        ]
    if override is not None:
        parse_duration(override)  # a malformed setting is refused here, naming the value
        return override, [f"{override} from settings.toml [deadlines.policy] ({POLICY_NOTE})"]
    return str(rule.duration), []


def warning_moments(rule: DeadlineRule, start: datetime, due: datetime) -> list[tuple[str, datetime]]:
    """Warning moments strictly inside the window, earliest first."""
    window = due - start
    found: list[tuple[str, datetime]] = []
    for point in rule.warnings:
        if point.fraction is not None:
            at = start + window * point.fraction
        else:
            assert point.lead is not None  # a lead is in minutes, hours or days (deadline_rules checks)
            at = due - timedelta(**{point.lead.unit: point.lead.amount})
        if start < at < due:
            found.append((point.kind, at.replace(microsecond=0)))
    return sorted(found, key=lambda item: item[1])


def _plan_incident_rule(rule: DeadlineRule, view: IncidentView, ctx: PlanContext) -> Plan:
    """The one deadline of an incident-wide rule: conditions, then anchor, duration and calendar."""
    basis = _basis(rule, ctx)
    why_not = _conditions(rule, view, ctx)
    if why_not is not None:
        return Plan(rule, "", applies=False, why_not=why_not, basis=basis)
    anchor = next((name for name in rule.anchor if view.anchors.get(name)), None)
    if anchor is None:
        return Plan(rule, "", applies=False, why_not=f"{' / '.join(rule.anchor)} not recorded", basis=basis)
    start = _instant(view.anchors[anchor], f"anchor {anchor}")
    text, notes = _duration_text(rule, view, ctx)
    calendar = ctx.calendar(rule.calendar)
    due = add_duration(start, parse_duration(text), calendar, ctx.zone)
    explain = [f"{rule.id}: {text} from {anchor}", *notes, *due.explain]
    return Plan(
        rule,
        "",
        applies=True,
        anchor=anchor,
        start_at=start,
        duration=parse_duration(text).text,
        due=due,
        calendar_version=calendar.version if due.calendar != "none" else "none",
        explain=explain,
        warnings=warning_moments(rule, start, due.due_at),
        basis=basis,
    )


def _plan_record(rule: DeadlineRule, entry: dict[str, Any], view: IncidentView, ctx: PlanContext) -> Plan:
    """The deadline of one records entry: due at its own date, or a duration from when it was recorded."""
    assert rule.record is not None
    spec = rule.record
    subject = f"{spec.list}#{entry.get('number', '?')}"
    basis = {**_basis(rule, ctx), "ref": entry.get("ref")}
    why_not = _conditions(rule, view, ctx)
    if why_not is not None:
        return Plan(rule, subject, applies=False, why_not=why_not, basis=basis, entry=entry)
    start_value = entry.get(spec.start_field)
    if not start_value:
        raise BadInput(f"{subject} has no {spec.start_field}: deadline {rule.id} starts from it")
    start = _instant(start_value, f"{subject} {spec.start_field}")
    if spec.due_field is not None:
        due = _fixed_due(entry, spec.due_field, subject, ctx.zone)
        version, text = "none", None
    else:
        calendar = ctx.calendar(rule.calendar)
        due = add_duration(start, parse_duration(str(rule.duration)), calendar, ctx.zone)
        version = calendar.version if due.calendar != "none" else "none"
        text = parse_duration(str(rule.duration)).text
    ref = f" ({entry['ref']})" if entry.get("ref") else ""
    return Plan(
        rule,
        subject,
        applies=True,
        anchor=f"{spec.list}.{spec.start_field}",
        start_at=start,
        duration=text,
        due=due,
        calendar_version=version,
        explain=[f"{rule.id}: {subject}{ref}", *due.explain],
        warnings=warning_moments(rule, start, due.due_at),
        basis=basis,
        entry=entry,
    )


def _fixed_due(entry: dict[str, Any], name: str, subject: str, zone: str) -> DueResult:
    """The due time an entry carries; a bare date (local midnight) means 24:00 of that day."""
    value = entry.get(name)
    if not value:
        raise BadInput(f"{subject} has no {name}: the deadline takes its due date from it")
    due = _instant(value, f"{subject} {name}")
    local = due.astimezone(ZoneInfo(zone))
    explain = [f"due date from the record: {format_instant(due, zone)}"]
    if local.time() == time(0):
        # Flow inputs read "2026-12-20" as its first instant; a date as a limit means the whole day.
        day = local.date()
        due = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
        explain.append(f"{day} given as a date: due at 24:00 of that day (Civil Code Art 203)")
    explain.append(f"due {format_instant(due, zone)}; a fixed date is not moved for rest days")
    return DueResult(due_at=due, provisional=False, calendar="none", explain=explain)
