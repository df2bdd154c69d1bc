"""``breach assess`` and ``breach incident facts``: the leak's figures and what the law makes of them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json, stdout_console
from engine.cli.incident_cmd import incident_app
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["collect_facts", "register"]

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="KEY=VALUE, e.g. people_affected=8000, records.property=8000, insider=true."),
]
FileOpt = Annotated[Path | None, typer.Option("--file", help="A YAML or JSON file of facts.")]


def collect_facts(pairs: list[str] | None, file: Path | None, zone: str = "UTC") -> dict[str, Any]:
    """Facts from a file and ``--set`` pairs (pairs win), checked key by key; empty when neither given.

    A time in a pair without an offset is read in ``zone`` (the workspace's).
    """
    from engine.legal.facts import load_facts_file, parse_assignments
    from engine.workspace import deep_merge

    update: dict[str, Any] = {}
    if file is not None:
        update = load_facts_file(file)
    if pairs:
        update = deep_merge(update, parse_assignments(pairs, zone))
    return update


@incident_app.command("facts")
def facts_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    pairs: SetOpt = None,
    file: FileOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the facts changed (needed for --at over 24 h back).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="When the facts became known, if before now (ISO-8601; without an offset, "
            "the workspace zone).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    actor: AsOpt = None,
) -> None:
    """Show or change an incident's facts; a change re-assesses, recomputes clocks and is audited."""
    from engine.clocks.durations import parse_instant

    c: Ctx = ctx.obj
    update = collect_facts(pairs, file, c.zone)
    when = parse_instant(at, c.zone) if at is not None else None
    if when is not None and not update:
        raise BadInput("--at says when facts became known: give them with --set KEY=VALUE or --file")
    if not update:
        reader = c.reader()
        row = reader.incident(incident_id)
        reader.close()
        if as_json:
            emit_json({"id": incident_id, "facts": row["facts"], "grade": row["assessment"].get("grade")})
        else:
            _print_facts(row["facts"], row["assessment"])
        return
    from engine.incidents.reassess import update_facts
    from engine.wiring import legal_for

    change = update_facts(
        c.store(),
        incident_id,
        update,
        actor=c.actor(actor),
        legal=legal_for(c.workspace),
        reason=reason,
        hooks=c.hooks(),
        occurred_at=when,
        zone=c.zone,
    )
    if as_json:
        emit_json(
            {
                "id": incident_id,
                "changed": change.changed,
                "grade_before": change.grade_before,
                "grade_after": change.grade_after,
                "version": change.version,
            }
        )
        return
    if not change.changed:
        print(f"{incident_id}: facts unchanged")
    else:
        print(f"{incident_id}: facts changed: {', '.join(change.changed)} (version {change.version})")
    if change.grade_before != change.grade_after:
        print(f"  grade: {change.grade_before or 'not assessed'} → {change.grade_after}")
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


def _print_facts(facts: dict[str, Any], assessment: dict[str, Any]) -> None:
    from engine.legal.facts import flatten_facts

    # Defaults (zero counts, false flags) say nothing; show what was actually recorded.
    flat = {k: v for k, v in flatten_facts(facts).items() if v not in (0, False, None, [], "")}
    if not flat:
        print("no facts recorded (breach incident facts ID --set people_affected=...)")
    for key, value in flat.items():
        print(f"{key} = {value}")
    if assessment:
        print(f"grade: {assessment.get('grade')} ({assessment.get('grade_label')})")


def print_assessment(result: dict[str, Any]) -> None:
    """The human view of an assessment: grade, then each finding with its arithmetic and basis."""
    console = stdout_console()
    console.print(f"[bold]grade: {result['grade_label']} ({result['grade']})[/bold]")
    for f in result["findings"]:
        verified = "" if f.get("verified", True) else "  [yellow](unverified figure)[/yellow]"
        score = f"  score {f['score']:.4g}" if isinstance(f.get("score"), int | float) else ""
        items = f"  items {', '.join(map(str, f['items']))}" if f.get("items") else ""
        console.print(f"\n[bold]{f['rule']}[/bold]: {f['outcome']}{score}{items}{verified}")
        for line in f.get("explain", []):
            console.print(f"  {line}", markup=False)
        console.print(f"  basis: {f.get('basis', '')} — {f.get('source', '')}", markup=False)
    console.print("\nFacts and legal figures only; not legal advice.")


_REPORT_FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}


def _report_format(path: Path) -> str:
    """The assessment report's format from the file's extension; another extension is bad input."""
    fmt = _REPORT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInput(
            f"--report {path.name}: unknown extension {path.suffix or '(none)'!r}; use .md, .html or .pdf"
        )
    return fmt


def _firm_or_none(c: Ctx) -> dict[str, Any] | None:
    """The workspace's [firm] settings for the report's header, or None while they are incomplete."""
    from engine.notices.firm import firm_settings

    try:
        return firm_settings(c.workspace.settings).model_dump()
    except BadInput:
        return None


def register(app: typer.Typer) -> None:
    """Add ``breach assess`` to ``app`` (``incident facts`` registers on the incident group)."""

    @app.command("assess")
    def assess_cmd(
        ctx: typer.Context,
        incident_id: Annotated[str | None, typer.Argument(help="Incident id (or use --facts).")] = None,
        facts_file: Annotated[
            Path | None, typer.Option("--facts", help="What-if: assess a facts file, no incident needed.")
        ] = None,
        pairs: SetOpt = None,
        report: Annotated[
            Path | None,
            typer.Option(
                "--report",
                help="Also write the zh-CN assessment report to this file (mode 0600); "
                "the extension picks the format: .md, .html or .pdf.",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Grade a leak and evaluate the reporting clock and criminal thresholds, with the arithmetic."""
        from engine.legal.assess import assess
        from engine.legal.facts import merge_facts
        from engine.wiring import legal_for

        c: Ctx = ctx.obj
        if (incident_id is None) == (facts_file is None and not pairs):
            raise BadInput("give an incident id, or --facts FILE / --set KEY=VALUE for a what-if (not both)")
        fmt = None if report is None else _report_format(report)
        base: dict[str, Any] = {}
        title = None
        drill = False
        if incident_id is not None:
            reader = c.reader()
            row = reader.incident(incident_id)
            reader.close()
            base, title, drill = row["facts"], row["title"], bool(row["drill"])
        facts = merge_facts(base, collect_facts(pairs, facts_file, c.zone))
        legal = legal_for(c.workspace)
        result = assess(facts, legal)
        if report is not None and fmt is not None:
            from engine.documents.render import write_private
            from engine.legal.report import render_assessment

            rendered = render_assessment(
                fmt,
                result,
                facts,
                legal,
                incident_id=incident_id,
                title=title,
                drill=drill,
                firm=_firm_or_none(c),
                search_paths=c.workspace.search_path("templates"),
            )
            path = write_private(report.parent.resolve(), report.name, rendered.content)
            print(f"report written to {path}", file=sys.stderr)
        if as_json:
            emit_json(result.to_json())
        else:
            print_assessment(result.to_json())
