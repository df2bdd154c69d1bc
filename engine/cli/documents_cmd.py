"""``breach documents render|list`` and ``breach incident responsible``: formal documents and the
persons found responsible, whose disciplinary decisions they include."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx, emit_json, key_table, stdout_console
from engine.cli.options import AsOpt, JsonOpt
from engine.errors import BadInput

__all__ = ["register"]

documents_app = typer.Typer(
    help="Formal documents: regulator reports, bulletin, decisions, remediation report.", no_args_is_help=True
)


@documents_app.command("render")
def render_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    kind: Annotated[str, typer.Argument(help="e.g. regulator_initial_report, disciplinary_decision.")],
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="docx, pdf or html (repeatable); default: the playbook's formats."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject", help="Supplement number, or responsible person id (default: all / latest)."
        ),
    ] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Produce a formal document now (again); it keeps its number, and an unchanged file stays as is."""
    from engine.formal.service import render_document

    c: Ctx = ctx.obj
    wanted = [f.strip() for value in formats or [] for f in value.split(",") if f.strip()] or None
    produced = render_document(
        c.store(), c.workspace, incident_id, kind, actor=c.actor(actor), formats=wanted, subject=subject
    )
    if as_json:
        emit_json([p.to_json() for p in produced])
        return
    for p in produced:
        label = f"{p.kind}" + (f" #{p.subject}" if p.subject else "")
        for fmt, f in p.files.items():
            if fmt in p.unchanged:
                state = "unchanged"
            elif fmt in p.replaced:
                state = "changed: a new file, the previous one is kept"
            else:
                state = "written"
            print(f"{incident_id}: {label} {p.number} {fmt}: {f['path']} ({state})")


@documents_app.command("list")
def list_cmd(ctx: typer.Context, incident_id: IncidentArg, as_json: JsonOpt = False) -> None:
    """The incident's formal documents (number, file, sha256) and what its playbook declares."""
    from engine.formal.service import list_documents

    c: Ctx = ctx.obj
    result = list_documents(c.store(), incident_id)
    rows = [
        {
            "kind": d["kind"],
            "format": d["fmt"],
            "subject": d["subject"],
            "number": d["number"],
            "issued_on": d["issued_on"].isoformat(),
            "path": d["path"],
            "sha256": d["sha256"],
            "template": d["template"],
            "created_at": c.fmt_time(d["created_at"]),
            "created_by": d["created_by"],
        }
        for d in result["documents"]
    ]
    if as_json:
        emit_json({**result, "documents": rows})
        return
    from rich.markup import escape

    title = f"{incident_id} formal documents" + (" [演练 DRILL]" if result["drill"] else "")
    cells = [
        [r["kind"], r["subject"], r["number"], r["format"], escape(Path(r["path"]).name), r["sha256"][:12]]
        for r in rows
    ]
    headers = ("kind", "#", "number", "fmt", "file", "sha256")
    console = stdout_console()
    console.print(key_table(headers, cells, keys=("kind", "number"), title=escape(title)))
    folders = sorted({str(Path(r["path"]).parent) for r in rows})
    if folders:
        console.print(f"files in {', '.join(folders)}", markup=False)
    for d in result["declared"]:
        if d["status"] == "owed":
            who = (
                f" for responsible person #{', #'.join(d['subjects_missing'])}"
                if d["subjects_missing"]
                else ""
            )
            console.print(
                f"owed: {d['kind']}{who} (its step was taken): "
                f"breach documents render {incident_id} {d['kind']}",
                markup=False,
            )
        elif d["status"] == "not yet due":
            console.print(f"later: {d['kind']}, due on {', '.join(d['on'])}", markup=False)


def responsible_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    name: Annotated[str | None, typer.Option("--name", help="The employee's name.")] = None,
    department: Annotated[str | None, typer.Option("--department", help="Department.")] = None,
    position: Annotated[str | None, typer.Option("--position", help="Position.")] = None,
    responsibility: Annotated[
        str | None, typer.Option("--responsibility", help="direct (直接责任) or indirect (间接责任).")
    ] = None,
    sanction: Annotated[
        str | None, typer.Option("--sanction", help="warning (警告), demerit (记过) or demotion (降职).")
    ] = None,
    compensation: Annotated[
        str | None, typer.Option("--compensation", help="Compensation in RMB, e.g. 1500.00.")
    ] = None,
    compensation_basis: Annotated[
        str | None, typer.Option("--compensation-basis", help="The rule allowing the compensation.")
    ] = None,
    facts: Annotated[str | None, typer.Option("--facts", help="The facts found against the person.")] = None,
    rules: Annotated[
        list[str] | None, typer.Option("--rule", help="A rule broken, with its article (repeatable).")
    ] = None,
    draft: Annotated[
        bool,
        typer.Option("--draft", help="Record without facts or rule: the decision says 草稿 on every page."),
    ] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the persons recorded.")] = False,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a person responsible for the incident and the sanction decided (in accountability)."""
    c: Ctx = ctx.obj
    given = {
        "--name": name,
        "--department": department,
        "--position": position,
        "--responsibility": responsibility,
        "--sanction": sanction,
        "--compensation": compensation,
        "--compensation-basis": compensation_basis,
        "--facts": facts,
        "--rule": rules,
        "--draft": draft,
    }
    if list_only:
        extra = [option for option, value in given.items() if value]
        if extra:
            raise BadInput(f"--list takes no {', '.join(extra)}")
        _print_persons(c, incident_id, as_json)
        return
    missing = [
        o for o in ("--name", "--department", "--position", "--responsibility", "--sanction") if not given[o]
    ]
    if missing:
        raise BadInput(f"needs {', '.join(missing)} (or --list to show the persons recorded)")
    from engine.formal.responsible import record_responsible

    recorded = record_responsible(
        c.store(),
        incident_id,
        name=name or "",
        department=department or "",
        position=position or "",
        responsibility=responsibility or "",
        sanction=sanction or "",
        compensation=compensation,
        compensation_basis=compensation_basis,
        facts=facts,
        rules=rules,
        draft=draft,
        actor=c.actor(actor),
    )
    person = recorded.person
    if as_json:
        emit_json(_person_json(c, person))
    else:
        print(f"{incident_id}: responsible person #{person['id']} recorded: {_summary(person)}")
    for task in recorded.decisions_done:
        print(
            f"note: task {task} is done already, so this decision is not produced by itself: "
            f"breach documents render {incident_id} disciplinary_decision --subject {person['id']}"
        )


