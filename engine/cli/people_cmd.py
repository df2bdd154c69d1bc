"""``breach people import|list|find``: the recipients of an incident's notices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["register", "template_locales"]

people_app = typer.Typer(help="Affected people and client companies of an incident.", no_args_is_help=True)


def template_locales(c: Ctx) -> tuple[tuple[str, ...], str]:
    """The locales notices exist in (template folders, workspace and built-in) and the default one."""
    default = str(c.workspace.settings.get("workspace", {}).get("locale", "zh-CN"))
    found = {
        folder.name
        for root in c.workspace.search_path("templates")
        if root.is_dir()
        for folder in root.iterdir()
        if folder.is_dir() and not folder.name.startswith((".", "_"))
    }
    return (default, *sorted(found - {default})), default


@people_app.command("import")
def import_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8, with or without BOM); see --help of the columns.")
    ],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import the recipients in FILE: every row is checked first; all rows or none are imported.

    Columns: customer_id, name, channel (email|sms|post|public), categories (codes joined by ';'),
    and optionally type (person|company), email, phone, locale, employer (a company's customer_id),
    employer_name, department, contact_name and contact_title (company rows), id_number and
    bank_account (stored masked only), country (ISO 3166 code such as DE or US-CA: the place whose
    notification clocks apply; counted into the incident's residents).
    """
    from engine.notices.people import ImportRejected, import_people

    c: Ctx = ctx.obj
    locales, default = template_locales(c)
    try:
        report = import_people(
            c.store(),
            incident_id,
            file,
            actor=c.actor(actor),
            locales=locales,
            default_locale=default,
            hooks=c.hooks(),
        )
    except ImportRejected as exc:
        for problem in exc.problems:
            print(f"{file.name} {problem}", file=sys.stderr)
        raise BadInput(str(exc)) from None
    if as_json:
        emit_json(
            {
                "incident": report.incident_id,
                "persons": report.persons,
                "companies": report.companies,
                "sha256": report.sha256,
            }
        )
        return
    print(
        f"{report.incident_id}: imported {report.persons} people and {report.companies} client companies "
        f"(file sha256 {report.sha256[:16]}…)"
    )
    from engine.cli.summary import after_write

    after_write(c, report.incident_id, actor=actor)


@people_app.command("list")
def list_cmd(ctx: typer.Context, incident_id: IncidentArg, as_json: JsonOpt = False) -> None:
    """How many recipients an incident has, by type and channel (no names: see the database)."""
    from sqlalchemy import func, select

    from engine.incidents.repository import get_incident
    from engine.notices.people import PERSON

    c: Ctx = ctx.obj
    store = c.store()
    p = PERSON.c
    with store.read() as session:
        get_incident(session, incident_id)
        rows = session.execute(
            select(p.type, p.channel, func.count())
            .where(p.incident_id == incident_id)
            .group_by(p.type, p.channel)
            .order_by(p.type, p.channel)
        ).all()
    counts = [{"type": t, "channel": ch, "count": int(n)} for t, ch, n in rows]
    if as_json:
        emit_json(counts)
        return
    for row in counts:
        print(f"{row['type']:<8} {row['channel']:<7} {row['count']}")
    if not counts:
        print(f"{incident_id} has no recipients yet: breach people import {incident_id} FILE.csv")


@people_app.command("find")
def find_cmd(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(help="A name (or 2+ characters of it), phone, e-mail or customer id.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Was this caller affected, and were they notified? Searches every incident; shows masked values."""
    from engine.notices.lookup import FOUND_LIMIT, find_people

    c: Ctx = ctx.obj
    reader = c.reader()
    try:
        found = find_people(reader, text, c.zone)
    finally:
        reader.close()
    if as_json:
        emit_json([m.to_json() for m in found])
        return
    if not found:
        print("no one matches in any incident")
        return
    for m in found:
        contact = ", ".join(x for x in (m.phone, m.email) if x)
        print(f"{m.incident_id}  {m.customer_id}  {m.name}  {contact}  ({m.type}, by {m.channel})")
        print(f"  incident: {m.incident_title}")
        if not m.notices:
            print("  not notified yet: no notice rendered for them")
        for n in m.notices:
            when = f" {c.fmt_short(n['sent_at'])}" if n["sent_at"] else ""
            print(f"  {n['kind']} v{n['version']} by {n['channel']}: {n['status']}{when}")
    if len(found) == FOUND_LIMIT:
        print(f"(the first {FOUND_LIMIT} matches: narrow the search)")


def register(app: typer.Typer) -> None:
    """Add ``breach people`` to the application."""
    app.add_typer(people_app, name="people")
