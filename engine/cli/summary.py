"""The "what now" block: printed after every write command on an incident and atop ``incident show``.

What it says is decided in :mod:`engine.incidents.whatnow`; this module only prints it. Each id, rule
and command stands on its own line or at the start of one, so nothing that must be typed is ever cut,
whatever the width of the terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.cli.context import Ctx, stdout_console

if TYPE_CHECKING:
    from rich.console import Console

    from engine.incidents.whatnow import ClockNow, WhatNow

__all__ = ["after_write", "print_opened", "print_what_now"]


def _clock_line(c: Ctx, clock: ClockNow) -> str:
    from rich.markup import escape

    rule = clock.rule + (f" {clock.subject}" if clock.subject else "")
    due = c.fmt_short(clock.due_at)
    what = f"  {escape(clock.label)}" if clock.label else ""
    article = f"  ({escape(clock.article)})" if clock.article else ""
    return f"{escape(rule)}  due {due}  {escape(clock.countdown)}{what}{article}"


def print_what_now(c: Ctx, summary: WhatNow, console: Console | None = None) -> None:
    """Print the block: state, overdue clocks (loud), the nearest clock, open tasks, next commands."""
    from rich.markup import escape

    from engine.access import RoleMap, no_members_line

    console = console or stdout_console()
    grade = summary.grade or "not assessed"
    console.print(
        f"[bold]what now[/bold]  {summary.incident_id}  state: [bold]{escape(summary.state)}[/bold] "
        f"({escape(summary.state_label)})  grade: {escape(grade)}"
    )
    for clock in summary.overdue:
        console.print(f"  [bold red]OVERDUE[/bold red]  {_clock_line(c, clock)}")
    if summary.nearest is not None:
        console.print(f"  next deadline  {_clock_line(c, summary.nearest)}")
    elif not summary.overdue and not summary.final:
        console.print("  no clock running")
    if summary.open_tasks:
        console.print("  required tasks open:")
        for task in summary.open_tasks:
            where = f"  [yellow](phase {escape(task.phase_state)})[/yellow]" if task.ahead else ""
            console.print(f"    {escape(task.key)}  {escape(task.label)}{where}")
    if not summary.facts_given and not summary.final:
        console.print(
            "  [yellow]no facts recorded: the grade and the clocks that depend on it wait for them[/yellow]"
        )
    if summary.final:
        console.print("  closed: nothing left to do")
    elif not RoleMap.from_settings(c.workspace.settings).named:
        from engine.cli.team import roles_in_use

        line = no_members_line("ACCOUNT", roles_in_use(c.workspace))
        console.print(f"  [yellow]{escape(line)}[/yellow]")
    for i, command in enumerate(summary.next_commands):
        lead = "  next:" if i == 0 else "       "
        console.print(f"{lead} {escape(command)}")


def _summary(c: Ctx, incident_id: str, actor: str | None) -> tuple[dict[str, Any], WhatNow]:
    """The incident as it now is, and its summary with the triggers allowed once tasks are done."""
    from engine.incidents.whatnow import what_now

    reader = c.reader()
    try:
        row = reader.incident(incident_id, every_document=False)
    finally:
        reader.close()
    summary = what_now(row)
    if not summary.final and not any(not t.ahead for t in summary.open_tasks):
        summary = what_now(row, allowed=_allowed_triggers(c, incident_id, actor))
    return row, summary


def after_write(c: Ctx, incident_id: str, *, actor: str | None = None) -> None:
    """Read the incident as it now is and print its "what now" block (the tail of every write)."""
    _, summary = _summary(c, incident_id, actor)
    print(flush=True)
    print_what_now(c, summary)


def print_opened(c: Ctx, incident_id: str, *, actor: str | None = None) -> None:
    """On stderr (stdout carries the id alone): the clocks the opening started, a warning when the grade
    is "none" only because no facts were given, and the "what now" block."""
    from rich.markup import escape

    from engine.cli.terminal import safe_console
    from engine.incidents.whatnow import OWED, clock_now

    row, summary = _summary(c, incident_id, actor)
    console = safe_console(stderr=True, highlight=False, soft_wrap=True)
    started = [d for d in row["deadlines"] if d["status"] in OWED]
    if started:
        console.print(f"clocks started ({len(started)}):")
        for clock in sorted((clock_now(d) for d in started), key=lambda k: k.due_at):
            console.print(f"  {_clock_line(c, clock)}")
    else:
        console.print("no clock started yet: clocks start as the facts and the steps call for them")
    if not summary.facts_given and summary.grade in (None, "none"):
        console.print(
            f"[bold yellow]warning:[/bold yellow] grade is {escape(str(summary.grade))} because no facts "
            f"were given; set them with: breach incident facts {incident_id} --set people_affected=N "
            "--set records.KIND=N (see breach assess --help)"
        )
    print_what_now(c, summary, console)


def _allowed_triggers(c: Ctx, incident_id: str, actor: str | None) -> list[str]:
    """The triggers that may fire now (asked only once the phase's tasks are done)."""
    from engine.incidents.flow import list_triggers
    from engine.incidents.repository import get_incident

    with c.store().read() as session:
        incident = get_incident(session, incident_id)
        infos = list_triggers(session, incident, actor=c.actor(actor), hooks=c.hooks())
        state = incident.state
    allowed = [i for i in infos if i.allowed]
    # Steps that move the incident on come first; those that stay in the state are side records.
    moving = [i.trigger for i in allowed if i.dest != state]
    return moving or [i.trigger for i in allowed]
