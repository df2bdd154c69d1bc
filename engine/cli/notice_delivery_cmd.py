"""``breach notices render|send|record|resolve``: getting each recipient's notice out.

Rendering and sending run over thousands of recipients (with a progress bar on a terminal); recording
and resolving settle deliveries made outside breach or held in doubt, and report the notice tasks they
complete. Together they are the write side of the delivery outbox, apart from the content they render.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput, CheckFailed

__all__ = ["delivery_app", "progress_reporter"]

# Merged into ``breach notices`` by engine.cli.notices_cmd (a Typer added without a name lends its commands).
delivery_app = typer.Typer()
OutOpt = Annotated[Path | None, typer.Option("--out", help="Folder for the files (default out/<ID>/).")]
Hooks = tuple[Callable[[int], None] | None, Callable[[int], None] | None]


@contextmanager
def progress_reporter(label: str, quiet: bool) -> Iterator[Hooks]:
    """A Rich progress bar on stderr (count, rate, ETA); nothing when ``quiet`` or stderr is no terminal."""
    if quiet or not sys.stderr.isatty():
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.cli.terminal import safe_console

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=safe_console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=None, rate="")

        def total(count: int) -> None:
            bar.update(task, total=count)

        def advance(count: int) -> None:
            bar.advance(task, count)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        yield total, advance


def _split(values: list[str] | None) -> list[str] | None:
    """``--format md,eml --format sms`` as ``[md, eml, sms]``."""
    parts = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return parts or None


@delivery_app.command("render")
def render_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="md, html, eml or sms (repeatable); default: what each channel needs."),
    ] = None,
    kinds: Annotated[
        list[str] | None, typer.Option("--kind", help="customer_notice or client_notice (default: both).")
    ] = None,
    out: OutOpt = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render every recipient's notice from the database; run again after an interruption to resume."""
    from engine.notices.render import render_notices

    c: Ctx = ctx.obj
    store = c.store()
    with progress_reporter("rendering", as_json) as (on_total, on_advance):
        report = render_notices(
            store,
            c.workspace,
            incident_id,
            actor=c.actor(actor),
            kinds=_split(kinds),
            formats=_split(formats),
            out_dir=out,
            on_total=on_total,
            on_advance=on_advance,
        )
    if as_json:
        emit_json(report.to_json())
        return
    done = ", ".join(f"{k} {n}" for k, n in report.rendered.items()) or "nothing new"
    kept = sum(report.already.values())
    print(f"{incident_id}: rendered {done}; {kept} already rendered; files in {report.out_dir}")
    if report.sms_messages:
        print(f"sms: {report.sms_messages} texts, {report.sms_segments} segments in all")
    for label, count in report.template_changed.items():
        print(f"note: {count} {label} documents were rendered earlier with other templates", file=sys.stderr)


@delivery_app.command("send")
def send_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    out: OutOpt = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Email each recipient whose channel is email, exactly once; in a drill, only the drill mailbox."""
    from engine.notices.send import send_notices

    c: Ctx = ctx.obj
    store = c.store()

    def server_problem(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)

    with progress_reporter("sending", as_json) as (on_total, on_advance):
        report = send_notices(
            store,
            c.workspace,
            incident_id,
            actor=c.actor(actor),
            hooks=c.hooks(),
            out_dir=out,
            on_total=on_total,
            on_advance=on_advance,
            on_problem=server_problem,
        )
    s = report.sent
    if as_json:
        emit_json(report.to_json())
    else:
        drill = " (drill)" if report.drill else ""
        print(
            f"{incident_id}{drill}: {s.sent} sent, {s.drill_skipped} drill-skipped, {len(s.failed)} failed, "
            f"{len(s.retrying)} to retry, {len(s.held)} held in doubt"
        )
        for task, outcome in report.tasks.items():
            print(f"task {task}: {outcome}")
        for line in s.failed:
            print(f"failed: {line}", file=sys.stderr)
        from engine.cli.summary import after_write

        after_write(c, incident_id, actor=actor)
    if not report.complete:
        pending = sum(n for counts in report.status.values() for st, n in counts.items() if st != "sent")
        if s.unreachable:
            raise CheckFailed(
                f"stopped: the mail server could not be reached; {pending} deliveries are kept and will each "
                f"go out once with 'breach notices send {incident_id}' when it is back"
            )
        raise CheckFailed(
            f"{pending} deliveries not sent yet (failed, retrying, in doubt or busy): "
            f"see 'breach notices status {incident_id}', run 'breach notices send {incident_id}' again"
        )


CustomerOpt = Annotated[
    list[str] | None,
    typer.Option("--customer", help="A recipient's customer id (repeatable, or comma-separated)."),
]
RefOpt = Annotated[
    str | None,
    typer.Option(
        "--ref", help="The evidence: gateway batch id, tracking number, mail-log line (no personal data)."
    ),
]


def _print_recorded(c: Ctx, report: Any, as_json: bool, done: str) -> None:
    """What a record or resolve call changed, the notice tasks it completed or is waiting for, and what
    to do now."""
    from engine.cli.summary import after_write

    if as_json:
        emit_json(report.to_json())
        return
    kept = f"; {len(report.unchanged)} already notified, left as they were" if report.unchanged else ""
    print(f"{report.incident_id}: {len(report.changed)} {done}{kept}")
    for task, outcome in report.tasks.items():
        print(f"task {task}: {outcome}")
    after_write(c, report.incident_id)


@delivery_app.command("record")
def record_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    channel: Annotated[str, typer.Option("--channel", help="sms, post or public: how the notices went out.")],
    customers: CustomerOpt = None,
    ref: RefOpt = None,
    failed: Annotated[
        str | None, typer.Option("--failed", help="Record a failed attempt with this reason instead.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="When they really went out (ISO-8601; without an offset, the workspace zone)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is recorded late (needed for --at over 24 h back).")
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record notices sent outside breach (SMS gateway, post, announcement) against their rendered text."""
    from engine.clocks.durations import parse_instant
    from engine.notices.recorded import record_deliveries

    c: Ctx = ctx.obj
    when = parse_instant(at, c.zone) if at is not None else None
    report = record_deliveries(
        c.store(),
        incident_id,
        channel=channel.strip().lower(),
        reference=ref,
        actor=c.actor(actor),
        hooks=c.hooks(),
        customers=_split(customers),
        failed=failed,
        at=when,
        at_reason=reason,
        zone=c.zone,
    )
    _print_recorded(c, report, as_json, f"{channel} deliveries recorded as {'failed' if failed else 'sent'}")


@delivery_app.command("resolve")
def resolve_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    delivered: Annotated[
        bool, typer.Option("--delivered", help="Checked: the mail server accepted it (needs --ref).")
    ] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send it again on the next 'breach notices send'.")
    ] = False,
    customers: CustomerOpt = None,
    ref: RefOpt = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Settle emails held in doubt after a crash (or failed ones): mark them delivered, or send again."""
    from engine.notices.recorded import resolve_deliveries

    if delivered == resend:
        raise BadInput("give exactly one of --delivered or --resend")
    c: Ctx = ctx.obj
    outcome = "delivered" if delivered else "resend"
    report = resolve_deliveries(
        c.store(),
        incident_id,
        outcome=outcome,
        reference=ref,
        actor=c.actor(actor),
        hooks=c.hooks(),
        customers=_split(customers),
    )
    again = f"queued again (send them with: breach notices send {incident_id})"
    done = "marked delivered" if delivered else again
    _print_recorded(c, report, as_json, f"email deliveries {done}")
