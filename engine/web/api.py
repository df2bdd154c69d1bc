"""The read-only HTTP API under ``/api/v1``: incidents, one incident, deadlines, triggers, KPIs.

Every answer is JSON in the CLI's ``--json`` shapes (``engine.shapes``) and is described by the
OpenAPI document at ``/api/v1/openapi.json``. Errors are ``{"error": ..., "status": ...}``: 400 for a bad
parameter, 404 for an unknown incident; nothing an input can do yields a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import shapes
from engine.errors import BadInput, NotFound
from engine.web.context import WebContext
from engine.web.openapi import openapi_document
from engine.web.queries import IndexFilters, deadline_rows, index_rows

__all__ = ["api_routes"]

_ID_MAX = 32


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _incident_id(request: Request) -> str:
    value = str(request.path_params["incident_id"])
    if len(value) > _ID_MAX or not value.isprintable():
        raise NotFound(f"no incident {value[:_ID_MAX]!r}")
    return value


def _bool(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise BadInput(f"{name}: use true or false")
    return value == "true"


def api_routes(web: WebContext) -> list[Route]:
    """The API's routes, bound to one workspace's database."""

    def answer(work: Any) -> Any:
        def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(work(request))
            except NotFound as exc:
                return _error(404, str(exc))
            except BadInput as exc:
                return _error(400, str(exc))

        return endpoint

    def incidents(request: Request) -> list[dict[str, Any]]:
        filters = IndexFilters.parse(dict(request.query_params), strict=True)
        now = datetime.now(UTC)
        reader = web.readers.get()
        wanted = {row.id for row in index_rows(reader, filters, now)}
        from engine.web.queries import incident_rows

        return [shapes.incident_item(web.times, r) for r in incident_rows(reader) if r["id"] in wanted]

    def incident(request: Request) -> dict[str, Any]:
        row = web.readers.get().incident(_incident_id(request), every_document=False)
        return shapes.incident(web.times, row, datetime.now(UTC), persons=False)

    def incident_deadlines(request: Request) -> list[dict[str, Any]]:
        ident = _incident_id(request)
        reader = web.readers.get()
        if not reader.rows("SELECT id FROM incident WHERE id = ?", (ident,)):
            raise NotFound(f"no incident {ident!r}")
        now = datetime.now(UTC)
        rows = deadline_rows(reader, incident_id=ident, include_settled=_bool(request, "all"), now=now)
        return [shapes.deadline(web.times, r, now) for r in rows]

    def deadlines(request: Request) -> list[dict[str, Any]]:
        raw = request.query_params.get("due_within_hours")
        within = None
        if raw is not None:
            try:
                within = float(raw)
            except ValueError:
                raise BadInput("due_within_hours: a number of hours, e.g. 24") from None
            if within != within:  # NaN
                raise BadInput("due_within_hours: a number of hours, e.g. 24")
        now = datetime.now(UTC)
        rows = deadline_rows(
            web.readers.get(),
            within_hours=within,
            overdue=_bool(request, "overdue"),
            include_settled=_bool(request, "all"),
            now=now,
        )
        return [shapes.deadline(web.times, r, now) for r in rows]

    def triggers(request: Request) -> list[dict[str, Any]]:
        return [shapes.trigger(t) for t in web.triggers(_incident_id(request), request)]

    def kpis(request: Request) -> dict[str, Any]:
        from engine.report.kpi import kpis as measure

        return measure(web.readers.get(), zone=web.zone, include_drills=_bool(request, "drills")).to_json()

    def openapi(request: Request) -> dict[str, Any]:
        return openapi_document()

    return [
        Route("/api/v1/openapi.json", answer(openapi)),
        Route("/api/v1/incidents", answer(incidents)),
        Route("/api/v1/incidents/{incident_id}", answer(incident)),
        Route("/api/v1/incidents/{incident_id}/deadlines", answer(incident_deadlines)),
        Route("/api/v1/incidents/{incident_id}/triggers", answer(triggers)),
        Route("/api/v1/deadlines", answer(deadlines)),
        Route("/api/v1/kpis", answer(kpis)),
    ]
