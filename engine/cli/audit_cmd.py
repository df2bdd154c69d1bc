"""``breach audit verify``: check that no audit event was edited, deleted or reordered."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.context import Ctx, emit_json
from engine.cli.options import JsonOpt
from engine.errors import CheckFailed

if TYPE_CHECKING:
    from engine.access import RoleMap

__all__ = ["register"]

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    incident_id: Annotated[str | None, typer.Argument(help="Incident id (omit with --all).")] = None,
    all_incidents: Annotated[bool, typer.Option("--all", help="Verify every incident.")] = False,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Check an evidence bundle instead.")] = None,
    against: Annotated[
        Path | None,
        typer.Option("--against", help="An anchor file kept elsewhere (else the workspace's own)."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The public key kept elsewhere (else the workspace's own)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Exit 0 when every trail is intact and the rows match it; 1 naming each difference otherwise.

    Each incident's hash chain is walked, then its events are replayed and what they imply (state,
    facts, grade, flags, records, tasks, waived deadlines) is compared with the stored rows. With
    --all, incident numbers are checked for gaps and the workspace log for edits and deletions. The
    heads are compared with the signed anchors (the workspace's anchor file, or --against a copy): a
    deleted or rewritten event, even with every hash recomputed, no longer matches what was signed. A
    broken incident is held: it takes no further write until 'breach audit acknowledge'.
    """
    if bundle is not None:
        _verify_bundle(bundle, key, as_json)
        return
    from sqlmodel import select

    from engine.errors import BadInput
    from engine.incidents.audit import verify_chain
    from engine.incidents.repository import get_incident
    from engine.incidents.tables import Incident
    from engine.incidents.worklog import verify_log
    from engine.record.continuity import numbering_gaps
    from engine.record.holds import latest_finding, record_broken
    from engine.record.replay import row_differences

    c: Ctx = ctx.obj
    if not incident_id and not all_incidents:
        raise BadInput("name an incident id, or pass --all")
    store = c.store()
    results: list[dict[str, Any]] = []
    with store.read() as session:
        if all_incidents:
            incidents = list(session.exec(select(Incident).order_by(Incident.id)))
        else:
            incidents = [get_incident(session, str(incident_id))]
        for inc in incidents:
            chain = verify_chain(session, inc)
            differences = [d.describe() for d in row_differences(session, inc)] if chain.ok else []
            finding = latest_finding(session, inc.id)
            results.append(
                {
                    "incident": inc.id,
                    "ok": chain.ok and not differences,
                    "events": chain.events,
                    "problem": chain.problem or (differences[0] if differences else None),
                    "first_bad_seq": chain.first_bad_seq,
                    "differences": differences,
                    "acknowledged_by": finding.actor
                    if finding is not None and finding.kind == "acknowledged"
                    else None,
                }
            )
        gaps = numbering_gaps(session) if all_incidents else []
        log_problem = verify_log(session) if all_incidents else None
        anchor_problems = _anchor_problems(c, session, against, key, None if all_incidents else incident_id)
    for r in results:
        for line in anchor_problems.get(str(r["incident"]), []):
            r["ok"] = False
            r["problem"] = r["problem"] or line
            r["differences"].append(line)
    gaps += anchor_problems.get("", [])
    broken = {str(r["incident"]): str(r["problem"]) for r in results if not r["ok"]}
    if broken:
        record_broken(store, broken, actor=c.actor())
    if as_json:
        # Gaps and a broken workspace log are entries of the same list, so scripts read one shape.
        extra = [
            {"incident": gap.split(":", 1)[0], "scope": "numbering", "ok": False, "events": 0, "problem": gap}
            for gap in gaps
        ]
        if all_incidents:
            extra.append(
                {"incident": None, "scope": "workspace_log", "ok": not log_problem, "problem": log_problem}
            )
        emit_json(results + extra)
    else:
        for r in results:
            state = "intact" if r["ok"] else "BROKEN"
            print(
                f"{r['incident']}: {state} ({r['events']} events)"
                + (f": {r['problem']}" if not r["ok"] else "")
            )
            for line in r["differences"]:
                if line != r["problem"]:
                    print(f"  {line}")
            if r["acknowledged_by"] and not r["ok"]:
                print(f"  acknowledged by {r['acknowledged_by']}")
        for gap in gaps:
            print(f"numbering: {gap}")
        if log_problem:
            print(f"workspace log: BROKEN: {log_problem}")
    if log_problem:
        raise CheckFailed(f"workspace log broken: {log_problem}")
    if gaps:
        raise CheckFailed(f"incident numbering broken: {gaps[0]}")
    if broken:
        first = next(iter(broken))
        raise CheckFailed(f"audit trail broken: {first} {broken[first]}")


