"""Shell completion from the workspace: incident ids, the triggers and the open tasks of an incident.

``breach --install-completion`` installs the shell's hook; the shell then asks ``breach`` itself for
candidates, and these functions answer from the read model. A completion must never print an error in
the middle of a command line being typed, so any problem (no workspace yet, no database) answers nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["IncidentArg", "TaskArg", "TriggerArg", "incident_ids", "open_tasks", "trigger_names"]


def _incident_row(ctx: typer.Context, incident_id: str) -> dict[str, Any]:
    """The incident as ``Reader.incident`` reads it, in the workspace the command line names."""
    from engine.store.readmodel import Reader

    reader: Reader = _ctx(ctx).reader()
    try:
        return reader.incident(incident_id, every_document=False)
    finally:
        reader.close()


def _ctx(ctx: typer.Context) -> Any:
    """The command's workspace: ``--home`` and ``--db`` given before the command, else the defaults."""
    from engine.cli.context import Ctx

    root = ctx.find_root().params
    return Ctx(home=root.get("home"), db=root.get("db"))


def incident_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Incident ids starting with what was typed, newest first, each with its title and state."""
    try:
        reader = _ctx(ctx).reader()
        try:
            rows = reader.incidents()
        finally:
            reader.close()
    except Exception:  # completion answers nothing rather than break the line being typed
        return []
    return [(r["id"], f"{r['title']} ({r['state']})") for r in rows if r["id"].startswith(incomplete)]


def trigger_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The triggers of the incident's playbook, with their labels."""
    from engine.playbooks.labels import label_of

    try:
        row = _incident_row(ctx, str(ctx.params.get("incident_id") or ""))
    except Exception:  # as above: no answer is better than an error in the shell
        return []
    names = sorted(row["labels"].get("triggers", {}))
    return [(t, label_of(row["labels"], "triggers", t)) for t in names if t.startswith(incomplete)]


def open_tasks(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The open tasks of the incident's current phase, the ones ``task done`` accepts."""
    from engine.playbooks.labels import label_of

    try:
        row = _incident_row(ctx, str(ctx.params.get("incident_id") or ""))
    except Exception:  # as above
        return []
    return [
        (t["key"], label_of(row["labels"], "tasks", t["key"]))
        for t in row["tasks"]
        if t["status"] == "open" and t["state_id"] == row["state"] and t["key"].startswith(incomplete)
    ]


IncidentArg = Annotated[
    str, typer.Argument(help="The incident's id, e.g. INC-2026-0001.", autocompletion=incident_ids)
]
TriggerArg = Annotated[
    str, typer.Argument(help="The trigger (breach incident triggers ID).", autocompletion=trigger_names)
]
TaskArg = Annotated[
    str, typer.Argument(help="The task id (open tasks: breach incident show ID).", autocompletion=open_tasks)
]
