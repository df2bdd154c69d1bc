"""``breach deadlines list|check|ack|waive|recompute`` and ``breach scheduler run``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from engine.cli.clock_views import alert_line, display_row, print_deadlines
from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.options import AsOpt, JsonOpt, RecordOpt
from engine.errors import BadInput, CheckFailed

__all__ = ["deadline_rows", "display_row", "print_deadlines", "register"]

deadlines_app = typer.Typer(help="Legal clocks and internal targets across incidents.", no_args_is_help=True)
scheduler_app = typer.Typer(help="Run the deadline checker on a schedule.", no_args_is_help=True)


def _param(sqlite: bool, moment: datetime) -> Any:
    """A UTC moment as the column stores it: SQLAlchemy's text format on SQLite, naive UTC on PostgreSQL."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else naive


def deadline_rows(
    c: Ctx,
    *,
    incident_id: str | None = None,
    within: timedelta | None = None,
    overdue: bool = False,
    include_settled: bool = False,
) -> list[dict[str, Any]]:
    """Deadlines across incidents for display, each with its countdown from now."""
    reader = c.reader()
    try:
        if incident_id is not None:
            reader.incident(incident_id)  # an unknown id is refused, not shown as "no deadlines"
        now = datetime.now(UTC)
        sqlite = reader.mark == "?"
        sql = (
            "SELECT d.id, d.incident_id, i.title, i.drill, d.rule_id, d.subject, d.kind, d.labels, "
            "d.status, d.due_at, d.provisional, d.calendar, d.basis, d.met_at, d.met_by, d.lateness_seconds, "
            "d.missed_at, d.acknowledged_at, d.acknowledged_by, d.waiver_reason, d.void_reason "
            "FROM deadline d JOIN incident i ON i.id = d.incident_id WHERE 1 = 1"
        )
        params: list[Any] = []
        if not include_settled or overdue or within is not None:
            sql += " AND d.status IN ('pending', 'warned', 'missed')"
        if overdue:
            sql += " AND d.due_at <= ?"
            params.append(_param(sqlite, now))
        if within is not None:
            sql += " AND d.due_at <= ?"
            params.append(_param(sqlite, now + within))
        if incident_id:
            sql += " AND d.incident_id = ?"
            params.append(incident_id)
        rows = reader.rows(sql + " ORDER BY d.due_at, d.id", tuple(params))
    finally:
        reader.close()
    return [display_row(c, r, now) for r in rows]


