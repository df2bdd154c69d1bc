"""How incidents look to the operator: the JSON contract and the Rich renderings, shared by commands."""

from __future__ import annotations

import json
from typing import Any

from engine.cli.context import Ctx

__all__ = ["incident_json", "print_incident", "print_timeline"]


def _label(labels: dict[str, Any], kind: str, key: str | None, locale: str = "zh-CN") -> str:
    if not key:
        return ""
    entry = labels.get(kind, {}).get(key)
    if entry is None:
        return key
    names = entry.get("labels", entry) if isinstance(entry, dict) else {}
    return str(names.get(locale) or names.get("zh-CN") or key)


def incident_json(c: Ctx, row: dict[str, Any]) -> dict[str, Any]:
    """The ``breach incident show --json`` object (see the CLI contract)."""
    labels = row["labels"]
    return {
        "id": row["id"],
        "title": row["title"],
        "playbook": row["playbook_id"],
        "playbook_version": row["playbook_version"],
        "playbook_sha256": row["playbook_sha256"],
        "state": row["state"],
        "state_label": _label(labels, "states", row["state"]),
        "version": row["version"],
        "drill": row["drill"],
        "opened_at": c.fmt_time(row["opened_at"]),
        "opened_by": row["opened_by"],
        "discovered_at": c.fmt_time(row["discovered_at"]),
        "closed_at": c.fmt_time(row["closed_at"]) or None,
        "facts": row["facts"],
        "anchors": {k: c.fmt_time(v) for k, v in row["anchors"].items()},
        "flags": row["flags"],
        "records": row["records"],
        "assessment": row["assessment"] or None,
        "tasks": [
            {
                "id": t["key"],
                "state": t["status"],
                "phase_state": t["state_id"],
                "required": t["required"],
                "label": _label(labels, "tasks", t["key"]),
                "done_at": c.fmt_time(t["done_at"]) or None,
                "done_by": t["done_by"],
            }
            for t in row["tasks"]
        ],
        "deadlines": [_deadline_json(c, d) for d in row["deadlines"]],
        "document_counts": [
            {"kind": d["kind"], "format": d["fmt"], "count": d["n"]} for d in row.get("document_counts", [])
        ],
        "documents": [
            {
                "kind": d["kind"],
                "format": d.get("fmt"),
                "path": d["path"],
                "sha256": d["sha256"],
                "person": d.get("person_ref"),
                "template": d.get("template"),
                "created_at": c.fmt_time(d.get("created_at")) or None,
            }
            for d in row["documents"]
        ],
        "refusals": [
            {
                "at": c.fmt_time(r["at"]),
                "actor": r["actor"],
                "detail": r["detail"],
            }
            for r in row.get("refusals", [])
        ],
        "events": [
            {
                "seq": e["seq"],
                "at": c.fmt_time(e["at"]),
                # When the step really happened, if entered with --at; "at" is when it was recorded.
                "occurred_at": c.fmt_time(e["occurred_at"]) if e.get("occurred_at") else None,
                "actor": e["actor"],
                "kind": e["kind"],
                "trigger": e["trigger"],
                "from": e["from_state"],
                "to": e["to_state"],
                "reason": e["reason"],
                "inputs": e["inputs"],
                "hash": e["hash"],
            }
            for e in row["events"]
        ],
    }


# Bookkeeping of the checker (engine/checker.py), not part of what a deadline says.
_DEADLINE_INTERNAL = ("incident_id", "version", "next_check_at", "alert_round")


def _deadline_json(c: Ctx, d: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: (c.fmt_time(v) if k.endswith("_at") and v is not None else v)
        for k, v in d.items()
        if k not in _DEADLINE_INTERNAL
    }
    out["rule"] = d.get("rule_id", d.get("rule"))
    if isinstance(out.get("labels"), str):  # SQLite hands JSON columns back as text
        out["labels"] = json.loads(out["labels"])
    if "provisional" in out:
        out["provisional"] = bool(out["provisional"])
    return out


