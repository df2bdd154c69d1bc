"""A deadline (a legal clock or an internal target) as every command and the API show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.clocks.durations import format_countdown
from engine.shapes.times import Times, from_json, utc

__all__ = ["ACTIVE", "deadline"]

ACTIVE = ("pending", "warned", "missed")
"""Statuses of a clock still owed: it counts down, and once past due it is overdue."""


def deadline(t: Times, r: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A deadline row (``deadline`` joined to its incident's ``title`` and ``drill``, or the incident's own
    rows with ``incident_title`` and ``drill`` added) with its countdown from ``now``."""
    due = utc(r["due_at"])
    assert due is not None, "a stored deadline always has a due time"
    labels = from_json(r.get("labels"))
    active = r["status"] in ACTIVE
    left = int((due - now).total_seconds())
    return {
        "id": r["id"],
        "incident_id": r["incident_id"],
        "incident_title": r.get("title", r.get("incident_title")),
        "drill": bool(r.get("drill")),
        "rule": r["rule_id"],
        "subject": r.get("subject") or None,
        "kind": r["kind"],
        "label": labels.get("zh-CN", ""),
        "label_en": labels.get("en", ""),
        "status": r["status"],
        "due_at": t.iso(due),
        "provisional": bool(r["provisional"]),
        "calendar": r["calendar"],
        "basis": from_json(r["basis"]),
        "remaining_seconds": left if active else None,
        "countdown": format_countdown(due - now) if active else None,
        "overdue": active and left <= 0,
        "met_at": t.iso(r.get("met_at")),
        "met_by": r.get("met_by"),
        "lateness_seconds": r.get("lateness_seconds"),
        "missed_at": t.iso(r.get("missed_at")),
        # Someone took the missed deadline on (breach deadlines ack): its alerts stopped.
        "acknowledged_at": t.iso(r.get("acknowledged_at")),
        "acknowledged_by": r.get("acknowledged_by"),
        "note": r.get("waiver_reason") or r.get("void_reason"),
    }
