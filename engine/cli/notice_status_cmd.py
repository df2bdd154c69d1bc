"""``breach notices status``: documents rendered, deliveries per status and channel, SMS cost, and the
deliveries in doubt with what settles them.

It stands apart because it only reads: counts and grouped failure reasons over the document and delivery
tables, for an operator deciding what to do next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.options import JsonOpt

__all__ = ["status_app"]

# Merged into ``breach notices`` by engine.cli.notices_cmd (a Typer added without a name lends its commands).
status_app = typer.Typer()


@status_app.command("status")
def status_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    as_json: JsonOpt = False,
    listing: Annotated[
        bool, typer.Option("--list", help="Also list each delivery not sent, with its customer id.")
    ] = False,
) -> None:
    """Documents rendered and deliveries by status, failure reasons grouped (--list: each delivery)."""
    from sqlalchemy import func, select

    from engine.documents.registry import DOCUMENT
    from engine.notices.delivery import DELIVERY
    from engine.notices.people import PERSON
    from engine.notices.send import delivery_status, doubt_counts

    c: Ctx = ctx.obj
    store = c.store()
    deliveries = delivery_status(store, incident_id)
    doubt = doubt_counts(store, incident_id)
    d, x, p = DOCUMENT.c, DELIVERY.c, PERSON.c
    with store.read() as session:
        docs = session.execute(
            select(d.kind, d.fmt, func.count()).where(d.incident_id == incident_id).group_by(d.kind, d.fmt)
        ).all()
        channels: dict[str, dict[str, int]] = {}
        for channel, status, count in session.execute(
            select(x.channel, x.status, func.count())
            .where(x.incident_id == incident_id)
            .group_by(x.channel, x.status)
        ):
            channels.setdefault(channel, {})[status] = int(count)
        problems = session.execute(
            select(p.customer_id, x.status, x.last_error)
            .join(PERSON, p.id == x.person_id)
            .where(x.incident_id == incident_id, x.status.in_(("failed", "in_doubt", "pending")))
            .order_by(x.id)
        ).all()
        texts = session.execute(
            select(d.kind, d.path).where(d.incident_id == incident_id, d.fmt == "sms").order_by(d.id)
        ).all()
    sms = _sms_cost(texts)
    result: dict[str, Any] = {
        "incident": incident_id,
        "documents": {f"{k}/{f}": int(n) for k, f, n in docs},
        "sms": sms,
        "deliveries": deliveries,
        "channels": channels,
        "problems": [{"customer_id": cid, "status": st, "reason": err} for cid, st, err in problems],
        "reasons": _grouped_reasons(problems),
        "in_doubt": {**doubt, "total": doubt["held"] + doubt["interrupted"]},
    }
    if as_json:
        emit_json(result)
        return
    for label, count in result["documents"].items():
        print(f"document {label}: {count}")
    for kind, cost in sms.items():
        print(f"sms {kind}: {cost['messages']} texts, {cost['segments']} segments")
    for kind, counts in deliveries.items():
        print(f"delivery {kind}: " + ", ".join(f"{st} {n}" for st, n in sorted(counts.items())))
    for channel, counts in sorted(channels.items()):
        print(f"channel {channel}: " + ", ".join(f"{st} {n}" for st, n in sorted(counts.items())))
    if not deliveries:
        print(
            f"no delivery yet: breach notices send {incident_id} emails them; record the others with "
            f"breach notices record {incident_id} --channel sms|post|public"
        )
    for group in result["reasons"]:
        print(f"{group['status']} ×{group['count']}: {group['reason'] or '(no reason recorded)'}")
    if listing:
        for item in result["problems"]:
            print(f"{item['status']}: {item['customer_id']}: {item['reason'] or ''}")
    elif result["problems"]:
        print(f"each of them: breach notices status {incident_id} --list")
    # Counted apart from "sent": a crash after the hand-off leaves no one knowing whether it arrived.
    if doubt["held"]:
        print(
            f"in doubt (held): {doubt['held']}: check the mail server's log, then settle them with "
            f"'breach notices resolve {incident_id} --delivered --ref LOG-LINE' or '--resend'"
        )
    if doubt["interrupted"]:
        print(
            f"in doubt (interrupted mid-send): {doubt['interrupted']}: "
            f"'breach notices send {incident_id}' settles them (re-sent with the same Message-ID, "
            "or held, per [notices] in_doubt)"
        )
    if doubt["resent"]:
        print(f"sent again after a crash: {doubt['resent']} (the reader may have two copies)")


def _grouped_reasons(problems: Any) -> list[dict[str, Any]]:
    """Deliveries not sent, counted per status and reason, the largest group first."""
    from collections import Counter

    counts = Counter((status, reason) for _, status, reason in problems)
    return [
        {"status": status, "reason": reason, "count": n}
        for (status, reason), n in sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
    ]


def _sms_cost(texts: Any) -> dict[str, dict[str, int]]:
    """Texts and segments of the rendered SMS documents, per kind (a file gone counts no segment)."""
    from engine.documents.sms import sms_segments

    cost: dict[str, dict[str, int]] = {}
    for kind, path in texts:
        entry = cost.setdefault(kind, {"messages": 0, "segments": 0})
        entry["messages"] += 1
        try:
            entry["segments"] += sms_segments(Path(path).read_text(encoding="utf-8"))[0]
        except OSError:
            continue
    return cost
