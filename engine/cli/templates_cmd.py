"""``breach templates list|check``: which template files are in force, and their static check.

A command group of its own: templates belong to every document breach writes (notices, formal
documents, reports), not to notices alone.
"""

from __future__ import annotations

import typer

from engine.cli.context import Ctx, emit_json
from engine.cli.options import JsonOpt
from engine.errors import BadInput

__all__ = ["register"]

templates_app = typer.Typer(help="Document templates: which are in force, and a check.", no_args_is_help=True)


@templates_app.command("list")
def templates_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every template file in force per kind and locale, and whether it is the workspace's or built-in."""
    from engine.documents.templating import templates_in_force

    c: Ctx = ctx.obj
    rows = templates_in_force(c.workspace.search_path("templates"))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        formats = ",".join(r["formats"])
        print(f"{r['kind']:<32} {r['locale']:<6} {formats:<14} {r['file']:<40} {r['source']}")


@templates_app.command("check")
def templates_check(ctx: typer.Context) -> None:
    """Check every template against its documented context; each problem as file:line."""
    from engine.documents.templating import check_templates

    c: Ctx = ctx.obj
    paths = c.workspace.search_path("templates")
    problems = check_templates(paths)
    for problem in problems:
        print(problem)
    if problems:
        raise BadInput(f"{len(problems)} problem(s) in the templates; see the lines above")
    count = sum(
        1 for root in paths if root.is_dir() for f in root.glob("*/*") if f.suffix in (".j2", ".docx")
    )
    print(f"templates ok ({count} files checked)")


def register(app: typer.Typer) -> None:
    """Add ``breach templates`` to the application."""
    app.add_typer(templates_app, name="templates")