def _summary(p: dict[str, Any]) -> str:
    """One line per person: name, department and position, finding, sanction, compensation."""
    from engine.formal.responsible import RESPONSIBILITY, SANCTION, compensation_text, word

    money = compensation_text(p["compensation_fen"], p["compensation_basis"], "zh-CN")
    found = word(RESPONSIBILITY, p["responsibility"], "zh-CN")
    decided = word(SANCTION, p["sanction"], "zh-CN")
    return (
        f"{p['name']} ({p['department']}, {p['position']}): {found}, {decided}"
        + (f", 经济赔偿 {money}" if money else "")
        + (" [草稿 draft: record again with --facts and --rule to complete]" if p["draft"] else "")
    )


def _person_json(c: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The shape ``--list --json`` prints (the amount as a decimal string, never a float)."""
    fen = p["compensation_fen"]
    return {
        "id": p["id"],
        "name": p["name"],
        "department": p["department"],
        "position": p["position"],
        "responsibility": p["responsibility"],
        "sanction": p["sanction"],
        "compensation": None
        if fen is None
        else {"amount": f"{fen // 100}.{fen % 100:02d}", "basis": p["compensation_basis"]},
        "facts": p["facts"],
        "rules": list(p["rules"] or []),
        "draft": bool(p["draft"]),
        "recorded_by": p["recorded_by"],
        "recorded_at": c.fmt_time(p["recorded_at"]),
    }


def _print_persons(c: Ctx, incident_id: str, as_json: bool) -> None:
    """Print the incident's responsible persons (``--list``)."""
    from engine.formal.responsible import list_responsible
    from engine.incidents.repository import get_incident

    store = c.store()
    with store.read() as session:
        get_incident(session, incident_id)
        persons = list_responsible(session, incident_id)
    if as_json:
        emit_json([_person_json(c, p) for p in persons])
        return
    if not persons:
        print(f"{incident_id}: no responsible persons recorded")
    for p in persons:
        print(f"#{p['id']} {_summary(p)}")


@documents_app.command("rule")
def rule_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    rule: Annotated[str, typer.Argument(help="EU-GDPR-33, EU-GDPR-34 or US-HIPAA-404.")],
    phase: Annotated[int, typer.Option("--phase", min=1, max=99, help="GDPR Art 33(4): 2 and on.")] = 1,
    delay_reason: Annotated[
        str | None, typer.Option("--delay-reason", help="Why a notification is late (Art 33(1)).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the document a jurisdiction rule owes (English, with a slot for the authority's language)."""
    from engine.cli.rules_cmd import jurisdiction_rules
    from engine.documents.render import DocumentRenderer, write_private
    from engine.formal.rule_documents import RuleDocumentRequest, output_folder, rule_document_context
    from engine.notices.firm import firm_settings
    from engine.store.db import utcnow

    c: Ctx = ctx.obj
    if delay_reason is not None and (len(delay_reason) > 2000 or not delay_reason.strip()):
        raise BadInput("--delay-reason is 1 to 2000 characters")
    jurisdiction, found = jurisdiction_rules(c).rule(rule)
    try:
        firm: dict[str, Any] | None = firm_settings(c.workspace.settings).model_dump()
    except BadInput:
        firm = None  # the document then says what to set; it is still worth drafting
    request = RuleDocumentRequest(incident_id, jurisdiction, found, phase, delay_reason, firm)
    kind, context = rule_document_context(c.store(), request, now=utcnow())
    rendered = DocumentRenderer(c.workspace.search_path("templates")).render(kind, "md", context, locale="en")
    path = write_private(
        output_folder(c.workspace.out_dir, incident_id),
        rendered.filename,
        rendered.content,
        root=c.workspace.home,
    )
    out = {
        "incident": incident_id,
        "rule": found.id,
        "kind": kind,
        "path": str(path),
        "sha256": rendered.sha256,
    }
    if as_json:
        emit_json(out)
        return
    print(f"{incident_id}: {kind} written to {path} (sha256 {rendered.sha256[:16]}…)")
    if not found.verified:
        print(f"  {found.id} is UNVERIFIED (secondary sources only): check it against the law in force")
    print(f"  next: send it, then breach incident filed {incident_id} {found.id} CLOCK --ref REFERENCE")


def register(app: typer.Typer) -> None:
    """Add ``breach documents`` and ``breach incident responsible`` to the application."""
    from engine.cli.incident_cmd import incident_app

    app.add_typer(documents_app, name="documents")
    incident_app.command("responsible")(responsible_cmd)
