"""The status report as one self-contained HTML file (styles and SVG charts inline, nothing fetched) and
as PDF through WeasyPrint, from the templates shipped beside this module.

The same body template is the incident page of the web dashboard, so what a manager prints and what
the team watches never differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from engine.report.charts import clock_chart, progress_chart
from engine.report.gather import StatusReport
from engine.report.words import WORDS, clock_status, duration_text, local_time

__all__ = ["TEMPLATES", "environment", "render_html", "render_pdf", "report_context"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=8)
def environment(extra: tuple[str, ...] = ()) -> Environment:
    """The (trusted, shipped) report templates, plus ``extra`` folders searched first (the web's).

    Autoescaped throughout: titles, labels and notes are operator input and print as text.
    """
    env = Environment(
        loader=FileSystemLoader([*extra, str(TEMPLATES)], encoding="utf-8"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    return env


def report_context(report: StatusReport, zone: str) -> dict[str, Any]:
    """What the report body template is given: the report, its words, its charts and formatters."""
    locale = report.locale
    words = WORDS[locale]
    now = report.generated_at
    clocks_svg = clock_chart(report.clocks, now, zone, now_word=words["now"])
    progress_svg = progress_chart(report.channels, zone, total_word=words["notified_axis"])

    def when(value: datetime | None) -> str:
        return local_time(value, zone)

    return {
        "r": report,
        "w": words,
        "locale": locale,
        "zone": zone,
        "now": now,
        "when": when,
        "status_of": lambda clock: clock_status(clock, now, locale),
        "span": lambda seconds: duration_text(int(seconds), locale),
        # Drawn by matplotlib from numbers and rule ids only: markup we made, not operator text.
        "clocks_svg": Markup(clocks_svg) if clocks_svg else None,
        "progress_svg": Markup(progress_svg) if progress_svg else None,
    }


def render_html(report: StatusReport, zone: str, *, extra: Iterable[str] = ()) -> str:
    """The whole report as one HTML document."""
    template = environment(tuple(extra)).get_template("status_report.html.j2")
    return template.render(report_context(report, zone))


def render_pdf(html: str) -> bytes:
    """The report laid out as PDF (A4, the drill mark in every page's top margin)."""
    from engine.documents.render import html_to_pdf

    return html_to_pdf(html)
