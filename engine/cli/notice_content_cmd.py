"""``breach notices content`` and ``breach notices correct``: what the notices state.

The content is set freely until the first notice goes out and corrected (更正通知) after; both read the
same content file, and showing it lists every documented field with what is still missing. It stands
apart from rendering and sending, which only read the content in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["content_app"]

# Merged into ``breach notices`` by engine.cli.notices_cmd (a Typer added without a name lends its commands).
content_app = typer.Typer()


def _read_content(file: Path) -> Any:
    """The content file, read within the workspace's size limits, parsed and validated."""
    from engine.files.reading import read_text
    from engine.files.structured import load_yaml
    from engine.notices.contexts import NoticeContent

    text = read_text(file, what="notice content file", encoding="utf-8-sig")
    return NoticeContent.parse(load_yaml(text, str(file)), str(file))


@content_app.command("content")
def content_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    file: Annotated[Path | None, typer.Argument(help="YAML or JSON; without it, show the content.")] = None,
    show: Annotated[
        bool,
        typer.Option("--show", help="Show the content in force and every field, marking what is missing."),
    ] = False,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set what the notices state (cause, harm, measures, remedies), until the first notice goes out."""
    from engine.notices.content import set_content

    c: Ctx = ctx.obj
    store = c.store()
    if file is None or show:
        if file is not None:
            raise BadInput("give a FILE to set the content, or --show to see it, not both")
        _show_content(c, incident_id, as_json)
        return
    digest = set_content(store, incident_id, _read_content(file), actor=c.actor(actor))
    print(
        f"{incident_id}: notice content set (sha256 {digest[:16]}…); it can change until the first notice "
        f"goes out. Next: breach notices render {incident_id}"
    )


def _show_content(c: Ctx, incident_id: str, as_json: bool) -> None:
    """The content in force, its version, and each documented field with its value or what is missing."""
    from sqlalchemy import select

    from engine.incidents.repository import get_incident
    from engine.notices.content import CONTENT, reached_count
    from engine.notices.fields import CONTENT_FIELDS, field_value, missing_fields
    from engine.notices.people import PERSON

    store = c.store()
    with store.read() as session:
        get_incident(session, incident_id)
        row = session.execute(select(CONTENT).where(CONTENT.c.incident_id == incident_id)).mappings().first()
        reached = reached_count(session, incident_id)
        locales = {
            str(r[0])
            for r in session.execute(
                select(PERSON.c.locale).where(PERSON.c.incident_id == incident_id).distinct()
            )
        }
    content = dict(row["content"]) if row else {}
    missing = missing_fields(content, c.workspace.settings.get("firm", {}), locales)
    fields = [
        {
            "field": f.path,
            "label": f.zh,
            "required": f.required,
            "value": field_value(content, f.path),
            "meaning": f.meaning,
        }
        for f in CONTENT_FIELDS
    ]
    result = {
        "incident": incident_id,
        "version": row["version"] if row else None,
        "content": content,
        "sha256": row["content_sha256"] if row else None,
        "notices_sent": reached,
        "missing": missing,
        "fields": fields,
    }
    if as_json:
        emit_json(result)
        return
    state = (
        f"version {row['version']}, {reached} notices went out: change it only with breach notices correct"
        if row and reached
        else "not set yet"
        if not row
        else f"version {row['version']}, nothing sent yet: it can still change"
    )
    print(f"{incident_id} notice content: {state}")
    for f in fields:
        value = f["value"]
        shown = "—" if value in (None, "", [], {}) else _one_line(value)
        mark = "required" if f["required"] else "optional"
        print(f"  {f['field']:<26} {mark:<9} {f['label']}: {shown}")
    if missing:
        print(f"missing before notices can be rendered: {', '.join(missing)}")
        print(
            "fill them in a copy of notice-content.example.yaml (in the workspace), then: "
            f"breach notices content {incident_id} FILE"
        )
    else:
        print(f"complete. Next: breach notices render {incident_id}")


def _one_line(value: Any) -> str:
    """A value on one line, every word kept (an operator copies from here)."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(str(text).split())


@content_app.command("correct")
def correct_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    file: Annotated[Path, typer.Argument(help="The corrected content (YAML or JSON), whole.")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct notices that went out: a new content version and a correction notice to everyone notified."""
    from engine.cli.people_cmd import template_locales
    from engine.notices.correction import correct_content

    c: Ctx = ctx.obj
    locales, _default = template_locales(c)
    done = correct_content(c.store(), incident_id, _read_content(file), actor=c.actor(actor), locales=locales)
    if as_json:
        emit_json(
            {
                "incident": incident_id,
                "version": done.version,
                "changed": done.changed,
                "recipients": done.recipients,
                "discarded_documents": done.discarded,
                "sha256": done.sha256,
            }
        )
        return
    print(
        f"{incident_id}: notice content version {done.version} corrects {', '.join(done.changed)}; "
        f"a correction notice is owed to {done.recipients} recipients already notified"
        + (f"; {done.discarded} unsent notices will be rendered again" if done.discarded else "")
    )
    print(f"next: breach notices render {incident_id}, then breach notices send {incident_id}")