def _details(e: dict[str, Any]) -> list[str]:
    """What an event says, in a few words: its reason and the short values it recorded."""
    inputs = e["inputs"]
    details = [e["reason"]] if e["reason"] else []
    if e["kind"] == "opened":
        details.append(f"discovered {str(inputs.get('discovered_at', ''))[:16].replace('T', ' ')} UTC")
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
        details.append(
            f"{inputs.get('rule')} due {str(inputs.get('new_due_at', ''))[:16].replace('T', ' ')} UTC"
        )
    else:
        # Short scalar values only: file maps, fact dumps and effect lists belong in --json.
        for key, value in inputs.items():
            if key in ("task", "effects", "title", "files", "facts") or isinstance(value, dict | list):
                continue
            if len(str(value)) <= 60:
                details.append(f"{key}={value}")
    return [str(d) for d in details]


def print_timeline(c: Ctx, row: dict[str, Any], *, title: str = "Timeline", tasks: bool = True) -> None:
    """The incident's audit events as a readable table (``tasks=False`` leaves out task ticks)."""
    from rich.table import Table

    from engine.cli.context import stdout_console

    labels = row["labels"]
    table = Table(title=title, show_lines=False)
    for col in ("#", "when", "who", "what", "state", "details"):
        table.add_column(col, overflow="fold")
    for e in row["events"]:
        if e["kind"] == "task_done" and not tasks:
            continue
        if e["kind"] == "trigger":
            what = f"{e['trigger']} ({labels.get('triggers', {}).get(e['trigger'], {}).get('zh-CN', '')})"
        elif e["kind"] == "task_done":
            task = e["inputs"].get("task")
            what = f"task done: {_label(labels, 'tasks', task)}"
        else:
            what = e["kind"]
        state = _label(labels, "states", e["to_state"])
        if e["from_state"] and e["from_state"] != e["to_state"]:
            state = f"{_label(labels, 'states', e['from_state'])} → {state}"
        elif e["kind"] != "opened":
            state = ""
        when, details = e["at"], _details(e)
        if e.get("occurred_at"):
            # The timeline tells what happened when; the recording time stays visible beside it.
            when = e["occurred_at"]
            details.append(f"recorded {c.fmt_short(e['at'])}")
        table.add_row(str(e["seq"]), c.fmt_short(when), e["actor"], what, state, "; ".join(details))
    stdout_console().print(table)


def print_incident(c: Ctx, row: dict[str, Any]) -> None:
    """The human view of ``breach incident show``."""
    from rich.table import Table

    from engine.cli.context import stdout_console

    console = stdout_console()
    labels = row["labels"]
    drill = "  [bold red]演练 DRILL[/bold red]" if row["drill"] else ""
    console.print(f"[bold]{row['id']}[/bold]  {row['title']}{drill}")
    console.print(
        f"playbook {row['playbook_id']} v{row['playbook_version']}   state: [bold]{row['state']}[/bold] "
        f"({_label(labels, 'states', row['state'])})   version {row['version']}"
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
        table = Table(title="Tasks of this phase")
        for col in ("task", "", "required", "status", "done"):
            table.add_column(col)
        for t in current:
            done = f"{c.fmt_short(t['done_at'])} {t['done_by']}" if t["done_at"] else ""
            table.add_row(
                t["key"],
                _label(labels, "tasks", t["key"]),
                "yes" if t["required"] else "optional",
                t["status"],
                done,
            )
        console.print(table)
    if row["deadlines"]:
        from engine.cli.deadlines_cmd import display_row, print_deadlines

        clocks = [display_row(c, d) for d in row["deadlines"]]
        print_deadlines(c, clocks, title="Clocks (legal deadlines and internal targets)", with_incident=False)
    print_timeline(c, row)
    for r in row.get("refusals", []):
        console.print(f"[yellow]refused:[/yellow] {c.fmt_short(r['at'])} {r['actor']}: {r['detail']}")
    if row.get("document_counts"):
        counts = ", ".join(f"{d['kind']} {d['fmt']} ×{d['n']}" for d in row["document_counts"])
        console.print(f"documents: {counts}")
        for d in row["documents"]:
            if not d.get("person_ref"):
                console.print(f"  {d['kind']} ({d['fmt']}): {d['path']}", markup=False)
    console.print(f"next: breach incident triggers {row['id']}")
