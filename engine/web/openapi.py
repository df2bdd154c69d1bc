"""The OpenAPI 3.1 document of the read-only API, with a JSON Schema for each shape it serves.

The schemas are the CLI's (``engine.shapes.schemas``): every key the CLI's ``--json`` prints for that
concept, and its type (times are ISO-8601 strings with an offset). Objects stay open so a later release
may add keys without breaking clients.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from engine import __version__
from engine.shapes.schemas import CONCEPTS, GRADES
from engine.shapes.schemas import object_schema as _object
from engine.web.queries import DRILL_CHOICES

__all__ = ["SCHEMAS", "openapi_document"]


def _components(value: Any) -> Any:
    """The shared concepts with their references pointing into the OpenAPI components."""
    if isinstance(value, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _components(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_components(v) for v in value]
    return value


SCHEMAS: dict[str, dict[str, Any]] = {
    **_components(CONCEPTS),
    "Error": _object({"error": {"type": "string"}, "status": {"type": "integer"}}),
}
_MEASURE = _object(
    {"count": {"type": "integer", "minimum": 0}, "median_seconds": {"type": ["integer", "null"]}}
)
_GROUP = {
    "incidents": {"type": "integer", "minimum": 0},
    "time_to_contain": _MEASURE,
    "time_to_first_regulator_report": _MEASURE,
    "time_to_notify_everyone": _MEASURE,
    "legal_deadlines": _object(
        {
            "met_on_time": {"type": "integer", "minimum": 0},
            "settled": {"type": "integer", "minimum": 0},
            "share_met_on_time": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        }
    ),
}
SCHEMAS["Kpis"] = _object(
    {
        "drills_included": {"type": "boolean"},
        "overall": _object(_GROUP),
        "by_month": {
            "type": "array",
            "items": _object({"month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, **_GROUP}),
        },
        "by_grade": {
            "type": "array",
            "items": _object({"grade": {"type": "string"}, "grade_label": {"type": "string"}, **_GROUP}),
        },
    }
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "A parameter is not one the API takes; the message says what is allowed."),
    "401": _json(_ref("Error"), "No valid token (tokens are required once any exists, or off loopback)."),
}
_NOT_FOUND = {"404": _json(_ref("Error"), "No incident with that id.")}
_BOOL = {"type": "string", "enum": ["true", "false"]}
_ID = {
    "name": "incident_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 32},
}


def _get(
    summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None, by_id: bool = False
) -> dict[str, Any]:
    responses = {"200": ok, **_ERRORS, **(_NOT_FOUND if by_id else {})}
    return {
        "get": {
            "summary": summary,
            "parameters": ([_ID] if by_id else []) + (params or []),
            "responses": responses,
        }
    }


def _query(name: str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": what}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The API described for clients and for schemathesis."""
    listing = [
        _query(
            "state", {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}, "Only incidents in this state."
        ),
        _query("grade", {"type": "string", "enum": list(GRADES)}, "Only incidents of this grade."),
        _query("drill", {"type": "string", "enum": list(DRILL_CHOICES)}, "Drills: include, exclude or only."),
        _query("open", _BOOL, "Hide closed incidents."),
        _query("overdue", _BOOL, "Only incidents with an overdue clock."),
        _query("q", {"type": "string", "maxLength": 100}, "Text in the id or title."),
    ]
    settled = _query("all", _BOOL, "Include met, waived and void clocks.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "breach read-only API",
            "version": __version__,
            "description": "Incidents, deadlines, triggers and response KPIs in the shapes of the CLI's "
            "--json output. Read-only. Send 'Authorization: Bearer <token>' once the workspace has tokens.",
        },
        "paths": {
            "/api/v1/incidents": _get(
                "Incidents, newest first",
                _json({"type": "array", "items": _ref("IncidentItem")}, "Incidents"),
                params=listing,
            ),
            "/api/v1/incidents/{incident_id}": _get(
                "One incident: state, facts, tasks, clocks, formal documents, audit events",
                _json(_ref("Incident"), "The incident"),
                by_id=True,
            ),
            "/api/v1/incidents/{incident_id}/deadlines": _get(
                "The incident's clocks with countdowns and legal basis",
                _json({"type": "array", "items": _ref("Deadline")}, "Deadlines"),
                params=[settled],
                by_id=True,
            ),
            "/api/v1/incidents/{incident_id}/triggers": _get(
                "What may happen next, and why the rest is blocked",
                _json({"type": "array", "items": _ref("Trigger")}, "Triggers"),
                by_id=True,
            ),
            "/api/v1/deadlines": _get(
                "Running clocks across incidents, soonest first",
                _json({"type": "array", "items": _ref("Deadline")}, "Deadlines"),
                params=[
                    _query(
                        "due_within_hours",
                        {"type": "number", "minimum": 0, "maximum": 8784},
                        "Only clocks due within this many hours.",
                    ),
                    _query("overdue", _BOOL, "Only overdue clocks."),
                    settled,
                ],
            ),
            "/api/v1/kpis": _get(
                "Response times and the share of legal deadlines met, overall, by month and by grade",
                _json(_ref("Kpis"), "KPIs"),
                params=[_query("drills", _BOOL, "Count drills too.")],
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}, {}],
    }
