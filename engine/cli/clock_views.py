"""How clocks look to the operator: a deadline's status, legal basis and countdown, as tables and lines.

Shared by ``breach deadlines``, ``breach incident show`` and the scheduler's console; free of Typer, so
``incident show`` (answered before Typer loads) stays quick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.cli.context import Ctx, key_table, stdout_console

__all__ = ["ACTIVE", "alert_line", "basis_text", "display_row", "print_deadlines", "status_text"]

ACTIVE = ("pending", "warned", "missed")


def basis_text(basis: dict[str, Any], *, short: bool = False) -> str:
    """The legal basis in one line: article (and source unless ``short``), and the flags that matter."""
    text = (
        f"{basis.get('article') or ''}"
        if short
        else f"{basis.get('article') or ''} {basis.get('source') or ''}"
    )
    text = text.strip()
    if basis.get("note"):
        text += f" [{basis['note']}]"
    if basis.get("verified") is False:
        text += " [unverified]"
    return text


def display_row(c: Ctx, r: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A deadline row (from the read model) as the list and the incident view show it: the one deadline
    shape (``engine.shapes.deadline``)."""
    from engine.shapes import Times, deadline

    return deadline(Times(c.zone), r, now or datetime.now(UTC))


def status_text(row: dict[str, Any]) -> str:
    """Status with what the operator must know: countdown, lateness frozen at meeting, why void."""
    from engine.clocks.durations import format_countdown

    if row["status"] == "met":
        late = row["lateness_seconds"] or 0
        return (
            "met on time"
            if late <= 0
            else f"met {format_countdown(timedelta(seconds=late)).removesuffix(' left')} late"
        )
    if row["status"] in ACTIVE:
        return f"{row['status']}: {row['countdown']}"
    return f"{row['status']}" + (f": {row['note']}" if row["note"] else "")


def print_deadlines(c: Ctx, rows: list[dict[str, Any]], *, title: str, with_incident: bool = True) -> None:
    """The clocks as a table: what, due, countdown or lateness, status and legal basis."""
    from rich.markup import escape

    columns = (["incident"] if with_incident else []) + ["rule", "what", "due", "status", "basis"]
    cells = []
    for r in rows:
        rule = r["rule"] + (f" {r['subject']}" if r["subject"] else "")
        due = c.fmt_short(r["due_at"]) + (" (provisional)" if r["provisional"] else "")
        status = escape(status_text(r))
        if r["overdue"]:
            status = f"[bold red]{status}[/bold red]"
        # Labels and bases are data: their brackets must print, not be read as Rich markup.
        row = ([r["incident_id"]] if with_incident else []) + [
            escape(rule),
            escape(r["label"]),
            due,
            status,
            escape(basis_text(r["basis"], short=True)),
        ]
        cells.append(row)
    stdout_console().print(key_table(columns, cells, keys=("incident", "rule"), title=title))


def alert_line(alert: dict[str, Any]) -> str:
    """One alert in one line: what, which incident and clock, time left or overdue, the legal basis."""
    from engine.clocks.durations import format_countdown

    left = alert.get("remaining_seconds")
    when = format_countdown(timedelta(seconds=left)) if isinstance(left, int) else ""
    clock = " ".join(x for x in (alert["rule"], alert.get("subject") or "") if x)
    what = f" {alert['label']}" if alert.get("label") else ""
    basis = basis_text(alert.get("basis") or {}, short=True)
    # Which level heard of it, and which repeat this is: a person reading the console sees the climb.
    level, repeat = alert.get("level") or 1, alert.get("repeat") or 0
    step = (f" level {level}" if level > 1 else "") + (f" repeat {repeat}" if repeat else "")
    to = f" → {', '.join(alert['channels'])}" if alert.get("channels") else ""
    return (
        f"ALERT {alert['kind']}:{step} {alert['incident_id']} {clock} due {alert['due_at']} ({when}){what}"
        + (f" — {basis}" if basis else "")
        + to
    )
