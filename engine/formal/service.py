"""Formal documents (regulator reports, internal bulletin, disciplinary decisions, remediation report)
produced on the steps that owe them, inside the step's transaction.

The playbook's ``documents:`` rules (:mod:`engine.playbooks.document_rules`) say which step owes which
document.
:class:`FormalHook` runs in every flow transaction of a workspace; when the step owes documents it:

1. checks the ``[firm]`` settings: a report without the unit's name is wrong, so the step is refused,
   naming each key to set, before anything is rendered or written;
2. builds each document's context (:mod:`engine.formal.contexts`) and renders every format in memory:
   any failure refuses the step and nothing is written;
3. writes the files (0600, in ``<workspace>/out/<incident>/``, 0700) and records each in ``document``
   with its hash and its templates' hash, plus one audit event per document (all its formats).

Files written by a transaction that then rolls back (a later hook refuses, a conflict, a failed commit)
are removed again: a file exists only for a recorded document. A document already recorded is not
produced twice (re-entering a state or retrying a step finds it), and the register (``formal_issue``)
gives each document one number (文号) from a per-incident counter, kept when it is produced again with
``breach documents render``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PField
from sqlalchemy import select
from sqlmodel import Session

from engine.errors import BadInput, NotAllowed, NotFound
from engine.formal.listing import list_documents
from engine.formal.records import Job, Produced, audit_document, issue_for, previous_report, store_document
from engine.formal.responsible import RESPONSIBLE
from engine.incidents.hooks import Step
from engine.incidents.shape import IncidentShape
from engine.playbooks.document_rules import FORMAL_KINDS, DocumentRule
from engine.playbooks.model import Playbook
from engine.register.numbers import NumberTaken
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

__all__ = [
    "DocumentSettings",
    "FormalHook",
    "Produced",
    "document_settings",
    "list_documents",
    "render_document",
]

FIRM_REQUIRED = ("name", "address", "contact_name", "contact_phone", "contact_email", "contact_hours")


class DocumentSettings(BaseModel):
    """``[documents]`` in settings.toml: who formal documents go to, who issues and signs them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regulator: str = ""  # addressee of regulator reports, e.g. 北京市互联网信息办公室 (else a blank line)
    number_prefix: str = ""  # 文号 prefix, e.g. 示例财税 (else the incident id): 示例财税〔2026〕3号
    signatory: str = ""  # who signs (else [firm] legal_representative)
    internal_issuer: str = ""  # issuer of the bulletin and decisions (else [firm] name)
    bulletin_to: str = ""  # addressee of the bulletin (else 公司各部门、全体员工)
    appeal_to: str = ""  # who hears an appeal against a decision (else the internal issuer)
    appeal_days: int = PField(default=15, ge=1, le=365)
    locale: str = ""  # language of formal documents (else [workspace] locale)
    header: str = PField(
        default="", max_length=60
    )  # red issuer mark, e.g. 示例财税服务有限公司文件 (else none)


