"""``breach incident open|list|show|advance|triggers`` and ``breach task done``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json, stdout_console
from engine.errors import BadInput

__all__ = ["parse_pairs", "register"]

incident_app = typer.Typer(help="Incidents: open, list, show, advance, triggers.", no_args_is_help=True)
task_app = typer.Typer(help="Tasks of an incident's current phase.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AsOpt = Annotated[str | None, typer.Option("--as", help="Act as NAME instead of the OS user.")]


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``["ref=X", "due_at=2026-12-01"]`` as a mapping; a pair without ``=`` is refused."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value
    return values


@incident_app.command("open")
def open_cmd(
    ctx: typer.Context,
    playbook: Annotated[str, typer.Option("--playbook", help="Playbook id, e.g. cn-agency-firm.")],
    title: Annotated[str, typer.Option("--title", help="A short title (no personal data).")],
    discovered_at: Annotated[
        str,
        typer.Option(
            "--discovered-at",
            help="When the leak was discovered; without an offset, read in the workspace zone.",
        ),
    ],
    drill: Annotated[
        bool, typer.Option("--drill", help="A drill: documents marked 演练, no real mail.")
    ] = False,
    facts_file: Annotated[
        Path | None, typer.Option("--facts", help="A YAML/JSON file of the leak's facts.")
    ] = None,
    pairs: Annotated[
        list[str] | None, typer.Option("--set", help="A fact as KEY=VALUE (repeatable).")
    ] = None,
    actor: AsOpt = None,
) -> None:
    """Open an incident and print its id."""
    from engine.cli.assess_cmd import collect_facts
    from engine.clocks.durations import parse_instant
    from engine.incidents.flow import open_incident
    from engine.legal.facts import facts_to_dict, merge_facts
    from engine.playbooks.catalog import PlaybookCatalog

    c: Ctx = ctx.obj
    when = parse_instant(discovered_at, c.zone)
    # Facts are checked in full before anything is written.
    facts = facts_to_dict(merge_facts({}, collect_facts(pairs, facts_file, c.zone)))
    store = c.store()
    source = PlaybookCatalog(c.workspace).get(playbook)
    incident = open_incident(
        store,
        source=source,
        title=title,
        discovered_at=when,
        actor=c.actor(actor),
        zone=c.zone,
        drill=drill,
        facts=facts,
        hooks=c.hooks(),
    )
    print(incident.id)


@incident_app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only incidents in this state.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Hide closed incidents.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List incidents, newest first."""
    c: Ctx = ctx.obj
    reader = c.reader()
    rows = reader.incidents(state=state, include_closed=not open_only)
    reader.close()
    out = [
        {
            "id": r["id"],
            "title": r["title"],
            "playbook": r["playbook_id"],
            "state": r["state"],
            "version": r["version"],
            "drill": r["drill"],
            "opened_at": c.fmt_time(r["opened_at"]),
            "discovered_at": c.fmt_time(r["discovered_at"]),
            "grade": (r["assessment"] or {}).get("grade"),
        }
        for r in rows
    ]
    if as_json:
        emit_json(out)
        return
    from rich.table import Table

    table = Table("id", "title", "playbook", "state", "grade", "opened")
    for r in out:
        table.add_row(
            r["id"] + (" [演练]" if r["drill"] else ""),
            r["title"],
            r["playbook"],
            r["state"],
            r["grade"] or "",
            r["opened_at"][:16].replace("T", " "),
        )
    stdout_console().print(table)


@incident_app.command("show")
def show_cmd(ctx: typer.Context, incident_id: str, as_json: JsonOpt = False) -> None:
    """Show an incident: state, tasks, clocks, documents and its audit trail."""
    from engine.cli.views import incident_json, print_incident

    c: Ctx = ctx.obj
    reader = c.reader()
    row = reader.incident(incident_id, every_document=as_json)
    reader.close()
    if as_json:
        emit_json(incident_json(c, row))
    else:
        print_incident(c, row)


