"""``breach playbook list|show|validate|diagram``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.context import Ctx, emit_json, key_table, stdout_console
from engine.cli.options import JsonOpt
from engine.errors import BadInput

__all__ = ["register"]

playbook_app = typer.Typer(help="Playbooks: list, show, validate, diagram.", no_args_is_help=True)


@playbook_app.command("list")
def list_playbooks(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the playbooks in effect (workspace files shadow built-in ones of the same name)."""
    from engine.playbooks.catalog import PlaybookCatalog

    c: Ctx = ctx.obj
    sources = PlaybookCatalog(c.workspace).all()
    rows: list[dict[str, Any]] = [
        {
            "id": s.playbook.id,
            "version": s.playbook.version,
            "title": s.playbook.title("zh-CN"),
            "title_en": s.playbook.title("en"),
            "jurisdictions": s.playbook.jurisdictions,
            "path": s.origin,
            "sha256": s.sha256,
        }
        for s in sources
    ]
    if as_json:
        emit_json(rows)
        return
    from rich.markup import escape

    cells = [
        [
            r["id"],
            str(r["version"]),
            escape(f"{r['title']}\n{r['title_en']}"),
            ", ".join(r["jurisdictions"]),
            escape(r["path"]),
        ]
        for r in rows
    ]
    headers = ("id", "version", "title", "jurisdictions", "file")
    stdout_console().print(key_table(headers, cells, keys=("id",)))


@playbook_app.command("show")
def show_playbook(ctx: typer.Context, playbook_id: str, as_json: JsonOpt = False) -> None:
    """Show a playbook's states, tasks and transitions."""
    from engine.playbooks.catalog import PlaybookCatalog

    c: Ctx = ctx.obj
    source = PlaybookCatalog(c.workspace).get(playbook_id)
    pb = source.playbook
    if as_json:
        emit_json({**pb.model_dump(mode="json"), "sha256": source.sha256, "path": source.origin})
        return
    console = stdout_console()
    console.print(f"[bold]{pb.id}[/bold] v{pb.version}  {pb.title('zh-CN')} / {pb.title('en')}")
    console.print(f"jurisdictions: {', '.join(pb.jurisdictions)}   file: {source.origin}")
    for state in pb.states:
        phase = f"phase {state.phase}" if state.phase else ("final" if state.final else "")
        console.print(f"\n[bold]{state.id}[/bold]  {state.label('zh-CN')} / {state.label('en')}  ({phase})")
        for task in state.tasks:
            mark = "required" if task.required else "optional"
            console.print(f"  - {task.id}: {task.label('zh-CN')} [{mark}]")
        for t in pb.transitions_from(state.id):
            dest = "(stays)" if t.internal else f"-> {t.dest}"
            extras = []
            if t.guards:
                extras.append("guards: " + ", ".join(g if p is None else f"{g}={p}" for g, p in t.guards))
            if t.reason == "required":
                extras.append("needs reason")
            if t.approver:
                extras.append("needs approver")
            if t.inputs:
                extras.append("inputs: " + ", ".join(i.name for i in t.inputs))
            if t.roles:
                extras.append("roles: " + ", ".join(t.roles))
            tail = f"  [{'; '.join(extras)}]" if extras else ""
            console.print(f"  {t.trigger} {dest}  {t.label('zh-CN')}{tail}")


@playbook_app.command("validate")
def validate(files: Annotated[list[Path], typer.Argument(help="Playbook YAML files.")]) -> None:
    """Check playbook files; every error is printed with file, line and what was expected."""
    from engine.files import read_text
    from engine.playbooks.parsing import playbook_errors

    failed = False
    for path in files:
        try:
            source, errors = playbook_errors(read_text(path, what="playbook"), str(path))
        except BadInput as exc:  # unreadable, over a limit, an alias bomb: reported like any error
            print(exc)
            failed = True
            continue
        if errors:
            failed = True
            for line in errors:
                print(line)
        elif source is not None:
            pb = source.playbook
            print(
                f"{path}: ok ({pb.id} v{pb.version}: {len(pb.states)} states, "
                f"{len(pb.transitions)} transitions)"
            )
    if failed:
        raise BadInput("invalid playbook file(s); see the lines above")


@playbook_app.command("diagram")
def diagram(
    ctx: typer.Context,
    playbook_id: str,
    locale: Annotated[str, typer.Option(help="Label language: zh-CN or en.")] = "zh-CN",
) -> None:
    """Print a Mermaid state diagram of the playbook."""
    from engine.playbooks.catalog import PlaybookCatalog
    from engine.playbooks.machine import mermaid_diagram

    c: Ctx = ctx.obj
    if locale not in ("zh-CN", "en"):
        raise BadInput(f"unknown locale {locale!r}: use zh-CN or en")
    print(mermaid_diagram(PlaybookCatalog(c.workspace).get(playbook_id).playbook, locale), end="")


def register(app: typer.Typer) -> None:
    """Add the playbook commands to ``app``."""
    app.add_typer(playbook_app, name="playbook")
