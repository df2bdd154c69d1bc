"""``breach report ID``: the incident's status as one HTML or PDF file a manager reads without the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx
from engine.errors import BadInput

__all__ = ["register"]

FORMATS = ("html", "pdf")


def report_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    fmt: Annotated[str, typer.Option("--format", help="html (one self-contained file) or pdf.")] = "html",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="File to write (default: out/ID/status_report_ID.FORMAT in the workspace)."
        ),
    ] = None,
    locale: Annotated[
        str | None, typer.Option("--locale", help="zh-CN or en (default: the workspace's locale).")
    ] = None,
) -> None:
    """Write the status report: summary, clocks as charts, notification progress, tasks, documents, audit."""
    from datetime import UTC, datetime

    from engine.documents.render import safe_filename
    from engine.files import write_private
    from engine.report.gather import gather
    from engine.report.render import render_html, render_pdf
    from engine.report.words import pick_locale

    c: Ctx = ctx.obj
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r}: use html or pdf")
    if locale is not None and locale.replace("_", "-").split("-")[0].lower() not in ("zh", "en"):
        raise BadInput(f"--locale {locale!r}: use zh-CN or en")
    chosen = pick_locale(locale or str(c.workspace.settings.get("workspace", {}).get("locale", "zh-CN")))
    default_name = safe_filename("status_report", incident_id, ext=fmt)
    target = (
        out if out is not None else c.workspace.out_dir / safe_filename(incident_id, ext="") / default_name
    )
    if target.name in ("", ".", "..") or target.is_dir():
        raise BadInput(f"--out {out}: name a file, not a folder")
    reader = c.reader()
    try:
        report = gather(reader, incident_id, now=datetime.now(UTC), locale=chosen)
    finally:
        reader.close()
    html = render_html(report, c.zone)
    content = html.encode("utf-8") if fmt == "html" else render_pdf(html)
    # Below the workspace no folder may be a link; a file named with --out is written where it says.
    written = write_private(target.parent, target.name, content, root=c.workspace.home)
    print(written)
    if report.drill:
        print("drill: every page is marked 演练 DRILL")


def register(app: typer.Typer) -> None:
    """Add ``breach report`` to ``app``."""
    app.command("report")(report_cmd)
