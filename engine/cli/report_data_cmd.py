"""``breach incident report-data``: the regulator-report items (CN-CAC-RPT-7), supplied whenever they
become known, long after the notice content froze."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.incident_cmd import incident_app, parse_pairs
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["late_reason_hook", "read_report_data", "register"]


def read_report_data(pairs: list[str] | None, file: Path | None, zone: str) -> dict[str, Any]:
    """The items of a YAML/JSON file and of ``--set ITEM=VALUE`` pairs (pairs win), checked.

    :raises BadInput: an unknown item, a value too long or of the wrong shape, an unreadable file.
    """
    from engine.formal.report_data import check_values

    values: dict[str, Any] = {}
    if file is not None:
        from engine.files import load_json, load_yaml, read_text

        text = read_text(file, what="report data file")
        data = load_json(text, str(file)) if file.suffix.lower() == ".json" else load_yaml(text, str(file))
        values.update(check_values(data if data is not None else {}, str(file), zone))
    if pairs:
        values.update(check_values(parse_pairs(pairs, "--set"), "--set", zone))
    return values


def late_reason_hook(reason: str, zone: str) -> Any:
    """An ``after_change`` hook recording ``reason`` as the report item ``late_reason`` inside the step's
    transaction, before the step's documents are rendered (so the initial report prints it)."""
    from engine.formal.report_data import check_values, record_report_data
    from engine.incidents.hooks import Step

    values = check_values({"late_reason": reason}, "--late-reason", zone)

    def hook(step: Step) -> None:
        record_report_data(step.session, step.incident, values, actor=step.actor, at=step.at)

    return hook


def _locale(c: Ctx) -> str:
    from engine.formal.service import document_settings

    chosen = document_settings(c.workspace.settings).locale
    return chosen or str(c.workspace.settings.get("workspace", {}).get("locale", "zh-CN"))


@incident_app.command("report-data")
def report_data_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    pairs: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="ITEM=VALUE, e.g. cause=..., type_label=数据泄露; an empty VALUE clears the item; "
            "measures and next_steps take one entry per line (use --file for several).",
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A YAML or JSON mapping of items (item: value).")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Show every item and where its value comes from.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="When the items became known (ISO-8601; without an offset, the workspace zone)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (needed for --at over 24 h back).")
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supply or show the items a regulator report states (CN-CAC-RPT-7; 迟报原因 under Art 10).

    The values win over the notice content in the formal reports: the next supplementary report lists
    exactly the items changed since the last report, and the summary report states them all.
    """
    from engine.clocks.durations import parse_instant

    c: Ctx = ctx.obj
    values = read_report_data(pairs, file, c.zone)
    if not values and at is not None:
        raise BadInput("--at says when items became known: give them with --set ITEM=VALUE or --file")
    if values:
        from engine.formal.report_data import set_report_data

        when = parse_instant(at, c.zone) if at is not None else None
        change = set_report_data(
            c.store(), incident_id, values, actor=c.actor(actor), zone=c.zone, at=when, reason=reason
        )
        if not show:
            if as_json:
                emit_json({"id": incident_id, "changed": change.changed, "version": change.version})
                return
            if change.changed:
                names = ", ".join(change.changed)
                print(f"{incident_id}: report data changed: {names} (version {change.version})")
            else:
                print(f"{incident_id}: report data unchanged")
            print(
                f"  next: breach incident advance {incident_id} supplementary_report --reason TEXT "
                "(the supplement lists what changed), or breach incident report-data "
                f"{incident_id} --show"
            )
            return
    _show(c, incident_id, as_json)


def _show(c: Ctx, incident_id: str, as_json: bool) -> None:
    from engine.documents.filters import to_follow
    from engine.formal.report_data import report_data_rows

    locale = _locale(c)
    rows = report_data_rows(c.store(), incident_id, locale)
    if as_json:
        emit_json({"id": incident_id, "items": rows})
        return
    tbd = to_follow(locale)
    print(f"{incident_id}: regulator-report items (CN-CAC-RPT-7; {tbd}: not known yet)")
    for row in rows:
        value = row["value"]
        text = tbd if value is None else "; ".join(value) if isinstance(value, list) else str(value)
        text = " ".join(text.split())
        if len(text) > 80:
            text = text[:79] + "…"
        if row["source"] == "report data":
            where = f"  (supplied {c.fmt_time(row['supplied_at'])} by {row['supplied_by']})"
        elif row["source"]:
            where = "  (from the notice content)"
        else:
            where = ""
        print(f"  {row['label']} [{row['item']}]: {text}{where}")
    print(
        f"  set: breach incident report-data {incident_id} --set ITEM=VALUE [--at TIME] (or --file FILE.yaml)"
    )


def register(app: typer.Typer) -> None:
    """The command registers on the incident group when this module is imported."""