@incident_app.command("advance")
def advance_cmd(
    ctx: typer.Context,
    incident_id: str,
    trigger: str,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required by some triggers).")] = None,
    approver: Annotated[
        str | None, typer.Option("--approver", help="Who approved it (some triggers).")
    ] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="KEY=VALUE a trigger takes.")] = None,
    expect_version: Annotated[
        int | None, typer.Option("--expect-version", help="Refuse if the incident moved past this version.")
    ] = None,
    actor: AsOpt = None,
) -> None:
    """Fire a trigger: guards, state change, next tasks and audit, all or nothing.

    A trigger that needs an approver becomes a request instead: the approver named with --approver
    takes the step by running 'breach approve ID REQUEST' themselves.
    """
    from engine.incidents.flow import advance
    from engine.incidents.repository import get_incident, incident_playbook

    c: Ctx = ctx.obj
    values = parse_pairs(inputs or [], "--input")
    store = c.store()
    with store.read() as session:
        incident = get_incident(session, incident_id)
        spec = incident_playbook(session, incident).playbook.transition(trigger, incident.state)
    if spec is not None and spec.approver:
        from engine.approvals.service import expires_after, request_trigger

        request = request_trigger(
            store,
            incident_id,
            trigger,
            actor=c.actor(actor),
            approver=approver or "",
            reason=reason,
            inputs=values,
            lifetime=expires_after(c.workspace.settings),
        )
        print(
            f"{incident_id}: {trigger} waits for {request.approver}'s approval (request {request.id}, "
            f"until {c.fmt_time(request.expires_at)}): they run 'breach approve {incident_id} {request.id}'"
        )
        return
    result = advance(
        store,
        incident_id,
        trigger,
        actor=c.actor(actor),
        zone=c.zone,
        hooks=c.hooks(),
        reason=reason,
        approver=approver,
        inputs=values,
        expected_version=expect_version,
    )
    moved = "stays in" if result.from_state == result.to_state else f"{result.from_state} →"
    print(f"{incident_id}: {trigger}: {moved} {result.to_state} (version {result.version})")
    for effect in result.effects:
        print(f"  {effect}")


@incident_app.command("triggers")
def triggers_cmd(ctx: typer.Context, incident_id: str, as_json: JsonOpt = False, actor: AsOpt = None) -> None:
    """What may happen next, and for each blocked step, why."""
    from engine.incidents.flow import list_triggers
    from engine.incidents.repository import get_incident

    c: Ctx = ctx.obj
    store = c.store()
    with store.read() as session:
        incident = get_incident(session, incident_id)
        infos = list_triggers(session, incident, actor=c.actor(actor), hooks=c.hooks())
        state = incident.state
    if as_json:
        emit_json([i.to_json() for i in infos])
        return
    from rich.table import Table

    table = Table("trigger", "", "to", "allowed", "blocked by / needs", title=f"{incident_id} in {state}")
    for i in infos:
        why = "; ".join(i.blocked_by + ([f"needs {' '.join(i.needs)}"] if i.needs else []))
        table.add_row(i.trigger, i.label, i.dest or "", "yes" if i.allowed else "no", why)
    stdout_console().print(table)


@task_app.command("done")
def task_done(
    ctx: typer.Context,
    incident_id: str,
    task: str,
    note: Annotated[str | None, typer.Option("--note", help="A note kept in the audit trail.")] = None,
    actor: AsOpt = None,
) -> None:
    """Mark a task of the incident's current phase done."""
    from engine.incidents.flow import complete_task

    c: Ctx = ctx.obj
    key = complete_task(c.store(), incident_id, task, actor=c.actor(actor), note=note, hooks=c.hooks())
    print(f"{incident_id}: task {key} done")


def register(app: typer.Typer) -> None:
    """Add the incident and task commands to ``app``."""
    app.add_typer(incident_app, name="incident")
    app.add_typer(task_app, name="task")
