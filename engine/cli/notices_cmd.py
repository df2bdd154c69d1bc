"""``breach notices content|render|send|record|resolve|status`` and ``breach templates list|check``."""

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

__all__ = ["progress_reporter", "register"]

notices_app = typer.Typer(
    help="Per-person notices: content, render, send, record, resolve, status.", no_args_is_help=True
)
templates_app = typer.Typer(help="Document templates: which are in force, and a check.", no_args_is_help=True)
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


def _read_content(file: Path) -> Any:
    """The content file, read within the workspace's size limits, parsed and validated."""
    from engine.files.reading import read_text
    from engine.files.structured import load_yaml
    from engine.notices.contexts import NoticeContent

    text = read_text(file, what="notice content file", encoding="utf-8-sig")
    return NoticeContent.parse(load_yaml(text, str(file)), str(file))


@notices_app.command("content")
def content_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    file: Annotated[Path | None, typer.Argument(help="YAML or JSON; without it, show the content.")] = None,
    show: Annotated[
        bool,
        typer.Option("--show", help="Show the content in force and every field, marking what is missing."),
    ] = False,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set what the notices state (cause, harm, measures, remedies), until the first notice goes out."""
    from engine.notices.content import set_content

    c: Ctx = ctx.obj
    store = c.store()
    if file is None or show:
        if file is not None:
            raise BadInput("give a FILE to set the content, or --show to see it, not both")
        _show_content(c, incident_id, as_json)
        return
    digest = set_content(store, incident_id, _read_content(file), actor=c.actor(actor))
    print(
        f"{incident_id}: notice content set (sha256 {digest[:16]}…); it can change until the first notice "
        f"goes out. Next: breach notices render {incident_id}"
    )


def _show_content(c: Ctx, incident_id: str, as_json: bool) -> None:
    """The content in force, its version, and each documented field with its value or what is missing."""
    from sqlalchemy import select

    from engine.incidents.repository import get_incident
    from engine.notices.content import CONTENT, reached_count
    from engine.notices.fields import CONTENT_FIELDS, field_value, missing_fields
    from engine.notices.people import PERSON

    store = c.store()
    with store.read() as session:
        get_incident(session, incident_id)
        row = session.execute(select(CONTENT).where(CONTENT.c.incident_id == incident_id)).mappings().first()
        reached = reached_count(session, incident_id)
        locales = {
            str(r[0])
            for r in session.execute(
                select(PERSON.c.locale).where(PERSON.c.incident_id == incident_id).distinct()
            )
        }
    content = dict(row["content"]) if row else {}
    missing = missing_fields(content, c.workspace.settings.get("firm", {}), locales)
    fields = [
        {
            "field": f.path,
            "label": f.zh,
            "required": f.required,
            "value": field_value(content, f.path),
            "meaning": f.meaning,
        }
        for f in CONTENT_FIELDS
    ]
    result = {
        "incident": incident_id,
        "version": row["version"] if row else None,
        "content": content,
        "sha256": row["content_sha256"] if row else None,
        "notices_sent": reached,
        "missing": missing,
        "fields": fields,
    }
    if as_json:
        emit_json(result)
        return
    state = (
        f"version {row['version']}, {reached} notices went out: change it only with breach notices correct"
        if row and reached
        else "not set yet"
        if not row
        else f"version {row['version']}, nothing sent yet: it can still change"
    )
    print(f"{incident_id} notice content: {state}")
    for f in fields:
        value = f["value"]
        shown = "—" if value in (None, "", [], {}) else _one_line(value)
        mark = "required" if f["required"] else "optional"
        print(f"  {f['field']:<26} {mark:<9} {f['label']}: {shown}")
    if missing:
        print(f"missing before notices can be rendered: {', '.join(missing)}")
        print(
            "fill them in a copy of notice-content.example.yaml (in the workspace), then: "
            f"breach notices content {incident_id} FILE"
        )
    else:
        print(f"complete. Next: breach notices render {incident_id}")


def _one_line(value: Any) -> str:
    """A value on one line, every word kept (an operator copies from here)."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(str(text).split())


@notices_app.command("correct")
def correct_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    file: Annotated[Path, typer.Argument(help="The corrected content (YAML or JSON), whole.")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct notices that went out: a new content version and a correction notice to everyone notified."""
    from engine.cli.people_cmd import template_locales
    from engine.notices.correction import correct_content

    c: Ctx = ctx.obj
    locales, _default = template_locales(c)
    done = correct_content(c.store(), incident_id, _read_content(file), actor=c.actor(actor), locales=locales)
    if as_json:
        emit_json(
            {
                "incident": incident_id,
                "version": done.version,
                "changed": done.changed,
                "recipients": done.recipients,
                "discarded_documents": done.discarded,
                "sha256": done.sha256,
            }
        )
        return
    print(
        f"{incident_id}: notice content version {done.version} corrects {', '.join(done.changed)}; "
        f"a correction notice is owed to {done.recipients} recipients already notified"
        + (f"; {done.discarded} unsent notices will be rendered again" if done.discarded else "")
    )
    print(f"next: breach notices render {incident_id}, then breach notices send {incident_id}")


@notices_app.command("render")
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


@notices_app.command("send")
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


@notices_app.command("record")
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


@notices_app.command("resolve")
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


@notices_app.command("status")
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


@templates_app.command("list")
def templates_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every template file in force per kind and locale, and whether it is the workspace's or built-in."""
    from engine.documents.templating import templates_in_force

    c: Ctx = ctx.obj
    rows = templates_in_force(c.workspace.search_path("templates"))
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        formats = ",".join(r["formats"])
        print(f"{r['kind']:<32} {r['locale']:<6} {formats:<14} {r['file']:<40} {r['source']}")


@templates_app.command("check")
def templates_check(ctx: typer.Context) -> None:
    """Check every template against its documented context; each problem as file:line."""
    from engine.documents.templating import check_templates

    c: Ctx = ctx.obj
    paths = c.workspace.search_path("templates")
    problems = check_templates(paths)
    for problem in problems:
        print(problem)
    if problems:
        raise BadInput(f"{len(problems)} problem(s) in the templates; see the lines above")
    count = sum(
        1 for root in paths if root.is_dir() for f in root.glob("*/*") if f.suffix in (".j2", ".docx")
    )
    print(f"templates ok ({count} files checked)")


def register(app: typer.Typer) -> None:
    """Add ``breach notices`` and ``breach templates`` to the application."""
    app.add_typer(notices_app, name="notices")
    app.add_typer(templates_app, name="templates")
