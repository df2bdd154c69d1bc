"""``breach clock add``: when is something due, without an incident."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json, stdout_console
from engine.cli.options import JsonOpt
from engine.errors import BadInput

__all__ = ["register"]

clock_app = typer.Typer(
    help="Legal time arithmetic: durations, working days, holidays.", no_args_is_help=True
)


@clock_app.command("add")
def add_cmd(
    ctx: typer.Context,
    start: Annotated[
        str,
        typer.Option(
            "--from", help="The trigger moment, ISO-8601; without an offset, read in the workspace zone."
        ),
    ],
    duration: Annotated[
        str | None, typer.Option("--duration", help="e.g. 4h, 72h, 30 days, 3 working days, 1 month.")
    ] = None,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Every clock of a jurisdiction rule instead, e.g. EU-NIS2-23."),
    ] = None,
    calendar: Annotated[
        str | None,
        typer.Option(
            "--calendar", help="CN, none or a country code (default: settings [deadlines] calendar)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print when a period of DURATION from TIME ends, which days it skipped and why.

    With --rule, print every clock of that rule as if all its anchors fell at TIME.
    """
    from engine.clocks.calendars import get_calendar
    from engine.clocks.durations import add_duration, format_instant, parse_duration, parse_instant

    c: Ctx = ctx.obj
    zone = c.zone
    if (duration is None) == (rule is None):
        raise BadInput("give either --duration or --rule (e.g. --rule EU-GDPR-33)")
    if rule is not None:
        if calendar is not None:
            raise BadInput("--calendar goes with --duration: a rule's clocks name their own calendars")
        _rule_clocks(c, rule, start, as_json)
        return
    assert duration is not None
    name = (
        calendar
        if calendar is not None
        else str(c.workspace.settings.get("deadlines", {}).get("calendar", "CN"))
    )
    # Everything is parsed before anything is computed, so each bad input is reported on its own.
    moment = parse_instant(start, zone)
    period = parse_duration(duration)
    chosen = get_calendar(name, c.workspace.search_path("config"))
    result = add_duration(moment, period, chosen, zone)
    out = {
        "due_at": format_instant(result.due_at, zone),
        "provisional": result.provisional,
        "calendar": result.calendar,
        "explain": result.explain,
    }
    if as_json:
        emit_json(out)
        return
    console = stdout_console()
    console.print(f"due {out['due_at']}  ({period.text} under calendar {result.calendar})")
    if result.provisional:
        console.print(
            "[bold yellow]provisional:[/bold yellow] it reaches a year without an announced official schedule"
        )
    for line in result.explain:
        console.print(f"  {line}", markup=False)


def _rule_clocks(c: Ctx, rule_id: str, start: str, as_json: bool) -> None:
    """Every clock of one rule from one moment, each with its basis and whether it is verified."""
    from engine.cli.rules_cmd import jurisdiction_rules
    from engine.clocks.calendars import get_calendar
    from engine.clocks.durations import format_instant, parse_instant
    from engine.clocks.intl import rule_clocks

    zone = c.zone
    moment = parse_instant(start, zone)
    jurisdiction, rule = jurisdiction_rules(c).rule(rule_id)
    config = c.workspace.search_path("config")
    clocks = rule_clocks(jurisdiction, rule, moment, lambda name: get_calendar(name, config))
    out = [
        {
            "rule": item.rule,
            "clock": item.clock,
            "label": item.label,
            "due_at": format_instant(item.due.due_at, zone),
            "due_local": format_instant(item.due.due_at, jurisdiction.zone),
            "basis": item.basis,
            "verified": item.basis["verified"],
            "provisional": item.due.provisional,
            "applies_when": item.condition,
            "explain": item.due.explain,
        }
        for item in clocks
    ]
    if as_json:
        emit_json(out)
        return
    console = stdout_console()
    status = "verified" if rule.verified else "[bold yellow]UNVERIFIED (secondary sources only)[/bold yellow]"
    console.print(f"[bold]{rule.id}[/bold] {rule.title}  {status}")
    console.print(f"basis: {rule.article} — {rule.source}", markup=False)
    for entry in out:
        marks = "" if entry["verified"] else "  [yellow]UNVERIFIED[/yellow]"
        marks += "  [bold yellow]provisional[/bold yellow]" if entry["provisional"] else ""
        console.print(
            f"\n{entry['clock']}: due {entry['due_at']} ({jurisdiction.zone} {entry['due_local']}){marks}"
        )
        console.print(f"  {entry['label']} → {entry['basis']['recipient']}", markup=False)
        console.print(f"  {entry['basis']['wording']}", markup=False)
        if entry["basis"].get("note"):
            console.print(f"  note: {entry['basis']['note']}", markup=False)
        if entry["applies_when"]:
            console.print(f"  applies when: {'; '.join(entry['applies_when'])}", markup=False)
        for line in entry["explain"]:
            console.print(f"    {line}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the clock commands to ``app``."""
    app.add_typer(clock_app, name="clock")
