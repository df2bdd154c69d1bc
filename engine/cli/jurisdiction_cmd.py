"""``breach incident determine`` and ``breach incident filed``: judgements and reports for the clocks.

A determination (GDPR high risk, SG significant harm, ...) is never guessed: the operator records yes
or no with a reason, optionally with the ENISA severity aid's figures, and breach keeps it in the
incident's facts through the audited facts path, so the clocks that read it start or lapse in the same
transaction. A filing records when a report under a clock went out, which meets that clock and starts
the clocks that run from it (NIS2's final report a month after the notification).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.incident_cmd import incident_app
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["register"]

_YES, _NO = ("yes", "true", "y"), ("no", "false", "n")


def _change(
    c: Ctx,
    incident_id: str,
    update: dict[str, Any],
    actor: str,
    reason: str,
    at: Any = None,
    late_reason: str | None = None,
) -> int:
    """Write ``update`` into the incident's facts (audited, clocks synchronised); the new version.

    ``at``: when it really happened, if entered (checked as every entered step time)."""
    from engine.incidents.reassess import update_facts
    from engine.wiring import legal_for

    change = update_facts(
        c.store(),
        incident_id,
        update,
        actor=actor,
        legal=legal_for(c.workspace),
        reason=reason,
        hooks=c.hooks(),
        occurred_at=at,
        zone=c.zone,
        late_reason=late_reason,
    )
    return change.version


@incident_app.command("determine")
def determine_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    determination: Annotated[str, typer.Argument(help="e.g. gdpr_high_risk, sg_significant_harm.")],
    answer: Annotated[str, typer.Argument(help="yes or no.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required; kept in the audit).")] = None,
    enisa: Annotated[
        str | None,
        typer.Option("--enisa", help="ENISA 2013 aid, e.g. DPC=3,EI=significant,CB=loss_of_confidentiality."),
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a determination that needs judgement, with its reason; clocks that read it follow."""
    from engine.cli.rules_cmd import jurisdiction_rules
    from engine.store.db import utcnow

    c: Ctx = ctx.obj
    known = jurisdiction_rules(c).determination(determination)
    value = answer.strip().lower()
    if value not in _YES + _NO:
        raise BadInput(f"answer {answer!r}: use yes or no")
    text = (reason or "").strip()
    if not text:
        raise BadInput(f"a determination needs --reason (why {determination} is {value})")
    if len(text) > 2000:
        raise BadInput("--reason is at most 2000 characters")
    aid = None
    if enisa is not None:
        if known.aid != "enisa":
            raise BadInput(f"the ENISA aid is offered for the GDPR risk determinations, not {determination}")
        from engine.legal.severity import load_enisa, parse_enisa, score

        method = load_enisa(c.workspace.search_path("config"))
        aid = score(*parse_enisa(enisa, method), method).to_json()
    who = c.actor(actor)
    entry: dict[str, Any] = {"value": value in _YES, "reason": text, "at": utcnow().isoformat(), "by": who}
    if aid is not None:
        entry["aid"] = aid
    version = _change(c, incident_id, {"determinations": {determination: entry}}, who, text)
    out = {"id": incident_id, "determination": determination, **entry, "version": version}
    if as_json:
        emit_json(out)
        return
    print(f"{incident_id}: {determination} = {'yes' if entry['value'] else 'no'} (version {version})")
    if aid is not None:
        print(f"  {aid['arithmetic']}  (an aid, not the decision)")
    print(f"  see: breach deadlines list --incident {incident_id}  (clocks that read {determination})")
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


@incident_app.command("filed")
def filed_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    rule: Annotated[str, typer.Argument(help="Rule id, e.g. EU-GDPR-33.")],
    clock: Annotated[str, typer.Argument(help="Clock of the rule, e.g. notification (breach rules list).")],
    ref: Annotated[
        str | None, typer.Option("--ref", help="Reference: case number, receipt, message id.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="When it went out (default now; ISO-8601, without an offset the workspace zone)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is recorded late (needed for --at over 24 h back).")
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the report of a jurisdiction clock went out: it meets that clock.

    ``--at`` is refused in the future, before the incident was discovered, and more than 24 hours back
    without ``--reason``."""
    from engine.cli.rules_cmd import jurisdiction_rules
    from engine.clocks.durations import parse_instant
    from engine.store.db import utcnow

    c: Ctx = ctx.obj
    _, found = jurisdiction_rules(c).rule(rule)
    clocks = [item.id for item in found.clocks]
    if clock not in clocks:
        raise BadInput(f"{found.id} has no clock {clock!r}: its clocks are {', '.join(clocks)}")
    entered = parse_instant(at, c.zone) if at is not None else None
    when = entered or utcnow()
    note = (ref or "").strip()
    if len(note) > 200 or any(ord(ch) < 32 for ch in note):
        raise BadInput("--ref is at most 200 printable characters")
    who = c.actor(actor)
    entry: dict[str, Any] = {"at": when.isoformat(), "by": who}
    if note:
        entry["ref"] = note
    key = f"{found.id}:{clock}"
    said = f"filed {key}" + (f" ({note})" if note else "")
    late = (reason or "").strip()
    version = _change(
        c, incident_id, {"filings": {key: entry}}, who, said + (f": {late}" if late else ""), entered, late
    )
    if as_json:
        emit_json({"id": incident_id, "filing": key, **entry, "version": version})
        return
    print(f"{incident_id}: {key} filed at {c.fmt_time(when)} (version {version})")
    print(f"  see: breach deadlines list --incident {incident_id} --all")
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


def register(app: typer.Typer) -> None:
    """The commands register on the incident group when this module is imported."""
