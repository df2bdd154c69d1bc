"""The clocks of jurisdiction rules (``config/legal/jurisdictions``): for one anchor time, or for an incident.

Pure functions over the rules and an incident's data. :func:`rule_clocks` answers ``breach clock add
--rule``: every clock of one rule from one moment (a clock that starts after an earlier report is
counted from that report's own due time, and says so). :func:`plan_jurisdictions` gives an incident one
:class:`~engine.clocks.plan.Plan` per clock of every rule of the places it touches, which
:mod:`engine.deadlines.sync` stores beside the playbook's own deadlines, so the same warnings,
escalation and ``deadlines list`` apply.

What an incident records for these clocks (all in its facts, each change audited):
``countries`` and ``residents`` (places and counts; the people import fills ``residents``),
``entity_types``, the anchor moments (``aware_at``, ``determined_at``...), ``determinations`` (a yes or
no with the operator's reason and when it was recorded) and ``filings`` (``RULE:clock`` -> when the
report went out, which meets the clock and starts the ones that follow it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.clocks.calendars import Calendar
from engine.clocks.conditions import describe_condition, incident_countries, why_not
from engine.clocks.durations import DueResult, add_duration, format_instant, parse_duration
from engine.clocks.plan import IncidentView, Plan, PlanContext, warning_moments
from engine.clocks.rules import DeadlineRule, MetBy, parse_warning
from engine.errors import BadInput
from engine.legal.jurisdictions import (
    Clock,
    Jurisdiction,
    JurisdictionRule,
    Jurisdictions,
    Relief,
    load_jurisdictions,
)

__all__ = [
    "RuleClock",
    "basis_of",
    "describe_condition",
    "incident_countries",
    "load_rules",
    "plan_jurisdictions",
    "relieve",
    "rule_clocks",
    "why_not",
    "year_end",
]

TARGET_NOTE = "the law gives no number of hours or days: an internal target, not law"
GUIDELINE_NOTE = "the figure comes from the regulator's guidance, not the statute"


def load_rules(config_dirs: list[Path]) -> Jurisdictions:
    """The jurisdiction files in force, with every duration and warning checked (naming the file)."""
    data = load_jurisdictions(config_dirs)
    for name, jurisdiction in data.files.items():
        for rule in jurisdiction.rules:
            for clock in rule.clocks:
                texts = [clock.duration, *clock.duration_for.values()]
                texts += [clock.cap.duration] if clock.cap else []
                try:
                    for text in texts:
                        parse_duration(text)
                    for warning in clock.warnings:
                        parse_warning(warning)
                except (BadInput, ValueError) as exc:
                    raise BadInput(f"{data.paths[name]}: {rule.id} clock {clock.id}: {exc}") from None
    return data


def basis_of(jurisdiction: Jurisdiction, rule: JurisdictionRule, clock: Clock) -> dict[str, Any]:
    """What a deadline shows as its legal basis: rule, clock, article, source, verified and wording."""
    basis: dict[str, Any] = {
        "rule": rule.id,
        "clock": clock.id,
        "kind": "policy" if clock.kind == "target" else "law",
        "jurisdiction": jurisdiction.jurisdiction,
        "article": rule.article,
        "source": rule.source,
        "verified": rule.clock_verified(clock),
        "wording": clock.wording,
        "recipient": clock.recipient,
        "starts": clock.starts.describe(),
    }
    if clock.kind == "target":
        basis["note"] = TARGET_NOTE
    elif clock.kind == "guideline":
        basis["note"] = GUIDELINE_NOTE
    return basis


@dataclass(frozen=True)
class RuleClock:
    """One clock of a rule computed from one anchor time (``breach clock add --rule``)."""

    rule: str
    clock: str
    label: str
    due: DueResult
    basis: dict[str, Any]
    condition: list[str] = field(default_factory=list)


def _duration(clock: Clock, entity_types: list[str]) -> tuple[str, list[str]]:
    """The clock's duration, or the one its rule gives an entity type the incident declares."""
    for entity, text in clock.duration_for.items():
        if entity in entity_types:
            return text, [f"{text} instead of {clock.duration}: entity type {entity}"]
    return clock.duration, []


def _compute(
    clock: Clock,
    text: str,
    start: datetime,
    cap_start: datetime | None,
    calendar: Callable[[str], Calendar],
    zone: str,
) -> DueResult:
    """The due time of ``text`` from ``start``; with a cap, the earlier of the two, both explained."""
    due = add_duration(start, parse_duration(text), calendar(clock.calendar), zone)
    if clock.cap is None or cap_start is None:
        return due
    capped = add_duration(cap_start, parse_duration(clock.cap.duration), calendar(clock.calendar), zone)
    winner = capped if capped.due_at < due.due_at else due
    line = (
        f"the earlier of {text} ({format_instant(due.due_at, zone)}) and {clock.cap.duration} from "
        f"{' / '.join(clock.cap.anchor)} ({format_instant(capped.due_at, zone)}) applies"
    )
    return DueResult(
        due_at=winner.due_at,
        provisional=due.provisional or capped.provisional,
        calendar=winner.calendar,
        explain=[*due.explain, *[f"cap: {x}" for x in capped.explain], line],
    )


