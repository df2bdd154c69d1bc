"""Per-person notices rendered from the database, streaming, resumable, each recorded with its hash.

How a run stays correct when it is killed and run again
-------------------------------------------------------
People are read in batches by keyset (``WHERE id > :last ORDER BY id LIMIT :n``), only those without
a document of the (kind, format) yet, so memory stays flat and a re-run starts where the last one
stopped. For each person the file is rendered and written atomically (temporary file, then rename);
the batch's ``document`` rows are inserted afterwards in one short transaction, under the unique key
(incident, kind, format, subject). So:

- a row exists only for a file that was completely written: no one is recorded and missing;
- a file written but not recorded (killed between the two) is rendered again on the next run and
  replaced atomically with the same bytes: rendering is deterministic, because the notice content and
  its ``generated_at`` are frozen in ``notice_content`` by the first run;
- a person with a row is never rendered again: no one twice, even with two renders at once
  (``INSERT ... ON CONFLICT DO NOTHING``; both wrote the same bytes).
Temporary files of a killed run (``.<name>.<pid>.<n>.tmp``) are removed by the next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PField
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.documents.registry import DOCUMENT, Document, document_values, insert_ignore
from engine.documents.render import DocumentRenderer, clean_temporaries, safe_filename, write_private
from engine.errors import BadInput, Conflict
from engine.incidents.audit import append_event
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.tables import Event
from engine.notices.content import NoticeContentRecord, set_content
from engine.notices.contexts import IncidentStats, NoticeContent, NoticeContexts, firm_settings
from engine.notices.people import CATEGORY_LABELS, PERSON
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

__all__ = [
    "DOCUMENT",
    "Document",
    "NoticeContentRecord",
    "NoticeSettings",
    "RenderReport",
    "clean_temporaries",
    "notice_settings",
    "plan",
    "render_notices",
    "set_content",
]

# Which document each channel needs when no --format is given: a person reached by email gets the
# .eml, by SMS the text, by post a printable page, and one reachable only by public notice a record.
CHANNEL_FORMATS = {"email": "eml", "sms": "sms", "post": "html", "public": "md"}
AUDIENCE = {"customer_notice": "person", "client_notice": "company"}


class NoticeSettings(BaseModel):
    """``[notices]`` in settings.toml: batch size, sending pace, retries and drills."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = PField(default=500, ge=1, le=10_000)
    rate_per_second: float = PField(default=5.0, gt=0, le=1000)
    retry_seconds: float = PField(default=30, ge=0, le=3600)
    max_attempts: int = PField(default=5, ge=1, le=100)
    max_wait_seconds: float = PField(default=300, ge=0, le=86_400)
    lease_seconds: float = PField(default=120, gt=0, le=3600)
    in_doubt: str = PField(default="resend", pattern="^(resend|hold)$")
    drill_recipient: str = ""
    envelope_sender: str = ""


