"""One JSON shape per concept, the same in every ``--json`` output of the CLI and in the HTTP API.

Pure functions from read-model rows (``engine.store.readmodel.Reader``) to plain dicts; every time is
ISO-8601 in the workspace zone with its offset. ``engine.shapes.schemas`` describes them, and ships a
JSON Schema per command output in ``engine/shapes/schemas/``.
"""

from __future__ import annotations

from engine.shapes.deadlines import ACTIVE, deadline
from engine.shapes.incidents import document, event, incident, incident_item, task, trigger
from engine.shapes.times import Times, from_json, utc

__all__ = [
    "ACTIVE",
    "Times",
    "deadline",
    "document",
    "event",
    "from_json",
    "incident",
    "incident_item",
    "task",
    "trigger",
    "utc",
]
