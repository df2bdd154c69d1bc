"""The JSON Schema of each concept the outputs share, and of each command's ``--json`` output.

One source: the concepts below. ``breach``'s command outputs (``COMMANDS``) are shipped as JSON Schema
files in ``engine/shapes/schemas/`` (regenerate with ``python -m engine.shapes.schemas``; a test checks
they match), and the HTTP API's OpenAPI document uses the same concepts. Objects stay open
(``additionalProperties``) so a later release may add keys without breaking scripts; times are
ISO-8601 strings with an offset.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "COMMANDS",
    "CONCEPTS",
    "GRADES",
    "command_schema",
    "object_schema",
    "shipped_schema",
    "write_schemas",
]

GRADES = ("none", "general", "relatively_major", "major", "especially_major")
"""Incident grades, lowest first."""

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_OBJECT = {"type": "object"}
_OBJECT_OR_NULL = {"type": ["object", "null"]}


def object_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """An object whose every listed key is required (and more keys are allowed)."""
    return {"type": "object", "required": sorted(properties), "properties": properties}


CONCEPTS: dict[str, dict[str, Any]] = {
    "IncidentItem": object_schema(
        {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "playbook": {"type": "string"},
            "state": {"type": "string"},
            "version": {"type": "integer"},
            "drill": {"type": "boolean"},
            "opened_at": _TIME,
            "discovered_at": _TIME,
            "grade": {"type": ["string", "null"], "enum": [*GRADES, None]},
        }
    ),
    "Task": object_schema(
        {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["open", "done"]},
            "phase_state": {"type": "string"},
            "required": {"type": "boolean"},
            "label": {"type": "string"},
            "done_at": _TIME_OR_NULL,
            "done_by": _TEXT_OR_NULL,
        }
    ),
    "Event": object_schema(
        {
            "seq": {"type": "integer"},
            "at": _TIME,
            "occurred_at": _TIME_OR_NULL,
            "actor": {"type": "string"},
            "kind": {"type": "string"},
            "trigger": _TEXT_OR_NULL,
            "from": _TEXT_OR_NULL,
            "to": _TEXT_OR_NULL,
            "reason": _TEXT_OR_NULL,
            "inputs": _OBJECT,
            "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        }
    ),
    "Document": object_schema(
        {
            "kind": {"type": "string"},
            "format": _TEXT_OR_NULL,
            "path": {"type": "string"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "person": _TEXT_OR_NULL,
            "template": _TEXT_OR_NULL,
            "created_at": _TIME_OR_NULL,
        }
    ),
    "Deadline": object_schema(
        {
            "id": {"type": "integer"},
            "incident_id": {"type": "string"},
            "incident_title": {"type": ["string", "null"]},
            "drill": {"type": "boolean"},
            "rule": {"type": "string"},
            "subject": _TEXT_OR_NULL,
            "kind": {"type": "string", "enum": ["law", "policy"]},
            "label": {"type": "string"},
            "label_en": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "warned", "met", "missed", "waived", "void"]},
            "due_at": _TIME,
            "provisional": {"type": "boolean"},
            "calendar": {"type": "string"},
            "basis": _OBJECT,
            "remaining_seconds": {"type": ["integer", "null"]},
            "countdown": _TEXT_OR_NULL,
            "overdue": {"type": "boolean"},
            "met_at": _TIME_OR_NULL,
            "met_by": _TEXT_OR_NULL,
            "lateness_seconds": {"type": ["integer", "null"]},
            "missed_at": _TIME_OR_NULL,
            "acknowledged_at": _TIME_OR_NULL,
            "acknowledged_by": _TEXT_OR_NULL,
            "note": _TEXT_OR_NULL,
        }
    ),
    "Trigger": object_schema(
        {
            "trigger": {"type": "string"},
            "dest": _TEXT_OR_NULL,
            "allowed": {"type": "boolean"},
            "blocked_by": {"type": "array", "items": {"type": "string"}},
            "needs": {"type": "array", "items": {"type": "string"}},
            "label": {"type": "string"},
        }
    ),
}
CONCEPTS["Incident"] = object_schema(
    {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "playbook": {"type": "string"},
        "playbook_version": {"type": "integer"},
        "playbook_sha256": {"type": "string"},
        "state": {"type": "string"},
        "state_label": {"type": "string"},
        "version": {"type": "integer"},
        "drill": {"type": "boolean"},
        "opened_at": _TIME,
        "opened_by": {"type": "string"},
        "discovered_at": _TIME,
        "closed_at": _TIME_OR_NULL,
        "facts": _OBJECT,
        "anchors": _OBJECT,
        "flags": _OBJECT,
        "records": _OBJECT,
        "assessment": _OBJECT_OR_NULL,
        "tasks": {"type": "array", "items": {"$ref": "#/$defs/Task"}},
        "deadlines": {"type": "array", "items": {"$ref": "#/$defs/Deadline"}},
        "document_counts": {
            "type": "array",
            "items": object_schema(
                {"kind": {"type": "string"}, "format": {"type": "string"}, "count": {"type": "integer"}}
            ),
        },
        "documents": {"type": "array", "items": {"$ref": "#/$defs/Document"}},
        "refusals": {
            "type": "array",
            "items": object_schema({"at": _TIME, "actor": {"type": "string"}, "detail": {"type": "string"}}),
        },
        "events": {"type": "array", "items": {"$ref": "#/$defs/Event"}},
    }
)

_TIME_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z)$"
_WHAT_NOW_CLOCK = object_schema(
    {
        "rule": {"type": "string"},
        "subject": _TEXT_OR_NULL,
        "label": {"type": "string"},
        "status": {"type": "string"},
        "due_at": _TIME,
        "remaining_seconds": {"type": "integer"},
        "countdown": {"type": "string"},
        "overdue": {"type": "boolean"},
    }
)
CONCEPTS["WhatNow"] = object_schema(
    {
        "id": {"type": "string"},
        "state": {"type": "string"},
        "state_label": {"type": "string"},
        "final": {"type": "boolean"},
        "grade": _TEXT_OR_NULL,
        "nearest_deadline": {"anyOf": [_WHAT_NOW_CLOCK, {"type": "null"}]},
        "overdue": {"type": "array", "items": _WHAT_NOW_CLOCK},
        "open_tasks": {
            "type": "array",
            "items": object_schema(
                {
                    "id": {"type": "string"},
                    "label": {"type": "string"},
                    "phase_state": {"type": "string"},
                    "ahead": {"type": "boolean"},
                }
            ),
        },
        "next": {"type": "array", "items": {"type": "string"}},
    }
)


def _array(concept: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/$defs/{concept}"}}


COMMANDS: dict[str, tuple[str, dict[str, Any]]] = {
    "incident-list": ("breach incident list --json", _array("IncidentItem")),
    "incident-show": ("breach incident show ID --json", {"$ref": "#/$defs/Incident"}),
    "incident-triggers": ("breach incident triggers ID --json", _array("Trigger")),
    "incident-what-now": ("breach incident what-now ID --json", {"$ref": "#/$defs/WhatNow"}),
    "deadlines-list": ("breach deadlines list --json", _array("Deadline")),
}
"""Each command output: the file name of its schema, the command, and the schema of the whole output."""


def _with_time_pattern(value: Any) -> Any:
    """The concepts with their ``date-time`` strings pinned to carry an offset (format is advisory)."""
    if isinstance(value, dict):
        out = {k: _with_time_pattern(v) for k, v in value.items()}
        if value.get("format") == "date-time":
            out["pattern"] = _TIME_PATTERN
        return out
    if isinstance(value, list):
        return [_with_time_pattern(v) for v in value]
    return value


def command_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the output of the command ``name`` (a key of ``COMMANDS``)."""
    command, root = COMMANDS[name]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://breach.invalid/schemas/{name}.json",
        "title": command,
        **root,
        "$defs": _with_time_pattern(CONCEPTS),
    }


def shipped_schema(name: str) -> dict[str, Any]:
    """The schema file of ``name`` as the installed package ships it."""
    text = resources.files("engine.shapes").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def write_schemas(folder: Path) -> list[Path]:
    """Write every command's schema into ``folder``; return the files written."""
    written = []
    for name in COMMANDS:
        path = folder / f"{name}.json"
        path.write_text(
            json.dumps(command_schema(name), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(__file__).parent / "schemas"):
        sys.stdout.write(f"{path}\n")