def notice_settings(settings: dict[str, Any]) -> NoticeSettings:
    """The ``[notices]`` table, checked.

    :raises BadInput: naming the key and the problem.
    """
    try:
        return NoticeSettings.model_validate(settings.get("notices", {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"settings.toml [notices] {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


@dataclass(frozen=True)
class Pass:
    """One streaming pass: a kind in a format for the recipients it concerns."""

    kind: str
    fmt: str
    channel: str | None  # only recipients of this channel (the default, channel-driven plan)

    @property
    def label(self) -> str:
        """``kind/format``."""
        return f"{self.kind}/{self.fmt}"


def plan(kinds: list[str] | None, formats: list[str] | None) -> list[Pass]:
    """The passes of a run: per channel by default, else every named format each kind supports."""
    from engine.documents.render import KINDS

    chosen = kinds or list(AUDIENCE)
    for kind in chosen:
        if kind not in AUDIENCE:
            raise BadInput(f"--kind {kind!r} is not a per-recipient notice; use {' or '.join(AUDIENCE)}")
    if not formats:
        return [Pass(k, f, ch) for k in chosen for ch, f in CHANNEL_FORMATS.items() if f in KINDS[k].formats]
    passes = [Pass(k, f, None) for f in dict.fromkeys(formats) for k in chosen if f in KINDS[k].formats]
    unused = [f for f in formats if not any(p.fmt == f for p in passes)]
    if unused:
        supported = sorted({f for k in chosen for f in KINDS[k].formats})
        raise BadInput(f"--format {', '.join(unused)} is not a notice format; use {', '.join(supported)}")
    return passes


@dataclass
class RenderReport:
    """What a render run did."""

    incident_id: str
    out_dir: Path
    rendered: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    template_changed: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape ``breach notices render --json`` prints."""
        return {
            "incident": self.incident_id,
            "out_dir": str(self.out_dir),
            "rendered": self.rendered,
            "already_rendered": self.already,
            "rendered_with_other_templates": self.template_changed,
        }


def _eligible(p: Pass, incident_id: str) -> list[Any]:
    """The people pass ``p`` concerns: its audience, its channel (if any), an address for an email."""
    person = PERSON.c
    where = [person.incident_id == incident_id, person.type == AUDIENCE[p.kind]]
    if p.channel is not None:
        where.append(person.channel == p.channel)
    if p.fmt == "eml":
        where.append(person.email.is_not(None))
    return where


def _todo(p: Pass, incident_id: str) -> list[Any]:
    """Those of them without the pass's document yet (the WHERE of both the count and the pages)."""
    done = exists().where(
        DOCUMENT.c.person_id == PERSON.c.id, DOCUMENT.c.kind == p.kind, DOCUMENT.c.fmt == p.fmt
    )
    return [*_eligible(p, incident_id), ~done]


def _freeze(store: Store, incident_id: str) -> tuple[Any, NoticeContent, datetime, bool]:
    """The incident and its content; the first render fixes ``generated_at`` (True when it did now)."""
    for attempt in (1, 2):
        try:
            with store.write() as session:
                incident = get_incident(session, incident_id)
                record = session.get(NoticeContentRecord, incident_id)
                now = utcnow().replace(microsecond=0)
                if record is None:
                    empty = hashlib.sha256(b"{}").hexdigest()
                    record = NoticeContentRecord(
                        incident_id=incident_id, content={}, set_at=now, set_by="", content_sha256=empty
                    )
                    session.add(record)
                froze = record.generated_at is None
                if froze:
                    record.generated_at = now
                session.flush()
                content = NoticeContent.parse(record.content, "notice content")
                return incident, content, record.generated_at, froze
        except IntegrityError:  # a render started at the same moment created the row: read theirs
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _stats(session: Session, incident_id: str) -> IncidentStats:
    person = PERSON.c
    counts = dict(
        session.execute(
            select(person.type, func.count()).where(person.incident_id == incident_id).group_by(person.type)
        ).all()
    )
    codes: set[str] = set()
    for (joined,) in session.execute(
        select(person.categories).where(person.incident_id == incident_id).distinct()
    ):
        codes.update(c for c in joined.split(";") if c)
    return IncidentStats(
        people=counts.get("person") or None,
        clients=counts.get("company") or None,
        category_codes=tuple(c for c in CATEGORY_LABELS if c in codes),
    )


Progress = Callable[[int], None]


def render_notices(
    store: Store,
    workspace: Workspace,
    incident_id: str,
    *,
    actor: str,
    kinds: list[str] | None = None,
    formats: list[str] | None = None,
    out_dir: Path | None = None,
    on_total: Progress | None = None,
    on_advance: Progress | None = None,
    channel: str | None = None,
) -> RenderReport:
    """Render and record every missing notice of ``incident_id`` (see the module docstring).

    ``channel`` keeps only the recipients of that channel (the send command renders the emails).
    """
    passes = [p for p in plan(kinds, formats) if channel is None or p.channel == channel]
    settings = notice_settings(workspace.settings)
    firm = firm_settings(workspace.settings)
    incident, content, generated_at, _froze = _freeze(store, incident_id)
    folder = (out_dir or workspace.out_dir / incident_id).resolve()
    clean_temporaries(folder)
    report = RenderReport(incident_id, folder)
    with store.read() as session:
        stats = _stats(session, incident_id)
        todo = {p: _count(session, _todo(p, incident_id)) for p in passes}
        for p in passes:
            already = _count(session, _eligible(p, incident_id)) - todo[p]
            if already:
                report.already[p.label] = report.already.get(p.label, 0) + already
    if on_total:
        on_total(sum(todo.values()))
    default_locale = str(workspace.settings.get("workspace", {}).get("locale", "zh-CN"))
    renderer = DocumentRenderer(workspace.search_path("templates"), locale_default=default_locale)
    contexts = NoticeContexts(incident, firm, content, generated_at, stats, workspace.timezone)
    for p in passes:
        if todo[p]:
            _run_pass(
                store, p, incident, contexts, renderer, folder, settings.batch_size, actor, report, on_advance
            )
    _audit(store, incident_id, actor, report)
    return report


def _count(session: Session, where: list[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(PERSON).where(*where)).scalar_one())


def _run_pass(
    store: Store,
    p: Pass,
    incident: Any,
    contexts: NoticeContexts,
    renderer: DocumentRenderer,
    folder: Path,
    batch: int,
    actor: str,
    report: RenderReport,
    on_advance: Progress | None,
) -> None:
    """Stream one pass: a page of people, their files, then their rows; until no one is left."""
    last = 0
    hashes: set[str] = set()
    prefix = ["DRILL"] if incident.drill else []
    while True:
        with store.read() as session:
            page = (
                session.execute(
                    select(PERSON)
                    .where(*_todo(p, incident.id), PERSON.c.id > last)
                    .order_by(PERSON.c.id)
                    .limit(batch)
                )
                .mappings()
                .all()
            )
            employees = _employees(session, incident.id, page) if p.kind == "client_notice" else {}
        if not page:
            break
        last = page[-1]["id"]
        rows = []
        now = utcnow()
        for person in page:
            if p.kind == "client_notice":
                context = contexts.client(person, employees.get(person["customer_id"], []))
            else:
                context = contexts.customer(person)
            rendered = renderer.render(p.kind, p.fmt, context)
            name = safe_filename(*prefix, p.kind, person["customer_id"], person["name"], ext=p.fmt)
            try:
                path = write_private(folder, name, rendered.content)
            except OSError as exc:
                raise BadInput(f"cannot write {folder / name}: {exc.strerror or exc}") from None
            hashes.add(rendered.template_sha256)
            rows.append(
                document_values(
                    incident_id=incident.id,
                    rendered=rendered,
                    path=path,
                    actor=actor,
                    at=now,
                    subject=person["customer_id"],
                    person_id=person["id"],
                    person_ref=person["customer_id"],
                )
            )
        with store.write() as session:
            session.execute(insert_ignore(session, DOCUMENT), rows)
        report.rendered[p.label] = report.rendered.get(p.label, 0) + len(rows)
        if on_advance:
            on_advance(len(rows))
    if hashes:
        with store.read() as session:
            other = session.execute(
                select(func.count())
                .select_from(DOCUMENT)
                .where(
                    DOCUMENT.c.incident_id == incident.id,
                    DOCUMENT.c.kind == p.kind,
                    DOCUMENT.c.fmt == p.fmt,
                    DOCUMENT.c.template_sha256.not_in(hashes),
                )
            ).scalar_one()
        if other:
            report.template_changed[p.label] = int(other)


def _employees(session: Session, incident_id: str, companies: Any) -> dict[str, list[Any]]:
    """The people naming each of ``companies`` as their employer, in id order."""
    ids = [c["customer_id"] for c in companies]
    found: dict[str, list[Any]] = {}
    if ids:
        person = PERSON.c
        for row in session.execute(
            select(person.employer, person.name, person.department, person.categories)
            .where(person.incident_id == incident_id, person.employer.in_(ids))
            .order_by(person.id)
        ).mappings():
            found.setdefault(row["employer"], []).append(row)
    return found


def _audit(store: Store, incident_id: str, actor: str, report: RenderReport) -> None:
    """One event per run that changed the record: counts per kind and format (never a name).

    A run killed after writing documents but before its event leaves them unaudited; so the event is
    written whenever the recorded totals, or the frozen content, differ from what the last
    ``notices_rendered`` event says — the next run then covers the killed one.
    """
    recorded = {
        label: report.already.get(label, 0) + report.rendered.get(label, 0)
        for label in {*report.already, *report.rendered}
    }
    for _attempt in range(5):
        try:
            with store.write() as session, session.no_autoflush:
                incident = get_incident(session, incident_id)
                record = session.get(NoticeContentRecord, incident_id)
                last = session.scalars(
                    select(Event)
                    .where(Event.incident_id == incident_id, Event.kind == "notices_rendered")  # type: ignore[arg-type]
                    .order_by(Event.seq.desc())  # type: ignore[attr-defined]
                    .limit(1)
                ).first()
                said = last.inputs if last is not None else {}
                frozen = record is not None and record.generated_at is not None
                frozen_said = not frozen or said.get("content_sha256") == record.content_sha256
                if said.get("recorded") == recorded and frozen_said and not report.rendered:
                    return  # nothing new since the last event
                inputs: dict[str, Any] = {"rendered": report.rendered, "recorded": recorded}
                if frozen:
                    inputs.update(
                        generated_at=record.generated_at.isoformat(), content_sha256=record.content_sha256
                    )
                append_event(
                    session,
                    incident,
                    kind="notices_rendered",
                    actor=actor,
                    at=utcnow(),
                    from_state=incident.state,
                    to_state=incident.state,
                    inputs=inputs,
                )
                flush_or_conflict(session, incident_id)
            return
        except Conflict:
            continue  # an operator changed the incident meanwhile: the event goes on top of theirs
    raise Conflict(f"{incident_id} kept changing; the documents are recorded, the audit event is not")
