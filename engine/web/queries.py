"""What the index and the API's lists read: incidents with their nearest running clock, and deadlines.

The index of a thousand incidents is two queries (the incidents, then every running clock in due
order), never one query per incident. Filters are checked here, each against the values it may take,
so a bad one is a clear 400 and never reaches SQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import BadInput
from engine.report.gather import ACTIVE, utc
from engine.store.readmodel import Reader

__all__ = [
    "DRILL_CHOICES",
    "GRADES",
    "IndexFilters",
    "IndexRow",
    "deadline_rows",
    "incident_rows",
    "index_rows",
]

GRADES = ("none", "general", "relatively_major", "major", "especially_major")
DRILL_CHOICES = ("include", "exclude", "only")
_MAX_TEXT = 100
_STATE = re.compile(r"[A-Za-z0-9_]{1,64}")
_MAX_WITHIN_HOURS = 24 * 366


@dataclass(frozen=True)
class IndexFilters:
    """The index's filters, checked: a state, a grade, drills, open only, overdue only, a search text."""

    state: str | None = None
    grade: str | None = None
    drill: str = "include"
    open_only: bool = False
    overdue_only: bool = False
    text: str = ""

    @classmethod
    def parse(cls, params: dict[str, str], *, strict: bool = False) -> IndexFilters:
        """From query parameters; an unknown value is refused naming what is allowed.

        ``strict`` (the API): a parameter given must have a value, and flags are ``true`` or ``false``;
        the page's form sends empty fields for "any" and ``true`` for a ticked box.
        """
        if strict:
            for name in ("state", "grade", "drill", "open", "overdue"):
                if name in params and not params[name]:
                    raise BadInput(f"{name}: give a value or leave the parameter out")

        def flag(name: str) -> bool:
            if name not in params:
                return False
            value = params[name]
            allowed = ("true", "false") if strict else ("", "true", "false")
            if value not in allowed:
                raise BadInput(f"{name}={value[:20]!r}: use true or false")
            return value == "true"

        state = params.get("state") or None
        if state is not None and not _STATE.fullmatch(state):
            raise BadInput("state: a state id of the playbook, e.g. containment")
        grade = params.get("grade") or None
        if grade is not None and grade not in GRADES:
            raise BadInput(f"grade: one of {', '.join(GRADES)}")
        drill = params.get("drill") or "include"
        if drill not in DRILL_CHOICES:
            raise BadInput(f"drill: one of {', '.join(DRILL_CHOICES)}")
        raw = params.get("q", "")
        if len(raw) > _MAX_TEXT:
            raise BadInput(f"q: at most {_MAX_TEXT} characters")
        text = " ".join(raw.split())
        return cls(state, grade, drill, flag("open"), flag("overdue"), text)


@dataclass(frozen=True)
class IndexRow:
    """One incident of the index: what it is, where it stands, and its nearest running clock."""

    id: str
    title: str
    playbook: str
    state: str
    drill: bool
    grade: str | None
    grade_label: str | None
    discovered_at: datetime
    closed_at: datetime | None
    summary_sha256: str
    nearest_rule: str | None
    nearest_labels: dict[str, str]
    nearest_due: datetime | None
    overdue: int


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else (value or {})


def incident_rows(reader: Reader, *, state: str | None = None) -> list[dict[str, Any]]:
    """Incidents newest first, the columns a list shows."""
    sql = (
        "SELECT id, title, playbook_id, playbook_sha256, state, version, drill, opened_at, discovered_at, "
        "closed_at, assessment FROM incident"
    )
    params: tuple[Any, ...] = ()
    if state:
        sql += " WHERE state = ?"
        params = (state,)
    return reader.rows(sql + " ORDER BY opened_at DESC, id DESC", params)


def _field(reader: Reader, column: str, key: str) -> str:
    """SQL reading one text member of a JSON column (parsing whole assessments in Python is the cost)."""
    if reader.mark == "?":
        return f"json_extract({column}, '$.\"{key}\"')"
    return f"{column}->>'{key}'"


