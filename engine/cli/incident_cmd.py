"""``breach incident open|list|show|advance|triggers`` and ``breach task done``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.complete import IncidentArg, TriggerArg, open_tasks
from engine.cli.context import Ctx, emit_json, key_table, stdout_console
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["parse_pairs", "register"]

incident_app = typer.Typer(help="Incidents: open, list, show, advance, triggers.", no_args_is_help=True)
task_app = typer.Typer(help="Tasks of an incident's current phase.", no_args_is_help=True)
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="When it really happened, if before now (ISO-8601; without an offset, the workspace zone).",
    ),
]


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
    from engine.incidents.opening import open_incident
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
    # The id alone on stdout, so that ID=$(breach incident open ...) works; the rest is for the eye.
    print(incident.id)
    from engine.cli.summary import print_opened

    print_opened(c, incident.id, actor=actor)


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
    if state is not None and not rows:
        # No match is an answer only for a state that exists; a typo must not read as "none there".
        from engine.playbooks.catalog import PlaybookCatalog

        sources = PlaybookCatalog(c.workspace).all()
        known = sorted({spec.id for source in sources for spec in source.playbook.states})
        if state not in known:
            raise BadInput(f"--state {state!r}: no playbook has that state; states: {', '.join(known)}")
    from engine.shapes import Times, incident_item

    times = Times(c.zone)
    out = [incident_item(times, r) for r in rows]
    if as_json:
        emit_json(out)
        return
    from rich.markup import escape

    cells = [
        [
            r["id"],
            escape(r["title"]) + (" [演练]" if r["drill"] else ""),
            r["playbook"],
            r["state"],
            r["grade"] or "",
            c.fmt_short(r["opened_at"]),
        ]
        for r in out
    ]
    headers = ("id", "title", "playbook", "state", "grade", "opened")
    stdout_console().print(key_table(headers, cells, keys=("id",)))


@incident_app.command("show")
def show_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    as_json: JsonOpt = False,
    full: Annotated[bool, typer.Option("--full", help="The whole timeline, not its latest events.")] = False,
) -> None:
    """Show an incident: what now, then tasks, clocks, documents and its audit trail."""
    from engine.cli.views import incident_json, print_incident

    c: Ctx = ctx.obj
    reader = c.reader()
    row = reader.incident(incident_id, every_document=as_json)
    reader.close()
    if as_json:
        emit_json(incident_json(c, row))
    else:
        print_incident(c, row, full=full)


@incident_app.command("what-now")
def what_now_cmd(ctx: typer.Context, incident_id: IncidentArg, as_json: JsonOpt = False) -> None:
    """What to do now: state, nearest clock, overdue clocks, open required tasks, next commands."""
    from engine.cli.summary import print_what_now
    from engine.incidents.whatnow import what_now
    from engine.shapes import Times

    c: Ctx = ctx.obj
    reader = c.reader()
    try:
        row = reader.incident(incident_id, every_document=False)
    finally:
        reader.close()
    summary = what_now(row)
    if as_json:
        emit_json(summary.to_json(Times(c.zone).iso))
    else:
        print_what_now(c, summary)


@incident_app.command("advance")
def advance_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    trigger: TriggerArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required by some triggers).")] = None,
    approver: Annotated[
        str | None, typer.Option("--approver", help="Who approved it (some triggers).")
    ] = None,
    inputs: Annotated[list[str] | None, typer.Option("--input", help="KEY=VALUE a trigger takes.")] = None,
    expect_version: Annotated[
        int | None, typer.Option("--expect-version", help="Refuse if the incident moved past this version.")
    ] = None,
    actor: AsOpt = None,
    at: AtOpt = None,
) -> None:
    """Fire a trigger: guards, state change, next tasks and audit, all or nothing.

    A trigger that needs an approver becomes a request instead: the approver named with --approver
    takes the step by running 'breach approve ID REQUEST' themselves.
    """
    from engine.clocks.durations import parse_instant
    from engine.incidents.flow import advance
    from engine.incidents.repository import get_incident, incident_playbook

    c: Ctx = ctx.obj
    values = parse_pairs(inputs or [], "--input")
    when = parse_instant(at, c.zone) if at is not None else None
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
        from engine.cli.summary import after_write

        after_write(c, incident_id, actor=actor)
        return
    from engine.cli.team import role_hint

    with role_hint(c, c.actor(actor)):
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
            at=when,
        )
    moved = "stays in" if result.from_state == result.to_state else f"{result.from_state} →"
    print(f"{incident_id}: {trigger}: {moved} {result.to_state} (version {result.version})")
    for effect in result.effects:
        print(f"  {_in_zone(c, effect)}")
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


def _in_zone(c: Ctx, effect: str) -> str:
    """An effect as the playbook words it ("contained_at = <UTC time>"), with the moment in the zone."""
    from datetime import datetime

    name, sep, value = effect.partition(" = ")
    try:
        moment = datetime.fromisoformat(value) if sep else None
    except ValueError:
        return effect
    if moment is None or moment.tzinfo is None:  # a date or a plain value is shown as given
        return effect
    return f"{name} = {c.fmt_time(moment)}"


@incident_app.command("triggers")
def triggers_cmd(
    ctx: typer.Context, incident_id: IncidentArg, as_json: JsonOpt = False, actor: AsOpt = None
) -> None:
    """What may happen next, and for each blocked step, why."""
    from engine.incidents.flow import list_triggers
    from engine.incidents.repository import get_incident
    from engine.incidents.tasks import early_tasks

    c: Ctx = ctx.obj
    store = c.store()
    with store.read() as session:
        incident = get_incident(session, incident_id)
        infos = list_triggers(session, incident, actor=c.actor(actor), hooks=c.hooks())
        early = early_tasks(session, incident)
        state = incident.state
    if as_json:
        from engine.shapes import trigger

        emit_json([trigger(i) for i in infos])
        return
    from rich.markup import escape

    cells = [
        [
            i.trigger,
            escape(i.label),
            i.dest or "",
            "yes" if i.allowed else "no",
            escape("; ".join(i.blocked_by + ([f"needs {' '.join(i.needs)}"] if i.needs else []))),
        ]
        for i in infos
    ]
    headers = ("trigger", "", "to", "allowed", "blocked by / needs")
    console = stdout_console()
    console.print(key_table(headers, cells, keys=("trigger",), title=f"{incident_id} in {state}"))
    if early:
        # The console folds the explanation at the terminal's width; the task id starts its line whole.
        console.print("Tasks open before their phase (breach task done ID TASK [--at TIME]):")
        for item in early:
            console.print(
                escape(f"  {item.task}: {item.status}, required by {item.state} (opens when {item.opens})")
            )


@task_app.command("done")
def task_done(
    ctx: typer.Context,
    incident_id: IncidentArg,
    tasks: Annotated[
        list[str],
        typer.Argument(
            help="One or more task ids, completed together (all or none).", autocompletion=open_tasks
        ),
    ],
    note: Annotated[str | None, typer.Option("--note", help="A note kept in the audit trail.")] = None,
    at: AtOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is recorded late (needed for --at over 24 h back).")
    ] = None,
    late_reason: Annotated[
        str | None,
        typer.Option(
            "--late-reason",
            help="Why a regulator report is late (CN-CAC-RPT-10, 迟报): printed in the report this step "
            "produces; kept as report item late_reason.",
        ),
    ] = None,
    actor: AsOpt = None,
) -> None:
    """Mark open tasks done, all or none: those of the current phase, or ones the playbook opens early."""
    from engine.clocks.durations import format_instant, parse_instant
    from engine.incidents.tasks import complete_tasks

    c: Ctx = ctx.obj
    when = parse_instant(at, c.zone) if at is not None else None
    hooks = c.hooks()
    if late_reason is not None:
        from engine.cli.report_data_cmd import late_reason_hook

        # First: the documents this step produces are rendered by a later hook of the same step.
        hooks.after_change.insert(0, late_reason_hook(late_reason, c.zone))
    keys = complete_tasks(
        c.store(),
        incident_id,
        tasks,
        actor=c.actor(actor),
        note=note,
        hooks=hooks,
        at=when,
        reason=reason,
        zone=c.zone,
    )
    done_at = f" at {format_instant(when, c.zone)}" if when is not None else ""
    for key in keys:
        print(f"{incident_id}: task {key} done{done_at}")
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


def register(app: typer.Typer) -> None:
    """Add the incident and task commands to ``app``."""
    app.add_typer(incident_app, name="incident")
    app.add_typer(task_app, name="task")
