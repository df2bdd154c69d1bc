"""The JSON the API serves: the shapes of the CLI's ``--json`` output, built from the read model.

``incident_item`` is an element of ``breach incident list --json``, ``incident`` is ``breach incident
show ID --json``, ``deadline`` is an element of ``breach deadlines list --json``; a trigger is
``TriggerInfo.to_json()`` as ``breach incident triggers --json`` prints it. One difference, on purpose:
an incident's ``documents`` leave out the notices addressed to one person (their file names carry the
person's name); ``document_counts`` still counts them per kind and format.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.clocks.durations import format_countdown
from engine.report.gather import ACTIVE, label, utc

__all__ = ["Times", "deadline", "incident", "incident_item"]

# Bookkeeping of the checker, not part of what a deadline says (as in the CLI).
_DEADLINE_INTERNAL = ("incident_id", "version", "next_check_at", "alert_round")


class Times:
    """Moments as ISO-8601 in the workspace zone with its offset, as every JSON time is."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)

    def iso(self, value: Any) -> str | None:
        """``value`` (aware, naive UTC or text) in the zone; None for none."""
        moment = utc(value)
        return None if moment is None else moment.astimezone(self.zone).isoformat(timespec="seconds")


def _json(value: Any) -> Any:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


def incident_item(t: Times, r: dict[str, Any]) -> dict[str, Any]:
    """One incident of a list."""
    return {
        "id": r["id"],
        "title": r["title"],
        "playbook": r["playbook_id"],
        "state": r["state"],
        "version": r["version"],
        "drill": bool(r["drill"]),
        "opened_at": t.iso(r["opened_at"]),
        "discovered_at": t.iso(r["discovered_at"]),
        "grade": (_json(r["assessment"]) or {}).get("grade"),
    }


def deadline(t: Times, r: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A deadline with its countdown from ``now`` (as ``breach deadlines list --json``)."""
    due = utc(r["due_at"])
    assert due is not None
    labels = _json(r["labels"])
    active = r["status"] in ACTIVE
    left = int((due - now).total_seconds())
    return {
        "id": r["id"],
        "incident_id": r["incident_id"],
        "incident_title": r.get("title"),
        "drill": bool(r.get("drill")),
        "rule": r["rule_id"],
        "subject": r["subject"] or None,
        "kind": r["kind"],
        "label": labels.get("zh-CN", ""),
        "label_en": labels.get("en", ""),
        "status": r["status"],
        "due_at": t.iso(due),
        "provisional": bool(r["provisional"]),
        "calendar": r["calendar"],
        "basis": _json(r["basis"]),
        "remaining_seconds": left if active else None,
        "countdown": format_countdown(due - now) if active else None,
        "overdue": active and left <= 0,
        "met_at": t.iso(r.get("met_at")),
        "met_by": r.get("met_by"),
        "lateness_seconds": r.get("lateness_seconds"),
        "missed_at": t.iso(r.get("missed_at")),
        "note": r.get("waiver_reason") or r.get("void_reason"),
    }


def _stored_deadline(t: Times, d: dict[str, Any]) -> dict[str, Any]:
    """A deadline as ``incident show --json`` lists it: every stored column but the checker's."""
    out = {k: (t.iso(v) if k.endswith("_at") else v) for k, v in d.items() if k not in _DEADLINE_INTERNAL}
    out["rule"] = d.get("rule_id")
    for key in ("labels", "basis", "explain", "warnings"):
        value = out.get(key)
        if isinstance(value, str | bytes):
            out[key] = json.loads(value)
    out["provisional"] = bool(out.get("provisional"))
    return out


def incident(t: Times, row: dict[str, Any]) -> dict[str, Any]:
    """One incident in full, from ``Reader.incident(id, every_document=False)``."""
    labels = row["labels"]
    return {
        "id": row["id"],
        "title": row["title"],
        "playbook": row["playbook_id"],
        "playbook_version": row["playbook_version"],
        "playbook_sha256": row["playbook_sha256"],
        "state": row["state"],
        "state_label": label(labels, "states", row["state"], "zh-CN"),
        "version": row["version"],
        "drill": row["drill"],
        "opened_at": t.iso(row["opened_at"]),
        "opened_by": row["opened_by"],
        "discovered_at": t.iso(row["discovered_at"]),
        "closed_at": t.iso(row["closed_at"]),
        "facts": row["facts"],
        "anchors": {k: t.iso(v) for k, v in row["anchors"].items()},
        "flags": row["flags"],
        "records": row["records"],
        "assessment": row["assessment"] or None,
        "tasks": [
            {
                "id": task["key"],
                "state": task["status"],
                "phase_state": task["state_id"],
                "required": task["required"],
                "label": label(labels, "tasks", task["key"], "zh-CN"),
                "done_at": t.iso(task["done_at"]),
                "done_by": task["done_by"],
            }
            for task in row["tasks"]
        ],
        "deadlines": [_stored_deadline(t, d) for d in row["deadlines"]],
        "document_counts": [
            {"kind": d["kind"], "format": d["fmt"], "count": d["n"]} for d in row.get("document_counts", [])
        ],
        "documents": [
            {
                "kind": d["kind"],
                "format": d.get("fmt"),
                "path": d["path"],
                "sha256": d["sha256"],
                "person": None,
                "template": d.get("template"),
                "created_at": t.iso(d.get("created_at")),
            }
            for d in row["documents"]
            if not d.get("person_ref")
        ],
        "refusals": [
            {"at": t.iso(r["at"]), "actor": r["actor"], "detail": r["detail"]}
            for r in row.get("refusals", [])
        ],
        "events": [
            {
                "seq": e["seq"],
                "at": t.iso(e["at"]),
                "actor": e["actor"],
                "kind": e["kind"],
                "trigger": e["trigger"],
                "from": e["from_state"],
                "to": e["to_state"],
                "reason": e["reason"],
                "inputs": e["inputs"],
                "hash": e["hash"],
            }
            for e in row["events"]
        ],
    }
