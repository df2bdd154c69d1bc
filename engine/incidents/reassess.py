"""Changing an incident's facts, and keeping its assessment in step with them.

A change of facts is validated as a whole, re-assessed, audited (which keys changed, and the grade before
and after) and handed to the other hooks (deadlines recompute) in one transaction. The assessment is
stored on the incident, so guards such as ``grade_at_least`` and deadline conditions read it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.incidents.audit import append_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import flush_or_conflict, get_incident, incident_playbook
from engine.incidents.rows import load_tasks, open_early_tasks
from engine.incidents.shape import IncidentShape
from engine.incidents.steptime import check_step_time
from engine.legal.assess import assess
from engine.legal.data import LegalData
from engine.legal.facts import GRADES, changed_keys, facts_to_dict, flatten_facts, merge_facts
from engine.store.db import Store, utcnow

__all__ = ["FactsChange", "apply_assessment", "assessment_hook", "update_facts"]


def apply_assessment(incident: IncidentShape, legal: LegalData, at: datetime) -> tuple[str | None, str]:
    """Assess the incident's facts and store the result on it; return the grade before and after."""
    before = (incident.assessment or {}).get("grade")
    facts = merge_facts({}, dict(incident.facts or {}))
    result = assess(facts, legal)
    incident.assessment = {
        **result.to_json(),
        "grade_order": list(GRADES),
        "assessed_at": at.isoformat(),
    }
    if result.grade != before:
        # The moment the incident reached its current grade: clocks that run "from grading" start here.
        incident.anchors = {**incident.anchors, "graded_at": at.isoformat()}
    return before, result.grade


def assessment_hook(legal: Callable[[], LegalData]) -> Callable[[IncidentShape, datetime], None]:
    """An ``on_open`` hook assessing an incident opened with facts (``legal`` loads the data lazily)."""

    def hook(incident: IncidentShape, at: datetime) -> None:
        if incident.facts:
            apply_assessment(incident, legal(), at)

    return hook


@dataclass(frozen=True)
class FactsChange:
    """What a facts update did."""

    incident_id: str
    changed: list[str]
    grade_before: str | None
    grade_after: str | None
    version: int


def update_facts(
    store: Store,
    incident_id: str,
    update: dict[str, Any],
    *,
    actor: str,
    legal: LegalData,
    reason: str | None = None,
    hooks: Hooks = NO_HOOKS,
    occurred_at: datetime | None = None,
    zone: str = "UTC",
    late_reason: str | None = None,
) -> FactsChange:
    """Merge ``update`` into the incident's facts, re-assess, audit and run the hooks, all or nothing.

    ``occurred_at`` is when the facts became known, if before now (``--at``, read in ``zone``): the
    grade reached then dates the clocks that run from grading, and the event keeps it. It is refused
    in the future, before discovery, or more than 24 hours back without ``late_reason`` (default:
    ``reason``).
    An update that changes nothing writes nothing (no event, same version).
    """
    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        if occurred_at is not None:
            check_step_time(
                occurred_at,
                now=now,
                discovered_at=incident.discovered_at,
                zone=zone,
                reason=reason if late_reason is None else late_reason,
            )
        before = dict(incident.facts or {})
        merged = facts_to_dict(merge_facts(before, update))
        changed = changed_keys(before, merged)
        if not changed:
            grade = (incident.assessment or {}).get("grade")
            return FactsChange(incident_id, [], grade, grade, incident.version)
        incident.facts = merged
        grade_before, grade_after = apply_assessment(incident, legal, occurred_at or now)
        flat_before, flat_after = flatten_facts(before), flatten_facts(merged)
        detail = {key: {"from": flat_before.get(key), "to": flat_after.get(key)} for key in changed}
        inputs: dict[str, Any] = {"changed": detail}
        if grade_before != grade_after:
            inputs["grade"] = {"from": grade_before, "to": grade_after}
        append_event(
            session,
            incident,
            kind="facts",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            reason=(reason or "").strip() or None,
            inputs=inputs,
            occurred_at=occurred_at,
        )
        source = incident_playbook(session, incident)
        # A moment recorded by the re-assessment (graded_at) opens the tasks that wait for it.
        tasks = load_tasks(session, incident_id)
        open_early_tasks(session, incident_id, tasks, source.playbook, anchors=incident.anchors)
        for hook in hooks.after_change:
            hook(Step(session, incident, source, now, "facts", actor, occurred_at=occurred_at))
        flush_or_conflict(session, incident_id)
        return FactsChange(incident_id, changed, grade_before, grade_after, incident.version)