@deadlines_app.command("list")
def list_cmd(
    ctx: typer.Context,
    due_within: Annotated[
        str | None,
        typer.Option("--due-within", help="Only deadlines due within this time, e.g. 24h, 3 days."),
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only deadlines past due and not met.")] = False,
    incident_id: Annotated[str | None, typer.Option("--incident", help="Only this incident.")] = None,
    include_settled: Annotated[
        bool, typer.Option("--all", help="Include met, waived and void ones.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deadlines across incidents, soonest first, with countdowns and legal basis."""
    from engine.clocks.durations import parse_duration

    c: Ctx = ctx.obj
    within = None
    if due_within is not None:
        period = parse_duration(due_within)
        if period.unit not in ("minutes", "hours", "days"):
            raise BadInput(f"--due-within {due_within!r}: use minutes, hours or days, e.g. 24h or 3 days")
        within = timedelta(**{period.unit: period.amount})
    rows = deadline_rows(
        c, incident_id=incident_id, within=within, overdue=overdue, include_settled=include_settled
    )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        print("no deadlines match")
        return
    print_deadlines(c, rows, title="Deadlines")


@deadlines_app.command("check")
def check_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """One scan: send due warnings and escalations; exit 1 when anything is overdue."""
    from engine.deadlines.alerting import load_alerting
    from engine.deadlines.checker import scan

    c: Ctx = ctx.obj
    alerting = load_alerting(c.workspace)
    settings, channels = alerting.settings, alerting.channels
    store = _checked_store(c)
    report = scan(
        store, settings, channels, zone=c.zone, policy=alerting.policy, **_scan_options(c, channels)
    )
    out = report.to_json(c.zone)
    if as_json:
        emit_json(out)
    else:
        _print_report(out)
    if report.overdue:
        raise CheckFailed(f"{len(report.overdue)} deadline(s) overdue")


def _checked_store(c: Ctx) -> Any:
    """The store, refused in one line when its schema predates the deadline tables."""
    from sqlalchemy import inspect

    store = c.store()
    if not inspect(store.engine).has_table("escalation_delivery"):
        raise BadInput("the database has no deadline tables yet: run 'breach db upgrade'")
    return store


def _scan_options(c: Ctx, channels: dict[str, Any]) -> dict[str, Any]:
    """Batch size from settings, and the domain for message ids (the SMTP sender's, if any)."""
    batch = c.workspace.settings.get("deadlines", {}).get("scan_batch", 500)
    if not isinstance(batch, int) or not 1 <= batch <= 100_000:
        raise BadInput("settings.toml [deadlines] scan_batch must be a whole number from 1 to 100000")
    sender = getattr(getattr(channels.get("smtp"), "settings", None), "sender", "")
    domain = sender.rpartition("@")[2] if "@" in sender else "breach.invalid"
    return {"batch": batch, "domain": domain}


def _print_report(out: dict[str, Any]) -> None:
    """The human summary of one scan."""
    d = out["deliveries"]
    print(
        f"checked at {out['checked_at']}: {len(out['alerts'])} new alert(s); deliveries sent {d['sent']}, "
        f"retrying {d['retrying']}, failed {d['failed']}, cancelled {d['cancelled']}, "
        f"resent in doubt {d['resent_in_doubt']}, held in doubt {d['held_in_doubt']}"
    )
    for a in out["alerts"]:
        print(f"  {alert_line(a)}")
    for p in d["problems"]:
        print(f"  delivery problem: {p}")
    for o in out["overdue"]:
        print(
            f"  OVERDUE {o['incident_id']} {o['rule']} {o['subject'] or ''} due {o['due_at']} ({o['status']})"
        )
    for h in out["needs_attention"]:
        print(
            f"  needs a person: delivery {h['delivery_id']} {h['kind']}/{h['channel']} {h['status']}: "
            f"{h['error'] or ''}"
        )


@deadlines_app.command("ack")
def ack_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    rule: Annotated[str, typer.Argument(help="The missed deadline's rule id, e.g. POLICY-CLIENT-NOTICE.")],
    note: Annotated[str | None, typer.Option("--note", help="What is being done about it.")] = None,
    record: RecordOpt = None,
    actor: AsOpt = None,
) -> None:
    """Acknowledge a missed deadline: you have taken it on, so its alerts stop repeating and escalating.

    It stays missed and overdue until it is met or waived.
    """
    from engine.deadlines.acknowledge import acknowledge_deadline

    c: Ctx = ctx.obj
    done = acknowledge_deadline(
        _checked_store(c), incident_id, rule, actor=c.actor(actor), note=note or "", subject=record
    )
    print(
        f"{incident_id}: {rule}{' ' + done.subject if done.subject else ''} acknowledged by {done.by} "
        f"at {c.fmt_short(done.at)}; its alerts stop. It stays missed until met "
        f"(breach incident show {incident_id}) or waived (breach deadlines waive {incident_id} {rule})"
    )


@deadlines_app.command("waive")
def waive_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    rule: Annotated[str, typer.Argument(help="The rule id, e.g. POLICY-PIPL57-INDIVIDUALS.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (a written rationale).")] = None,
    approver: Annotated[
        str | None, typer.Option("--approver", help="Who approved it (not yourself).")
    ] = None,
    record: RecordOpt = None,
    actor: AsOpt = None,
) -> None:
    """Ask to waive a deadline that is not met: with a rationale, for the approver named to approve.

    The deadline is waived when the approver runs 'breach approve ID REQUEST' under their own account.
    """
    from engine.approvals.service import expires_after, request_deadline_waiver

    c: Ctx = ctx.obj
    role = str((c.workspace.settings.get("approvals") or {}).get("deadline_waiver_role") or "")
    request = request_deadline_waiver(
        c.store(),
        incident_id,
        rule,
        reason=reason or "",
        approver=approver or "",
        actor=c.actor(actor),
        subject=record,
        role=role,
        lifetime=expires_after(c.workspace.settings),
    )
    print(
        f"{incident_id}: waiving {rule}{' ' + record if record else ''} waits for {request.approver}'s "
        f"approval (request {request.id}): they run 'breach approve {incident_id} {request.id}'"
    )
    from engine.cli.summary import after_write

    after_write(c, incident_id, actor=actor)


@deadlines_app.command("recompute")
def recompute_cmd(
    ctx: typer.Context,
    incident_ids: Annotated[
        list[str] | None, typer.Argument(help="Incidents to recompute (default: every open one).")
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute deadlines from today's calendars, legal data and policy, e.g. after adding CN-2027.toml."""
    from engine.deadlines.sync import deadline_context, recompute_deadlines
    from engine.wiring import legal_for

    c: Ctx = ctx.obj
    context = deadline_context(c.workspace, lambda: legal_for(c.workspace))
    reports = recompute_deadlines(_checked_store(c), context, actor=c.actor(actor), incident_ids=incident_ids)
    out = {
        incident: {
            "created": r.created,
            "recomputed": r.recomputed,
            "met": r.met,
            "voided": r.voided,
        }
        for incident, r in reports.items()
    }
    if as_json:
        emit_json(out)
        return
    for incident, changes in out.items():
        said = "; ".join(f"{what} {', '.join(names)}" for what, names in changes.items() if names)
        print(f"{incident}: {said or 'no change'}")
    if not out:
        print("no open incidents")


@scheduler_app.command("run")
def scheduler_run(
    ctx: typer.Context,
    every: Annotated[str, typer.Option("--every", help="How often to scan, e.g. 30s, 5m.")] = "30s",
) -> None:
    """Scan every interval until SIGINT or SIGTERM, then stop cleanly."""
    from engine.deadlines.alerting import load_alerting
    from engine.deadlines.checker import scan
    from engine.deadlines.scheduler import parse_interval, run_every

    c: Ctx = ctx.obj
    seconds = parse_interval(every)
    alerting = load_alerting(c.workspace)
    settings, channels = alerting.settings, alerting.channels
    store = _checked_store(c)
    options = {**_scan_options(c, channels), "policy": alerting.policy}

    scans = 0

    def tick() -> None:
        nonlocal scans
        try:
            out = scan(store, settings, channels, zone=c.zone, **options).to_json(c.zone)
            scans += 1
            d = out["deliveries"]
            # One line per alert; a scan that changed nothing prints nothing after the first.
            if scans == 1:
                print(f"scan {out['checked_at']}: first scan done, {len(out['overdue'])} overdue", flush=True)
            for alert in out["alerts"]:
                print(alert_line(alert), flush=True)
            for problem in d["problems"]:
                print(f"delivery problem: {problem}", flush=True)
        except Exception as exc:  # a bad scan must not stop the schedule; the next tick tries again
            print(
                f"scan failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                flush=True,
            )

    print(f"scheduler: scanning every {seconds:g}s; stop with Ctrl-C or SIGTERM", flush=True)
    name = run_every(tick, seconds)
    store.dispose()
    print(f"scheduler stopped ({name})", flush=True)


def register(app: typer.Typer) -> None:
    """Add the deadline and scheduler commands to ``app``."""
    app.add_typer(deadlines_app, name="deadlines")
    app.add_typer(scheduler_app, name="scheduler")
