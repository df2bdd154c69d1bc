"""``breach clock add``: when is something due, without an incident."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json, stdout_console

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
        str, typer.Option("--duration", help="e.g. 4h, 72h, 30 days, 3 working days, 1 month.")
    ],
    calendar: Annotated[
        str | None,
        typer.Option(
            "--calendar", help="CN, none or a country code (default: settings [deadlines] calendar)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print when a period of DURATION from TIME ends, which days it skipped and why."""
    from engine.clocks.calendars import get_calendar
    from engine.clocks.durations import add_duration, format_instant, parse_duration, parse_instant

    c: Ctx = ctx.obj
    zone = c.zone
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


def register(app: typer.Typer) -> None:
    """Add the clock commands to ``app``."""
    app.add_typer(clock_app, name="clock")
