"""How incidents look to the operator: the JSON contract and the Rich renderings, shared by commands."""

from __future__ import annotations

from typing import Any

from engine.cli.context import Ctx
from engine.playbooks.labels import label_of

__all__ = ["incident_json", "print_incident", "print_timeline"]


def incident_json(c: Ctx, row: dict[str, Any]) -> dict[str, Any]:
    """The ``breach incident show --json`` object (``engine.shapes.incident``; see the CLI contract)."""
    from datetime import UTC, datetime

    from engine.shapes import Times, incident

    return incident(Times(c.zone), row, datetime.now(UTC))


def _details(c: Ctx, e: dict[str, Any]) -> list[str]:
    """What an event says, in a few words: its reason and the short values it recorded."""
    inputs = e["inputs"]
    details = [e["reason"]] if e["reason"] else []
    if e["kind"] == "opened":
        details.append(f"discovered {c.fmt_short(inputs.get('discovered_at'))}")
        if inputs.get("drill"):
            details.append("drill")
    elif e["kind"] == "facts":
        changed = inputs.get("changed", {})
        details += [f"{k}: {v.get('from')} → {v.get('to')}" for k, v in changed.items()]
        if "grade" in inputs:
            details.append(f"grade {inputs['grade'].get('from')} → {inputs['grade'].get('to')}")
    elif e["kind"] == "documents_produced":
        details.append(f"{inputs.get('kind')} {inputs.get('number', '')}".strip())
    elif e["kind"] == "responsible_recorded":
        details.append(f"{inputs.get('name')}: {inputs.get('responsibility')}, {inputs.get('sanction')}")
    elif e["kind"] == "deadline_recomputed":
        details.append(f"{inputs.get('rule')} due {c.fmt_short(inputs.get('new_due_at'))}")
    else:
        # Short scalar values only: file maps, fact dumps and effect lists belong in --json.
        for key, value in inputs.items():
            if key in ("task", "effects", "title", "files", "facts") or isinstance(value, dict | list):
                continue
            if len(str(value)) <= 60:
                details.append(f"{key}={value}")
    return [str(d) for d in details]


TIMELINE_TAIL = 12
"""Events ``incident show`` lists without ``--full``: the latest are the ones that matter under pressure."""


def print_timeline(
    c: Ctx,
    row: dict[str, Any],
    *,
    title: str = "Timeline",
    tasks: bool = True,
    last: int | None = None,
) -> None:
    """The incident's audit events as a readable table (``tasks=False`` leaves out task ticks;
    ``last`` keeps only that many of the latest events and says how many earlier ones were left out)."""
    from rich.markup import escape

    from engine.cli.context import key_table, stdout_console

    labels = row["labels"]
    events = [e for e in row["events"] if tasks or e["kind"] != "task_done"]
    hidden = 0
    if last is not None and len(events) > last:
        hidden = len(events) - last
        events = events[-last:]
    cells = []
    for e in events:
        if e["kind"] == "trigger":
            what = f"{e['trigger']} ({labels.get('triggers', {}).get(e['trigger'], {}).get('zh-CN', '')})"
        elif e["kind"] == "task_done":
            task = e["inputs"].get("task")
            what = f"task done: {label_of(labels, 'tasks', task)}"
        else:
            what = e["kind"]
        state = label_of(labels, "states", e["to_state"])
        if e["from_state"] and e["from_state"] != e["to_state"]:
            state = f"{label_of(labels, 'states', e['from_state'])} → {state}"
        elif e["kind"] != "opened":
            state = ""
        when, details = e["at"], _details(c, e)
        if e.get("occurred_at"):
            # The timeline tells what happened when; the recording time stays visible beside it.
            when = e["occurred_at"]
            details.append(f"recorded {c.fmt_short(e['at'])}")
        cells.append(
            [
                str(e["seq"]),
                c.fmt_short(when),
                escape(e["actor"]),
                escape(what),
                escape(state),
                escape("; ".join(details)),
            ]
        )
    console = stdout_console()
    if hidden:
        title += f" (last {len(events)} of {len(events) + hidden} events)"
    console.print(
        key_table(("#", "when", "who", "what", "state", "details"), cells, keys=("#",), title=title)
    )
    if hidden:
        console.print(f"{hidden} earlier event(s): breach incident show {row['id']} --full")


def print_incident(c: Ctx, row: dict[str, Any], *, full: bool = False) -> None:
    """The human view of ``breach incident show``: the "what now" summary first, then the details; the
    timeline keeps its latest events unless ``full``."""
    from rich.markup import escape

    from engine.cli.context import key_table, stdout_console
    from engine.cli.summary import print_what_now
    from engine.incidents.whatnow import what_now

    console = stdout_console()
    print_what_now(c, what_now(row), console)
    console.print()
    labels = row["labels"]
    drill = "  [bold red]演练 DRILL[/bold red]" if row["drill"] else ""
    console.print(f"[bold]{row['id']}[/bold]  {escape(row['title'])}{drill}")
    console.print(
        f"playbook {row['playbook_id']} v{row['playbook_version']}   state: [bold]{row['state']}[/bold] "
        f"({label_of(labels, 'states', row['state'])})   version {row['version']}"
    )
    console.print(
        f"discovered {c.fmt_short(row['discovered_at'])}   opened {c.fmt_short(row['opened_at'])} "
        f"by {row['opened_by']}" + (f"   closed {c.fmt_short(row['closed_at'])}" if row["closed_at"] else "")
    )
    if row["flags"]:
        console.print("flags: " + ", ".join(k for k, v in row["flags"].items() if v))
    assessment = row["assessment"] or {}
    if assessment:
        findings = ", ".join(f"{f['rule']} {f['outcome']}" for f in assessment.get("findings", []))
        console.print(
            f"assessment: grade {assessment.get('grade_label')} ({assessment.get('grade')}); {findings}"
        )
        console.print(f"  details: breach assess {row['id']}")
    current = [t for t in row["tasks"] if t["state_id"] == row["state"]]
    if current:
        cells = [
            [
                t["key"],
                escape(label_of(labels, "tasks", t["key"])),
                "yes" if t["required"] else "optional",
                t["status"],
                escape(f"{c.fmt_short(t['done_at'])} {t['done_by']}") if t["done_at"] else "",
            ]
            for t in current
        ]
        headers = ("task", "", "required", "status", "done")
        console.print(key_table(headers, cells, keys=("task",), title="Tasks of this phase"))
    if row["deadlines"]:
        from engine.cli.clock_views import display_row, print_deadlines

        clocks = [display_row(c, d) for d in row["deadlines"]]
        print_deadlines(c, clocks, title="Clocks (legal deadlines and internal targets)", with_incident=False)
    print_timeline(c, row, last=None if full else TIMELINE_TAIL)
    for r in row.get("refusals", []):
        console.print(f"[yellow]refused:[/yellow] {c.fmt_short(r['at'])} {r['actor']}: {r['detail']}")
    if row.get("document_counts"):
        counts = ", ".join(f"{d['kind']} {d['fmt']} ×{d['n']}" for d in row["document_counts"])
        console.print(f"documents: {counts}")
        for d in row["documents"]:
            if not d.get("person_ref"):
                console.print(f"  {d['kind']} ({d['fmt']}): {d['path']}", markup=False)
    console.print(f"what may happen next: breach incident triggers {row['id']}")
