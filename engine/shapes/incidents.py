"""An incident, in a list and in full, with its tasks, events and documents, as every output shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from engine.playbooks.labels import label_of
from engine.shapes.deadlines import deadline
from engine.shapes.times import Times, from_json

__all__ = ["TriggerLike", "document", "event", "incident", "incident_item", "task", "trigger"]


def incident_item(t: Times, r: dict[str, Any]) -> dict[str, Any]:
    """One incident of a list (``breach incident list --json``)."""
    return {
        "id": r["id"],
        "title": r["title"],
        "playbook": r["playbook_id"],
        "state": r["state"],
        "version": r["version"],
        "drill": bool(r["drill"]),
        "opened_at": t.iso(r["opened_at"]),
        "discovered_at": t.iso(r["discovered_at"]),
        "grade": (from_json(r["assessment"]) or {}).get("grade"),
    }


def task(t: Times, labels: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    """A task of an incident: which phase it belongs to, whether it is required, who did it when."""
    return {
        "id": r["key"],
        "state": r["status"],
        "phase_state": r["state_id"],
        "required": bool(r["required"]),
        "label": label_of(labels, "tasks", r["key"]),
        "done_at": t.iso(r["done_at"]),
        "done_by": r["done_by"],
    }


def event(t: Times, r: dict[str, Any]) -> dict[str, Any]:
    """An audit event."""
    return {
        "seq": r["seq"],
        "at": t.iso(r["at"]),
        # When the step really happened, if entered with --at; "at" is when it was recorded.
        "occurred_at": t.iso(r.get("occurred_at")),
        "actor": r["actor"],
        "kind": r["kind"],
        "trigger": r["trigger"],
        "from": r["from_state"],
        "to": r["to_state"],
        "reason": r["reason"],
        "inputs": r["inputs"],
        "hash": r["hash"],
    }


def document(t: Times, r: dict[str, Any]) -> dict[str, Any]:
    """A produced document: its file and the hash that proves it unchanged."""
    return {
        "kind": r["kind"],
        "format": r.get("fmt"),
        "path": r["path"],
        "sha256": r["sha256"],
        "person": r.get("person_ref"),
        "template": r.get("template"),
        "created_at": t.iso(r.get("created_at")),
    }


def incident(t: Times, row: dict[str, Any], now: datetime, *, persons: bool = True) -> dict[str, Any]:
    """One incident in full (``breach incident show ID --json``), from ``Reader.incident``.

    ``persons=False`` leaves out the documents addressed to one person (the API does: their file names
    carry the person's name); ``document_counts`` still counts them per kind and format.
    """
    labels = row["labels"]
    return {
        "id": row["id"],
        "title": row["title"],
        "playbook": row["playbook_id"],
        "playbook_version": row["playbook_version"],
        "playbook_sha256": row["playbook_sha256"],
        "state": row["state"],
        "state_label": label_of(labels, "states", row["state"]),
        "version": row["version"],
        "drill": bool(row["drill"]),
        "opened_at": t.iso(row["opened_at"]),
        "opened_by": row["opened_by"],
        "discovered_at": t.iso(row["discovered_at"]),
        "closed_at": t.iso(row["closed_at"]),
        "facts": row["facts"],
        "anchors": {k: t.iso(v) for k, v in row["anchors"].items()},
        "flags": row["flags"],
        "records": row["records"],
        "assessment": row["assessment"] or None,
        "tasks": [task(t, labels, r) for r in row["tasks"]],
        "deadlines": [
            deadline(t, {**d, "incident_title": row["title"], "drill": row["drill"]}, now)
            for d in row["deadlines"]
        ],
        "document_counts": [
            {"kind": d["kind"], "format": d["fmt"], "count": d["n"]} for d in row.get("document_counts", [])
        ],
        "documents": [document(t, d) for d in row["documents"] if persons or not d.get("person_ref")],
        "refusals": [
            {"at": t.iso(r["at"]), "actor": r["actor"], "detail": r["detail"]}
            for r in row.get("refusals", [])
        ],
        "events": [event(t, e) for e in row["events"]],
    }


class TriggerLike(Protocol):
    """A trigger as seen from an incident's state (``engine.incidents.flow.TriggerInfo``)."""

    @property
    def trigger(self) -> str: ...
    @property
    def dest(self) -> str | None: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def blocked_by(self) -> list[str]: ...
    @property
    def needs(self) -> list[str]: ...
    @property
    def label(self) -> str: ...


def trigger(info: TriggerLike) -> dict[str, Any]:
    """A trigger: where it leads, whether it may fire now, and if not, why not."""
    return {
        "trigger": info.trigger,
        "dest": info.dest,
        "allowed": info.allowed,
        "blocked_by": list(info.blocked_by),
        "needs": list(info.needs),
        "label": info.label,
    }
