"""The dashboard's pages: the index of incidents, each incident's live status report, the KPI page, and
the sign-in form that turns a token into a cookie.

No page reads a notice's recipient: the incident page is the status report (counts per channel only),
and the index shows incidents and clocks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.errors import BadInput, NotFound
from engine.playbooks.labels import label_of
from engine.report.gather import gather
from engine.report.render import environment, report_context
from engine.report.words import clock_status, duration_text, local_time
from engine.web.context import WebContext
from engine.web.guard import COOKIE, Guard
from engine.web.queries import DRILL_CHOICES, GRADES, IndexFilters, IndexRow, index_rows
from engine.web.words import PAGE_WORDS

__all__ = ["STATIC", "TEMPLATES", "page_routes"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
_REFRESH_SECONDS = 60
_MAX_FORM = 4096


def page_routes(web: WebContext, guard: Guard) -> list[Route]:
    """The pages, bound to one workspace."""
    env = environment((str(TEMPLATES),))
    words = PAGE_WORDS[web.locale]

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        base = {"w": words, "locale": web.locale, "refresh": None}
        return HTMLResponse(env.get_template(name).render({**base, **context}), status_code=status)

    def bad(exc: BadInput, status: int) -> HTMLResponse:
        return page("message.html.j2", status=status, message=str(exc))

    def index(request: Request) -> Response:
        try:
            filters = IndexFilters.parse(dict(request.query_params))
        except BadInput as exc:
            return bad(exc, 400)
        reader = web.readers.get()
        now = datetime.now(UTC)
        rows = index_rows(reader, filters, now)
        total = int(reader.rows("SELECT COUNT(*) AS n FROM incident")[0]["n"])
        summaries = {
            str(r["sha256"]): r["summary"]
            for r in reader.rows("SELECT sha256, summary FROM playbook_snapshot")
        }
        import json

        parsed = {k: json.loads(v) if isinstance(v, str | bytes) else (v or {}) for k, v in summaries.items()}
        states: dict[str, str] = {}
        for summary in parsed.values():
            for state in summary.get("states", {}):
                states.setdefault(state, label_of(summary, "states", state, web.locale))

        def state_label(row: IndexRow) -> str:
            known = parsed.get(row.summary_sha256, {})
            return f"{label_of(known, 'states', row.state, web.locale)} ({row.state})"

        def clock_text(row: IndexRow) -> str:
            labels = row.nearest_labels
            return (
                f"{row.nearest_rule} {labels.get(web.locale) or labels.get('zh-CN', '')}"
                if row.nearest_due
                else ""
            )

        def left(due: datetime) -> str:
            seconds = int((due - now).total_seconds())
            if seconds > 0:
                return words["left"].format(left=duration_text(seconds, web.locale))
            return words["overdue_by"].format(late=duration_text(-seconds, web.locale))

        # Every cell as text here, once: the template only prints (a call per cell in Jinja cost more
        # than the queries for a thousand incidents).
        shown = [
            {
                "id": r.id,
                "title": r.title,
                "drill": r.drill,
                "state": state_label(r),
                "grade": f"{r.grade_label} ({r.grade})" if r.grade else "—",
                "clock": clock_text(r),
                "due": local_time(r.nearest_due, web.zone) if r.nearest_due else "",
                "due_iso": r.nearest_due.astimezone(UTC).isoformat(timespec="seconds")
                if r.nearest_due
                else "",
                "left": left(r.nearest_due) if r.nearest_due else "",
                "late": bool(r.nearest_due and r.nearest_due <= now),
                "overdue": r.overdue,
                "discovered": local_time(r.discovered_at, web.zone),
            }
            for r in rows
        ]
        return page(
            "index.html.j2",
            rows=shown,
            total=total,
            filters=filters,
            states=sorted(states.items()),
            grades=GRADES,
            drill_choices=DRILL_CHOICES,
            refresh=_REFRESH_SECONDS,
        )

    def incident(request: Request) -> Response:
        ident = str(request.path_params["incident_id"])[:64]
        try:
            report = gather(web.readers.get(), ident, now=datetime.now(UTC), locale=web.locale)
        except NotFound as exc:
            return page("message.html.j2", status=404, message=str(exc))
        context = report_context(report, web.zone)
        context["status_of"] = lambda clock: clock_status(clock, report.generated_at, web.locale)
        return page("incident.html.j2", refresh=_REFRESH_SECONDS, **{**context, "w": words})

    def kpi(request: Request) -> Response:
        from engine.report.kpi import kpis

        drills = request.query_params.get("drills", "false").lower()
        if drills not in ("true", "false"):
            return bad(BadInput("drills: use true or false"), 400)
        measured = kpis(web.readers.get(), zone=web.zone, include_drills=drills == "true").to_json()
        return page(
            "kpi.html.j2",
            k=measured,
            span=lambda seconds: duration_text(int(seconds), web.locale),
        )

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page("login.html.j2", message=None)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM:
                return page("login.html.j2", status=413, message="form too large")
        token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        from anyio import to_thread

        check = await to_thread.run_sync(guard.check, token or None, "/")
        if not check.allowed or check.name is None:
            if check.allowed:  # no token needed here at all: nothing to sign in to
                return RedirectResponse("/", status_code=303)
            await to_thread.run_sync(guard.record, request.scope, check)
            return page("login.html.j2", status=401, message=words["login_refused"])
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    def script(request: Request) -> Response:
        return FileResponse(STATIC / "dashboard.js", media_type="text/javascript")

    return [
        Route("/", index),
        Route("/incidents/{incident_id}", incident),
        Route("/kpi", kpi),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/static/dashboard.js", script),
    ]