def year_end(start: datetime, zone: str) -> tuple[datetime, str]:
    """The last moment of ``start``'s calendar year in ``zone`` (a whole second), and a line saying so.

    Counting days from 31 December 23:59:59 leaves that day uncounted, so "60 days after the end of the
    year" ends with the 60th day of the new year: 1 March, or 29 February in a leap year.
    """
    local = start.astimezone(ZoneInfo(zone))
    end = datetime(local.year, 12, 31, 23, 59, 59, tzinfo=local.tzinfo).astimezone(UTC)
    return end, f"counted from the end of {local.year}, the calendar year of the anchor ({zone})"


def relieve(
    due: DueResult,
    relief: Relief,
    jurisdiction: Jurisdiction,
    facts: dict[str, Any],
    calendar: Callable[[str], Calendar],
) -> DueResult:
    """``due`` moved to ``relief.by`` of the next working day when it falls on a rest day of the state
    the entity is established in; otherwise ``due`` with a line saying why it stays."""
    excluded = [e for e in relief.unless_entity_types if e in (facts.get("entity_types") or [])]
    unverified = "" if relief.verified else "; unverified"
    if excluded:
        return _noted(due, f"no rest-day relief for entity type {excluded[0]} ({relief.article}{unverified})")
    place = facts.get("established_in")
    if not place:
        return _noted(
            due,
            f"rest-day relief not applied: {relief.wording} ({relief.article}{unverified}); record where the "
            "entity is established to apply it: breach incident facts ID --set established_in=DE",
        )
    zone = jurisdiction.zone_of(str(place))
    country = calendar(str(place).split("-")[0])
    # A period ending at 24:00 falls on the day before the midnight it is stored as.
    day = (due.due_at.astimezone(ZoneInfo(zone)) - timedelta(microseconds=1)).date()
    if country.is_working_day(day):
        return _noted(due, f"falls on {day}, a working day in {place}: no rest-day relief needed")
    later = day + timedelta(days=1)
    while not country.is_working_day(later):
        later += timedelta(days=1)
    hour, minute = (int(part) for part in relief.by.split(":"))
    moved = datetime(later.year, later.month, later.day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    line = (
        f"falls on {day}, a rest day in {place} ({country.rest_reason(day)}): {relief.wording}, so due "
        f"{format_instant(moved, zone)} ({relief.article}{unverified})"
    )
    return DueResult(
        due_at=moved,
        provisional=due.provisional or not country.is_announced(later.year),
        calendar=due.calendar,
        explain=[*due.explain, line],
    )


def _noted(due: DueResult, line: str) -> DueResult:
    return DueResult(due.due_at, due.provisional, due.calendar, [*due.explain, line])


def rule_clocks(
    jurisdiction: Jurisdiction,
    rule: JurisdictionRule,
    start: datetime,
    calendar: Callable[[str], Calendar],
    *,
    entity_types: list[str] | None = None,
) -> list[RuleClock]:
    """Every clock of ``rule`` when all its anchors and determinations fall at ``start``.

    A clock that starts after an earlier report counts from that report's due time (the latest it may
    be made); its explain trail says so. Conditions are not evaluated: they are listed with the clock.
    """
    zone = jurisdiction.zone
    dues: dict[str, datetime] = {}
    found: list[RuleClock] = []
    for clock in rule.clocks:
        text, notes = _duration(clock, entity_types or [])
        begin = start
        if clock.starts.at_end_of:
            begin, line = year_end(start, zone)
            notes.append(line)
        if clock.starts.after:
            begin = dues[clock.starts.after]
            notes.append(
                f"starts when the {clock.starts.after} report is made: counted from its due time "
                f"{format_instant(begin, zone)}, the latest it may be made"
            )
        due = _compute(clock, text, begin, start, calendar, zone)
        if clock.relief is not None:
            facts = {"entity_types": entity_types or []}
            due = relieve(due, clock.relief, jurisdiction, facts, calendar)
        dues[clock.id] = due.due_at
        condition = describe_condition(rule.when) if rule.when else []
        condition += describe_condition(clock.when) if clock.when else []
        explain = [f"{rule.id} {clock.id}: {text} from {clock.starts.describe()}", *notes, *due.explain]
        found.append(
            RuleClock(
                rule=rule.id,
                clock=clock.id,
                label=clock.label,
                due=DueResult(due.due_at, due.provisional, due.calendar, explain),
                basis=basis_of(jurisdiction, rule, clock),
                condition=condition,
            )
        )
    return found


def _anchor(names: list[str], view: IncidentView) -> tuple[str, str] | None:
    """The first of ``names`` recorded, from the facts (operator) or the incident's anchors (steps)."""
    for name in names:
        value = view.facts.get(name) or view.anchors.get(name)
        if value:
            return name, str(value)
    return None


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _deadline_rule(rule: JurisdictionRule, clock: Clock) -> DeadlineRule:
    """The deadline-rule shape sync stores and the checker warns on; met by the clock's filing."""
    label = f"{clock.label} ({rule.id})"
    return DeadlineRule.model_construct(
        id=rule.id,
        kind="policy" if clock.kind == "target" else "law",
        labels={"zh-CN": label, "en": label},
        anchor=[],
        calendar=clock.calendar,
        met_by=[MetBy(filing=f"{rule.id}:{clock.id}")],
        warnings=[parse_warning(w) for w in clock.warnings],
        record=None,
    )


def _start(rule: JurisdictionRule, clock: Clock, view: IncidentView) -> tuple[str, datetime] | str:
    """Where the clock starts for the incident, or why it has not started."""
    if clock.starts.after:
        filing = (view.facts.get("filings") or {}).get(f"{rule.id}:{clock.starts.after}")
        if not isinstance(filing, dict) or not filing.get("at"):
            return f"starts when the {clock.starts.after} report is filed"
        return f"filing {rule.id}:{clock.starts.after}", _instant(str(filing["at"]))
    if clock.starts.determination:
        entry = (view.facts.get("determinations") or {}).get(clock.starts.determination)
        if not isinstance(entry, dict) or entry.get("value") is not True:
            return f"{clock.starts.determination} not determined yes"
        return f"determination {clock.starts.determination}", _instant(str(entry["at"]))
    found = _anchor(clock.starts.anchor, view)
    if found is None:
        return f"{' / '.join(clock.starts.anchor)} not recorded"
    return found[0], _instant(found[1])


def plan_jurisdictions(data: Jurisdictions, view: IncidentView, ctx: PlanContext) -> list[Plan]:
    """One plan per clock of every rule of the places the incident touches, in file order."""
    facts = view.facts
    plans: list[Plan] = []
    for jurisdiction, rule in data.applicable(incident_countries(facts)):
        for clock in rule.clocks:
            plans.append(_plan_clock(jurisdiction, rule, clock, view, ctx))
    return plans


def _plan_clock(
    jurisdiction: Jurisdiction, rule: JurisdictionRule, clock: Clock, view: IncidentView, ctx: PlanContext
) -> Plan:
    shaped = _deadline_rule(rule, clock)
    basis = basis_of(jurisdiction, rule, clock)
    covers = list(jurisdiction.covers)
    for condition in (rule.when, clock.when):
        reason = why_not(condition, covers, view.facts) if condition else None
        if reason:
            return Plan(shaped, clock.id, applies=False, why_not=reason, basis=basis)
    started = _start(rule, clock, view)
    if isinstance(started, str):
        return Plan(shaped, clock.id, applies=False, why_not=started, basis=basis)
    anchor, start = started
    text, notes = _duration(clock, list(view.facts.get("entity_types") or []))
    if clock.starts.at_end_of:
        start, line = year_end(start, jurisdiction.zone)
        notes.append(line)
    override = ctx.policy_durations.get(f"{rule.id}:{clock.id}") if clock.kind == "target" else None
    if override is not None:
        parse_duration(override)
        text, notes = override, [*notes, f"{override} from settings.toml [deadlines.policy] ({TARGET_NOTE})"]
    cap_start = None
    if clock.cap is not None:
        found = _anchor(clock.cap.anchor, view)
        cap_start = _instant(found[1]) if found else None
    due = _compute(clock, text, start, cap_start, ctx.calendar, jurisdiction.zone)
    if clock.relief is not None:
        unrelieved = due.due_at
        due = relieve(due, clock.relief, jurisdiction, view.facts, ctx.calendar)
        if due.due_at != unrelieved:
            # The due time now rests on the relief too: it is only as certain as the relief is.
            basis = {**basis, "relief": clock.relief.article}
            basis["verified"] = basis["verified"] and clock.relief.verified
    calendar = ctx.calendar(clock.calendar)
    return Plan(
        shaped,
        clock.id,
        applies=True,
        anchor=anchor,
        start_at=start,
        duration=parse_duration(text).text,
        due=due,
        calendar_version=calendar.version if due.calendar != "none" else "none",
        explain=[f"{rule.id} {clock.id}: {text} from {anchor}", *notes, *due.explain],
        warnings=warning_moments(shaped, start, due.due_at),
        basis=basis,
    )