def _stored_time(reader: Reader, moment: datetime) -> Any:
    """A UTC moment as the time columns store it: text on SQLite, naive UTC on PostgreSQL."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if reader.mark == "?" else naive


def index_rows(reader: Reader, filters: IndexFilters, now: datetime) -> list[IndexRow]:
    """The index: incidents that pass the filters, each with its nearest running clock.

    Two queries: the incidents (grade read out of the assessment by the database), and for each
    incident its soonest running clock and how many of its running clocks are past due.
    """
    nearest: dict[str, dict[str, Any]] = {}
    if reader.has_table("deadline"):
        marks = ", ".join("?" for _ in ACTIVE)
        for d in reader.rows(
            "SELECT incident_id, rule_id, label_zh, label_en, due_at, overdue FROM ("
            "SELECT incident_id, rule_id, "
            f"{_field(reader, 'labels', 'zh-CN')} AS label_zh, {_field(reader, 'labels', 'en')} AS label_en, "
            "due_at, ROW_NUMBER() OVER (PARTITION BY incident_id ORDER BY due_at, id) AS position, "
            "SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END) OVER (PARTITION BY incident_id) AS overdue "
            f"FROM deadline WHERE status IN ({marks})) ranked WHERE position = 1",
            (_stored_time(reader, now), *ACTIVE),
        ):
            nearest[str(d["incident_id"])] = d
    sql = (
        "SELECT id, title, playbook_id, playbook_sha256, state, drill, discovered_at, closed_at, "
        f"{_field(reader, 'assessment', 'grade')} AS grade, "
        f"{_field(reader, 'assessment', 'grade_label')} AS grade_label FROM incident"
    )
    params: tuple[Any, ...] = ()
    if filters.state:
        sql += " WHERE state = ?"
        params = (filters.state,)
    needle = filters.text.casefold()
    rows = []
    for r in reader.rows(sql + " ORDER BY opened_at DESC, id DESC", params):
        drill = bool(r["drill"])
        if (filters.drill == "exclude" and drill) or (filters.drill == "only" and not drill):
            continue
        if filters.open_only and r["closed_at"] is not None:
            continue
        if filters.grade and r["grade"] != filters.grade:
            continue
        if needle and needle not in str(r["id"]).casefold() and needle not in str(r["title"]).casefold():
            continue
        first = nearest.get(str(r["id"]))
        overdue = int(first["overdue"] or 0) if first else 0
        if filters.overdue_only and not overdue:
            continue
        discovered = utc(r["discovered_at"])
        assert discovered is not None
        labels = {"zh-CN": str(first["label_zh"] or ""), "en": str(first["label_en"] or "")} if first else {}
        rows.append(
            IndexRow(
                id=str(r["id"]),
                title=str(r["title"]),
                playbook=str(r["playbook_id"]),
                state=str(r["state"]),
                drill=drill,
                grade=r["grade"],
                grade_label=r["grade_label"],
                discovered_at=discovered,
                closed_at=utc(r["closed_at"]),
                summary_sha256=str(r["playbook_sha256"]),
                nearest_rule=str(first["rule_id"]) if first else None,
                nearest_labels=labels,
                nearest_due=utc(first["due_at"]) if first else None,
                overdue=overdue,
            )
        )
    return rows


def deadline_rows(
    reader: Reader,
    *,
    incident_id: str | None = None,
    within_hours: float | None = None,
    overdue: bool = False,
    include_settled: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Deadlines across incidents (or of one), soonest first, as ``breach deadlines list`` reads them."""
    moment = now or datetime.now(UTC)
    sql = (
        "SELECT d.id, d.incident_id, i.title, i.drill, d.rule_id, d.subject, d.kind, d.labels, d.status, "
        "d.due_at, d.provisional, d.calendar, d.basis, d.met_at, d.met_by, d.lateness_seconds, d.missed_at, "
        "d.acknowledged_at, d.acknowledged_by, d.waiver_reason, d.void_reason "
        "FROM deadline d JOIN incident i ON i.id = d.incident_id WHERE 1 = 1"
    )
    params: list[Any] = []
    if not include_settled or overdue or within_hours is not None:
        sql += " AND d.status IN ('pending', 'warned', 'missed')"
    limit = None
    if overdue:
        limit = moment
    if within_hours is not None:
        if not 0 <= within_hours <= _MAX_WITHIN_HOURS:
            raise BadInput(f"due_within_hours: from 0 to {_MAX_WITHIN_HOURS}")
        ahead = moment + timedelta(hours=within_hours)
        limit = min(limit, ahead) if limit else ahead
    if incident_id:
        sql += " AND d.incident_id = ?"
        params.append(incident_id)
    rows = reader.rows(sql + " ORDER BY d.due_at, d.id", tuple(params))
    if limit is not None:
        rows = [r for r in rows if (utc(r["due_at"]) or moment) <= limit]
    return rows
