"""``breach audit verify``: check that no audit event was edited, deleted or reordered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json
from engine.errors import CheckFailed

__all__ = ["register"]

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    incident_id: Annotated[str | None, typer.Argument(help="Incident id (omit with --all).")] = None,
    all_incidents: Annotated[bool, typer.Option("--all", help="Verify every incident.")] = False,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Check an evidence bundle instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Exit 0 when every hash chain is intact; 1 naming the first bad event otherwise."""
    if bundle is not None:
        _verify_bundle(bundle, as_json)
        return
    from sqlmodel import select

    from engine.errors import BadInput
    from engine.incidents.audit import verify_chain
    from engine.incidents.repository import get_incident
    from engine.incidents.tables import Incident
    from engine.incidents.worklog import verify_log

    c: Ctx = ctx.obj
    if not incident_id and not all_incidents:
        raise BadInput("name an incident id, or pass --all")
    store = c.store()
    with store.read() as session:
        if all_incidents:
            incidents = list(session.exec(select(Incident).order_by(Incident.id)))
        else:
            incidents = [get_incident(session, str(incident_id))]
        reports = [verify_chain(session, inc) for inc in incidents]
        log_problem = verify_log(session) if all_incidents else None
    if as_json:
        emit_json(
            [
                {
                    "incident": r.incident_id,
                    "ok": r.ok,
                    "events": r.events,
                    "problem": r.problem,
                    "first_bad_seq": r.first_bad_seq,
                }
                for r in reports
            ]
        )
    else:
        for r in reports:
            print(
                f"{r.incident_id}: {'intact' if r.ok else 'BROKEN'} ({r.events} events)"
                + (f": {r.problem}" if r.problem else "")
            )
    if log_problem:
        print(f"workspace log: BROKEN: {log_problem}")
        raise CheckFailed(f"workspace log broken: {log_problem}")
    bad = [r for r in reports if not r.ok]
    if bad:
        raise CheckFailed(f"audit trail broken: {bad[0].incident_id} {bad[0].problem}")


def _verify_bundle(path: Path, as_json: bool) -> None:
    from engine.retention import verify_bundle

    report = verify_bundle(path)
    if as_json:
        emit_json(
            {
                "incident": report.incident_id,
                "ok": report.ok,
                "events": report.events,
                "manifest_sha256": report.manifest_sha256,
                "problems": report.problems,
            }
        )
    else:
        state = "intact" if report.ok else "BROKEN"
        print(
            f"{path}: {report.incident_id}: {state} ({report.events} events, "
            f"manifest {report.manifest_sha256})"
        )
        for problem in report.problems:
            print(f"  {problem}")
    if not report.ok:
        raise CheckFailed(f"evidence bundle broken: {report.problems[0]}")


def register(app: typer.Typer) -> None:
    """Add the audit commands to ``app``."""
    app.add_typer(audit_app, name="audit")