def document_settings(settings: dict[str, Any]) -> DocumentSettings:
    """The ``[documents]`` table, checked.

    :raises BadInput: naming the key and the problem.
    """
    try:
        return DocumentSettings.model_validate(settings.get("documents", {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"settings.toml [documents] {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def firm_for_documents(workspace: Workspace) -> Any:
    """The ``[firm]`` settings, refused unless every key a formal document prints is set.

    :raises BadInput: naming every missing key and the file to set them in.
    """
    from engine.notices.firm import firm_settings

    raw = workspace.settings.get("firm", {})
    missing = [k for k in FIRM_REQUIRED if not str(raw.get(k) or "").strip()]
    if missing:
        raise BadInput(
            f"set [firm] {', '.join(missing)} in {workspace.home / 'config' / 'settings.toml'}: "
            "formal documents name the firm, its address and its contact"
        )
    return firm_settings(workspace.settings)


class FormalHook:
    """The ``Hooks.after_change`` callable producing the documents a step owes (see the module doc)."""

    def __init__(self, workspace: Workspace) -> None:
        """Bind the hook to ``workspace`` (settings, templates, out folder)."""
        self.workspace = workspace
        self._index: dict[str, dict[str, list[DocumentRule]]] = {}
        self._renderer: Any = None

    def renderer(self) -> Any:
        """The document renderer of this workspace's templates, made once per hook (per command)."""
        if self._renderer is None:
            from engine.documents.render import DocumentRenderer

            self._renderer = DocumentRenderer(self.workspace.search_path("templates"))
        return self._renderer

    def rules_for(self, source: Any, state: str, cause: str) -> list[DocumentRule]:
        """The rules a cause (``opened``, a trigger, ``task:X``) fires, given the state it led to."""
        index = self._index.get(source.sha256)
        if index is None:
            index = {}
            for rule in source.playbook.documents:
                for on in rule.on:
                    index.setdefault(str(on), []).append(rule)
            self._index[source.sha256] = index
        found = list(index.get(cause, []) if cause.startswith("task:") else index.get(f"trigger:{cause}", []))
        entered = index.get(f"state:{state}", [])
        if entered and _enters(source.playbook, cause, state):
            found += [r for r in entered if r not in found]
        return found

    def __call__(self, change: Step) -> None:
        """Produce every document the step owes; refuse the step (one line) if one cannot be produced."""
        session, incident, source, cause = change.session, change.incident, change.playbook, change.cause
        rules = self.rules_for(source, incident.state, cause)
        if not rules:
            return
        step = cause.replace("task:", "task ") if cause.startswith("task:") else f"trigger {cause}"
        try:
            jobs = [
                job for rule in rules for job in _jobs(session, incident, rule, subject=None, replace=False)
            ]
            if jobs:
                _produce(
                    session,
                    self.workspace,
                    self.renderer(),
                    incident,
                    source.playbook,
                    jobs,
                    at=change.at,
                    actor=change.actor,
                    cause=cause,
                    replace=False,
                    issued_at=change.happened_at,
                )
        except BadInput as exc:
            kinds = ", ".join(dict.fromkeys(r.kind for r in rules))
            raise NotAllowed(f"{step} owes {kinds}, which cannot be produced: {exc}") from None


def _enters(playbook: Playbook, cause: str, state: str) -> bool:
    """Whether ``cause`` is the opening or a trigger whose transition leads into ``state``."""
    if cause == "opened":
        return playbook.initial == state
    return any(t.trigger == cause and not t.internal and t.dest == state for t in playbook.transitions)


def _recorded_formats(session: Session, incident_id: str, kind: str, subject: str) -> set[str]:
    """The formats of a document already recorded (a retried or re-entered step skips them)."""
    from engine.documents.registry import DOCUMENT

    d = DOCUMENT.c
    rows = session.execute(
        select(d.fmt).where(d.incident_id == incident_id, d.kind == kind, d.subject == subject)
    )
    return {r[0] for r in rows}


def _jobs(
    session: Session,
    incident: IncidentShape,
    rule: DocumentRule,
    *,
    subject: str | None,
    replace: bool,
    formats: list[str] | None = None,
) -> list[Job]:
    """The documents ``rule`` owes now: its subjects (a supplement, each person) and missing formats."""
    wanted = formats or list(rule.formats)
    # (subject key, the responsible person's row, the record entry) for each document owed.
    subjects: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]
    if rule.kind == "regulator_supplementary_report":
        entries = incident.records.get(rule.record or "", [])
        if subject is not None:
            entries = [e for e in entries if str(e.get("number")) == subject]
            if not entries:
                raise NotFound(
                    f"no {rule.record} entry #{subject} (the trigger that appends it numbers them)"
                )
        elif entries:
            entries = entries[-1:]  # the entry this trigger just appended: earlier ones have their reports
        subjects = [(str(e["number"]), None, e) for e in entries]
    elif rule.kind == "disciplinary_decision":
        query = select(RESPONSIBLE).where(RESPONSIBLE.c.incident_id == incident.id).order_by(RESPONSIBLE.c.id)
        persons = [dict(r._mapping) for r in session.execute(query)]
        if subject is not None:
            persons = [p for p in persons if str(p["id"]) == subject]
            if not persons:
                raise NotFound(
                    f"no responsible person #{subject} (breach incident responsible {incident.id} --list)"
                )
        subjects = [(str(p["id"]), p, None) for p in persons]
    else:
        if subject not in (None, ""):
            raise BadInput(f"{rule.kind} is one per incident: it takes no --subject")
        subjects = [("", None, None)]
    jobs = []
    for key, person, entry in subjects:
        todo = (
            wanted
            if replace
            else [f for f in wanted if f not in _recorded_formats(session, incident.id, rule.kind, key)]
        )
        if todo:
            jobs.append(Job(rule, key, todo, person, entry))
    return jobs


def _produce(
    session: Session,
    workspace: Workspace,
    renderer: Any,
    incident: IncidentShape,
    playbook: Any,
    jobs: list[Job],
    *,
    at: datetime,
    actor: str,
    cause: str,
    replace: bool,
    issued_at: datetime | None = None,
) -> list[Produced]:
    """Render every job in memory, then write and record them all, with one audit event per document.

    ``issued_at`` dates the documents (the real time of the step that owes them, if entered); ``at``
    is when they are recorded.
    """
    from engine.formal.contexts import REGULATOR_KINDS, formal_context, read_sources
    from engine.formal.report_items import stated_items
    from engine.notices.contexts import check_context

    firm = firm_for_documents(workspace)  # first: a refused step renders and writes nothing
    src = read_sources(session, workspace, incident, playbook, firm, document_settings(workspace.settings))
    rendered: list[tuple[Job, dict[str, Any], list[Any]]] = []
    taken: list[int] = []
    numbers = NumberTaken()
    for job in jobs:
        kind = job.rule.kind
        issue = issue_for(session, incident, kind, job.subject, src, issued_at or at, taken, numbers)
        supplement = None
        if kind == "regulator_supplementary_report":
            previous = previous_report(session, incident, None if issue["new"] else issue["seq"])
            supplement = {"sequence": int(job.subject), "entry": job.entry or {}, "previous": previous}
        ctx = formal_context(kind, issue, src, rule=job.rule, person=job.person, supplement=supplement)
        check_context(kind, ctx)
        if kind in REGULATOR_KINDS:
            issue["stated"] = stated_items(ctx["incident"], src.locale, src.zone, src.late)
        rendered.append(
            (job, issue, [renderer.render(kind, fmt, ctx, locale=src.locale) for fmt in job.formats])
        )
    folder = workspace.out_dir / incident.id
    produced = []
    for job, issue, docs in rendered:
        produced.append(
            store_document(
                session,
                incident,
                folder,
                job,
                issue,
                docs,
                at=at,
                actor=actor,
                replace=replace,
                root=workspace.home,
            )
        )
        audit_document(session, incident, produced[-1], at=at, actor=actor, cause=cause)
    return produced


def render_document(
    store: Store,
    workspace: Workspace,
    incident_id: str,
    kind: str,
    *,
    actor: str,
    formats: list[str] | None = None,
    subject: str | None = None,
) -> list[Produced]:
    """Produce one formal document now (again), whatever the step: ``breach documents render``.

    The document keeps its number and date; a format whose bytes are unchanged is left as it is, a
    changed one is written beside the old file (which stays) and the record points to it.
    """
    from engine.incidents.repository import incident_playbook
    from engine.incidents.rows import load_incident, write_incident

    if kind not in FORMAL_KINDS:
        raise BadInput(f"unknown formal document {kind!r}; use one of {', '.join(FORMAL_KINDS)}")
    with store.write() as session:
        incident = load_incident(session, incident_id)
        playbook = incident_playbook(session, incident).playbook
        rule = next((r for r in playbook.documents if r.kind == kind), None)
        if rule is None:
            if kind == "regulator_supplementary_report":
                raise NotAllowed(
                    f"playbook {playbook.id} declares no supplementary report: nothing numbers it"
                )
            rule = DocumentRule.model_construct(
                kind=kind, on=[], formats=["docx", "pdf"], record=None, sections={}
            )
        bad = [f for f in formats or [] if f not in ("docx", "pdf", "html")]
        if bad:
            raise BadInput(f"--format {', '.join(bad)}: formal documents are docx, pdf or html")
        jobs = _jobs(session, incident, rule, subject=subject, replace=True, formats=formats)
        if not jobs:
            what = (
                "responsible persons recorded"
                if kind == "disciplinary_decision"
                else f"{rule.record} entries"
            )
            raise NotAllowed(f"{incident_id} has no {what} yet, so there is no {kind} to produce")
        produced = _produce(
            session,
            workspace,
            FormalHook(workspace).renderer(),
            incident,
            playbook,
            jobs,
            at=utcnow(),
            actor=actor,
            cause="render",
            replace=True,
        )
        write_incident(session, incident, incident.version)
    return produced
