"""``breach rules list``: the notification rules of every jurisdiction breach carries, with their status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.context import Ctx, emit_json, stdout_console
from engine.cli.options import JsonOpt

if TYPE_CHECKING:
    from engine.legal.jurisdictions import Jurisdictions

__all__ = ["jurisdiction_rules", "register", "rule_json"]

rules_app = typer.Typer(help="Breach-notification rules per jurisdiction (config/legal/jurisdictions).")
UNVERIFIED = "UNVERIFIED (secondary sources only)"


def jurisdiction_rules(c: Ctx) -> Jurisdictions:
    """The jurisdiction files in force in the workspace (its own files shadow the built-in ones)."""
    from engine.clocks.intl import load_rules

    return load_rules(c.workspace.search_path("config"))


def rule_json(jurisdiction: Any, rule: Any) -> dict[str, Any]:
    """One rule as ``rules list --json`` prints it."""
    from engine.clocks.intl import describe_condition

    return {
        "id": rule.id,
        "jurisdiction": jurisdiction.jurisdiction,
        "name": jurisdiction.name,
        "title": rule.title,
        "article": rule.article,
        "source": rule.source,
        "verified": rule.verified,
        "recipients": list(rule.recipients),
        "applies_when": describe_condition(rule.when) if rule.when else [],
        "thresholds": list(rule.thresholds),
        "content": list(rule.content),
        "notes": list(rule.notes),
        "documents": list(rule.documents),
        "clocks": [
            {
                "id": clock.id,
                "label": clock.label,
                "starts": clock.starts.describe(),
                "duration": clock.duration,
                "duration_for": dict(clock.duration_for),
                "calendar": clock.calendar,
                "cap": clock.cap.model_dump() if clock.cap else None,
                "kind": clock.kind,
                "wording": clock.wording,
                "recipient": clock.recipient,
                "applies_when": describe_condition(clock.when) if clock.when else [],
                "verified": rule.clock_verified(clock),
            }
            for clock in rule.clocks
        ],
    }


@rules_app.command("list")
def list_cmd(
    ctx: typer.Context,
    jurisdiction: Annotated[
        str | None,
        typer.Option("--jurisdiction", help="Only this jurisdiction, e.g. EU, US (with its states), US-CA."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List each rule with its clocks, legal basis and whether it is verified from primary text."""
    c: Ctx = ctx.obj
    found = jurisdiction_rules(c).rules(jurisdiction)
    if as_json:
        emit_json([rule_json(j, r) for j, r in found])
        return
    console = stdout_console()
    for j, rule in found:
        status = "verified" if rule.verified else f"[bold yellow]{UNVERIFIED}[/bold yellow]"
        console.print(f"[bold]{rule.id}[/bold]  {j.name}: {rule.title}  {status}")
        console.print(f"  basis: {rule.article} — {rule.source}", markup=False)
        for clock in rule.clocks:
            calendar = f", calendar {clock.calendar}" if clock.calendar != "none" else ""
            kind = "" if clock.kind == "law" else f" [{clock.kind}]"
            flag = "" if rule.clock_verified(clock) or not rule.verified else " UNVERIFIED"
            console.print(
                f"  {clock.id}: {clock.duration}{calendar} from {clock.starts.describe()}{kind}{flag}"
                f" → {clock.recipient}",
                markup=False,
            )
    console.print(
        "\nStart an incident's clocks: breach incident facts ID --set countries=DE,US-CA "
        "--set determined_at=TIME; one rule from one moment: breach clock add --rule RULE_ID --from TIME",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add the rules commands to ``app``."""
    app.add_typer(rules_app, name="rules")
