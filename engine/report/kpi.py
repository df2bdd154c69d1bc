"""How fast the firm responds, across incidents: the figures of the dashboard's KPI page and the API.

Three times, each from the moment the leak was discovered (the moment the law's clocks run from):

- **to contain**: to the first change of phase, when the playbook leaves its first (containment) phase;
- **to the first regulator report**: to the first regulator report issued (a ``regulator_*`` formal
  document);
- **to notify everyone**: to the moment the last notice task completed; a notice task completes only
  when every recipient of it is notified (``engine.notices.completion``).

And the share of *legal* deadlines (kind ``law``; internal targets are the firm's own and left out) met
on time among those settled: met on time / (met + missed); a waived or void clock, or one still
running, counts in neither. Each is given for all incidents, by month of discovery (in the workspace
zone) and by grade. Drills are left out unless asked for: an exercise must not flatter the figures.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.report.gather import utc
from engine.store.readmodel import Reader

__all__ = ["NOTICE_TASKS", "Kpis", "Measure", "kpis"]

NOTICE_TASKS = ("notify_individuals", "notify_client_companies")
"""The playbook tasks that complete only once every recipient of a notice kind is notified."""


@dataclass
class Measure:
    """A set of durations (seconds): how many incidents reached the point, and the median time."""

    values: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"count", "median_seconds"}`` (null median when no incident reached it)."""
        return {
            "count": len(self.values),
            "median_seconds": int(statistics.median(self.values)) if self.values else None,
        }


@dataclass
class Group:
    """The figures of one group of incidents (all, one month, one grade)."""

    incidents: int = 0
    contain: Measure = field(default_factory=Measure)
    first_report: Measure = field(default_factory=Measure)
    notify_all: Measure = field(default_factory=Measure)
    legal_met_on_time: int = 0
    legal_settled: int = 0

    def to_json(self) -> dict[str, Any]:
        """The group as the API serves it."""
        share = self.legal_met_on_time / self.legal_settled if self.legal_settled else None
        return {
            "incidents": self.incidents,
            "time_to_contain": self.contain.to_json(),
            "time_to_first_regulator_report": self.first_report.to_json(),
            "time_to_notify_everyone": self.notify_all.to_json(),
            "legal_deadlines": {
                "met_on_time": self.legal_met_on_time,
                "settled": self.legal_settled,
                "share_met_on_time": None if share is None else round(share, 4),
            },
        }


@dataclass
class Kpis:
    """All incidents, by month of discovery and by grade."""

    overall: Group
    by_month: dict[str, Group]
    by_grade: dict[str, Group]
    grade_labels: dict[str, str]
    drills_included: bool

    def to_json(self) -> dict[str, Any]:
        """The KPI document of ``GET /api/v1/kpis``."""
        return {
            "drills_included": self.drills_included,
            "overall": self.overall.to_json(),
            "by_month": [{"month": m, **g.to_json()} for m, g in sorted(self.by_month.items())],
            "by_grade": [
                {"grade": k, "grade_label": self.grade_labels.get(k, k), **g.to_json()}
                for k, g in self.by_grade.items()
            ],
        }


def _first_times(reader: Reader, sql: str, params: tuple[Any, ...] = ()) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for r in reader.rows(sql, params):
        at = utc(r["at"])
        if at is not None:
            found[str(r["incident_id"])] = at
    return found


def kpis(reader: Reader, *, zone: str, include_drills: bool = False) -> Kpis:
    """The response figures over every incident (drills only when asked), in four grouped queries."""
    tz = ZoneInfo(zone)
    incidents = reader.rows(
        "SELECT id, discovered_at, drill, assessment FROM incident ORDER BY discovered_at"
    )
    contained = _first_times(
        reader,
        "SELECT incident_id, MIN(at) AS at FROM event WHERE kind = 'trigger' AND from_state <> to_state "
        "GROUP BY incident_id",
    )
    reported = (
        _first_times(
            reader,
            "SELECT incident_id, MIN(created_at) AS at FROM document "
            "WHERE substr(kind, 1, 10) = 'regulator_' GROUP BY incident_id",
        )
        if reader.has_table("document")
        else {}
    )
    marks = ", ".join("?" for _ in NOTICE_TASKS)
    notified = {
        str(r["incident_id"]): utc(r["at"])
        for r in reader.rows(
            f"SELECT incident_id, MAX(done_at) AS at, COUNT(*) AS n, "
            f"SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done FROM task WHERE key IN ({marks}) "
            "GROUP BY incident_id",
            NOTICE_TASKS,
        )
        if r["n"] == r["done"]
    }
    legal: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    if reader.has_table("deadline"):
        for r in reader.rows(
            "SELECT incident_id, SUM(CASE WHEN status = 'met' AND COALESCE(lateness_seconds, 0) <= 0 "
            "THEN 1 ELSE 0 END) AS on_time, COUNT(*) AS settled FROM deadline "
            "WHERE kind = 'law' AND status IN ('met', 'missed') GROUP BY incident_id"
        ):
            legal[str(r["incident_id"])] = (int(r["on_time"] or 0), int(r["settled"] or 0))
    overall = Group()
    by_month: defaultdict[str, Group] = defaultdict(Group)
    by_grade: defaultdict[str, Group] = defaultdict(Group)
    labels: dict[str, str] = {}
    for row in incidents:
        if bool(row["drill"]) and not include_drills:
            continue
        ident, discovered = str(row["id"]), utc(row["discovered_at"])
        assert discovered is not None
        assessment = row["assessment"]
        if isinstance(assessment, str | bytes):
            import json

            assessment = json.loads(assessment)
        grade = str((assessment or {}).get("grade") or "none")
        labels.setdefault(grade, str((assessment or {}).get("grade_label") or grade))
        month = discovered.astimezone(tz).strftime("%Y-%m")
        for group in (overall, by_month[month], by_grade[grade]):
            group.incidents += 1
            for moments, measure in (
                (contained, group.contain),
                (reported, group.first_report),
                (notified, group.notify_all),
            ):
                at = moments.get(ident)
                if at is not None:
                    measure.values.append(max(0.0, (at - discovered).total_seconds()))
            on_time, settled = legal.get(ident, (0, 0))
            group.legal_met_on_time += on_time
            group.legal_settled += settled
    return Kpis(overall, dict(by_month), dict(by_grade), labels, include_drills)
