"""What planning an incident's deadlines needs from a workspace, and every plan of an incident: the
playbook's rules, then the clocks of each jurisdiction it touches, and why a rule has no clock."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlmodel import Session, select

from engine.clocks.calendars import Calendar, get_calendar
from engine.clocks.plan import IncidentView, Plan, PlanContext, plan_rules
from engine.clocks.rules import DeadlineRule
from engine.deadlines.tables import Deadline
from engine.errors import BadInput
from engine.incidents.shape import IncidentShape
from engine.legal.data import LegalData
from engine.legal.jurisdictions import Jurisdictions
from engine.workspace import Workspace

__all__ = ["all_plans", "deadline_context", "rules_not_running", "touches_places"]


def deadline_context(workspace: Workspace, legal: Callable[[], LegalData] | None = None) -> PlanContext:
    """Legal data, zone, calendars and policy overrides of ``workspace``, as planning needs them.

    ``legal`` loads the legal data (the wiring's cached loader); by default it is read from the
    workspace's config search path.
    """
    config = workspace.search_path("config")
    settings = workspace.settings.get("deadlines", {})
    policy = settings.get("policy", {}) if isinstance(settings, dict) else None
    if not isinstance(policy, dict) or not all(isinstance(v, str) for v in policy.values()):
        raise BadInput('settings.toml [deadlines.policy] maps rule ids to durations, e.g. "POLICY-X" = "72h"')

    @cache
    def calendar(name: str) -> Calendar:
        return get_calendar(name, config)

    if legal is None:
        from engine.legal.data import load_legal

        data = load_legal(config)
    else:
        data = legal()

    def jurisdictions() -> Jurisdictions:
        from engine.clocks.intl import load_rules

        return load_rules(config)

    return PlanContext(
        legal=data,
        zone=workspace.timezone,
        calendar=calendar,
        policy_durations=dict(policy),
        load_jurisdictions=jurisdictions,
    )


def touches_places(facts: dict[str, Any]) -> bool:
    """Whether the facts name a place (``countries``, or ``residents`` counted): only then can a
    jurisdiction's clock apply (``engine.clocks.intl.incident_countries`` lists them)."""
    residents = facts.get("residents") or {}
    return bool(facts.get("countries")) or any(residents.values())


def all_plans(rules: list[DeadlineRule], view: IncidentView, ctx: PlanContext) -> list[Plan]:
    """The playbook's deadlines, then the clocks of every jurisdiction the incident touches."""
    plans = plan_rules(rules, view, ctx)
    if not touches_places(view.facts):
        return plans
    data = ctx.jurisdiction_rules()
    if data is not None:
        from engine.clocks.intl import plan_jurisdictions

        plans += plan_jurisdictions(data, view, ctx)
    return plans


def rules_not_running(session: Session, incident: IncidentShape, ctx: PlanContext) -> list[tuple[str, str]]:
    """The playbook's rules that have no deadline for the incident, each with why (e.g. grade too low).

    "No clock" is easily read as "no duty": showing why a rule is not running prevents that.
    """
    from engine.incidents.repository import incident_playbook

    rules = incident_playbook(session, incident).playbook.deadlines
    rows = session.exec(select(Deadline).where(Deadline.incident_id == incident.id))
    started = {(r.rule_id, r.subject) for r in rows}
    return [
        (plan.rule.id + (f" {plan.subject}" if plan.subject else ""), plan.why_not or "")
        for plan in all_plans(rules, IncidentView.of(incident), ctx)
        if not plan.applies and plan.key not in started
    ]