def _anchor_problems(
    c: Ctx, session: Any, against: Path | None, key: Path | None, only: str | None
) -> dict[str, list[str]]:
    """What no longer matches the signed anchors, by incident ("" for the workspace log and for
    incidents gone from the database); only ``only``'s when one incident is verified."""
    from engine.errors import BadInput
    from engine.record.anchors import anchor_path, divergences, read_anchors
    from engine.record.signing import key_path, load_public_key

    path = against or anchor_path(c.workspace)
    public_path = key or key_path(c.workspace).with_name(key_path(c.workspace).name + ".pub")
    if against is not None and not against.exists():
        raise BadInput(f"--against {against}: no such file")
    if not path.exists():
        return {}
    if not public_path.exists():
        return {"": [f"{path} holds anchors but there is no public key at {public_path} to check them"]}
    anchors = read_anchors(path, load_public_key(public_path))
    found: dict[str, list[str]] = {}
    for anchor in anchors:
        if not anchor.valid:
            found.setdefault("", []).append(
                f"{path} line {anchor.line}: not signed by the key {public_path} (the file was edited)"
            )
    for line in divergences(session, [a for a in anchors if a.valid]):
        subject = line.split(":", 1)[0]
        target = "" if subject == "workspace log" or "gone from the database" in line else subject
        found.setdefault(target, []).append(line)
    if only is not None:
        return {only: found.get(only, [])}
    return found


@audit_app.command("anchor")
def anchor_cmd(ctx: typer.Context) -> None:
    """Sign the heads of every incident and of the workspace log into the anchor file, print the line
    and, with [audit] witness_url set, send it to the witness and log its receipt: keep copies
    elsewhere, to compare with later ('verify --against')."""
    from engine.record.anchors import anchor_now, anchor_path
    from engine.record.witness import send_to_witness, witness_url

    c: Ctx = ctx.obj
    witness_url(c.workspace)  # a malformed witness setting is refused before anything is signed
    line = anchor_now(c.store(), c.workspace, full=True)
    print(line)
    # Said after the witness answers, so that a witness's failure stays the one line on stderr.
    receipt = send_to_witness(c.store(), c.workspace, line, actor=c.account) if line else None
    print(f"anchored in {anchor_path(c.workspace)}", file=sys.stderr)
    if receipt is not None:
        print(
            f"received by the witness {receipt.url} (HTTP {receipt.status}, receipt sha256 "
            f"{receipt.sha256[:16]}…), recorded in the workspace log",
            file=sys.stderr,
        )


@audit_app.command("key")
def key_cmd(ctx: typer.Context) -> None:
    """Print the workspace's public key and its fingerprint, to keep elsewhere for 'verify --key'."""
    from engine.record.signing import load_key, public_pem

    c: Ctx = ctx.obj
    c.require_workspace()
    signing = load_key(c.workspace)
    print(f"# fingerprint {signing.fingerprint}")
    print(public_pem(signing.public).decode("ascii"), end="")


@audit_app.command("acknowledge")
def acknowledge_cmd(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The held incident.")],
    reason: Annotated[str, typer.Option("--reason", help="What was investigated and found.")] = "",
) -> None:
    """Record the investigation of a broken trail, which lets the incident take writes again."""
    from engine.record.holds import acknowledge

    c: Ctx = ctx.obj
    role = str((c.workspace.settings.get("audit") or {}).get("acknowledge_role") or "dpo")
    what = acknowledge(
        c.store(),
        incident_id,
        reason=reason,
        actor=c.actor(),
        roles=c.hooks().roles or _no_roles(),
        role=role,
    )
    print(f"{incident_id}: acknowledged ({what})")


def _no_roles() -> RoleMap:
    from engine.access import RoleMap

    return RoleMap({})


def _verify_bundle(path: Path, key: Path | None, as_json: bool) -> None:
    from engine.record.signing import load_public_key
    from engine.retention.verify import verify_bundle

    report = verify_bundle(path, load_public_key(key) if key is not None else None)
    if as_json:
        emit_json(
            {
                "incident": report.incident_id,
                "ok": report.ok,
                "events": report.events,
                "manifest_sha256": report.manifest_sha256,
                "signed_by": report.signed_by,
                "key_checked": report.key_checked,
                "problems": report.problems,
            }
        )
    else:
        state = "intact" if report.ok else "BROKEN"
        print(
            f"{path}: {report.incident_id}: {state} ({report.events} events, "
            f"manifest {report.manifest_sha256})"
        )
        if report.signed_by and report.ok:
            checked = "checked against the key given" if report.key_checked else "pass --key to check it"
            print(f"  signed by key {report.signed_by[:16]} ({checked})")
        for problem in report.problems:
            print(f"  {problem}")
    if not report.ok:
        raise CheckFailed(f"evidence bundle broken: {report.problems[0]}")


def register(app: typer.Typer) -> None:
    """Add the audit commands to ``app``."""
    app.add_typer(audit_app, name="audit")
