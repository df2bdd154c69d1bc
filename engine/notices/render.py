"""Per-person notices rendered from the database, streaming, resumable, each recorded with its hash.

Before anything is rendered, the content must say what every notice needs (the cause, the possible
harm, the measures taken and still to be taken, :mod:`engine.notices.fields`), and ``[firm]`` must
name the personal-information protection officer: a notice with an empty section is refused, naming
what is missing. People reachable only by public announcement get one aggregate announcement per
locale (``public_notice``, naming no one); after a correction, everyone it lists gets a correction
notice (:mod:`engine.notices.correction`).

How a run stays correct when it is killed and run again
-------------------------------------------------------
People are read in batches by keyset (``WHERE id > :last ORDER BY id LIMIT :n``), only those without
a document of the (kind, format) yet, so memory stays flat and a re-run starts where the last one
stopped. For each person the file is rendered and written atomically (named only once whole, see
:meth:`engine.files.PrivateFolder.put`); the batch's ``document`` rows are inserted afterwards in one
short transaction, under the unique key (incident, kind, format, subject). So:

- a row exists only for a file that was completely written: no one is recorded and missing;
- a file written but not recorded (killed between the two) is rendered again on the next run and
  replaced atomically with the same bytes: rendering is deterministic, because the notice content of a
  version and its ``generated_at`` are fixed in ``notice_content`` by the version's first run;
- a person with a row is never rendered again: no one twice, even with two renders at once
  (``INSERT ... ON CONFLICT DO NOTHING``; both wrote the same bytes).
Temporary files a killed run left (``.<name>.<pid>.<random>.tmp``, where files cannot be written
unnamed) are removed by the next run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlmodel import Session

from engine.documents.registry import DOCUMENT, document_values, insert_documents
from engine.documents.render import DocumentRenderer, clean_temporaries, safe_filename
from engine.documents.sms import sms_segments
from engine.errors import BadInput, Conflict
from engine.files import PrivateFolder
from engine.incidents.audit import append_event
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.tables import Event
from engine.notices.announcement import announcements_owed, render_announcements
from engine.notices.content import NoticeContentRecord
from engine.notices.contexts import NoticeContexts
from engine.notices.correction import correction_changes, correction_context, original_message_ids
from engine.notices.firm import firm_settings
from engine.notices.freeze import Frozen, freeze
from engine.notices.passes import Pass, eligible, plan, recipient_stats, todo
from engine.notices.people import PERSON
from engine.notices.settings import NoticeSettings, notice_settings
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

__all__ = [
    "NoticeSettings",
    "RenderReport",
    "clean_temporaries",
    "notice_settings",
    "render_notices",
]

Progress = Callable[[int], None]
# What a notice is built from: every person column but the import's own record, which no notice
# prints (reading a timestamp back costs more per person than rendering a line of the notice).
_PAGE_COLUMNS = [c for c in PERSON.c if c.name not in ("imported_at", "import_sha256")]


@dataclass
class RenderReport:
    """What a render run did, and what the SMS texts cost."""

    incident_id: str
    out_dir: Path
    version: int = 1
    rendered: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    template_changed: dict[str, int] = field(default_factory=dict)
    sms_messages: int = 0  # SMS texts rendered by this run
    sms_segments: int = 0  # the segments they cost together

    def to_json(self) -> dict[str, Any]:
        """The shape ``breach notices render --json`` prints."""
        return {
            "incident": self.incident_id,
            "out_dir": str(self.out_dir),
            "content_version": self.version,
            "rendered": self.rendered,
            "already_rendered": self.already,
            "rendered_with_other_templates": self.template_changed,
            "sms": {"messages": self.sms_messages, "segments": self.sms_segments},
        }


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

    :raises BadInput: a field every notice needs is missing (named), or a setting is wrong.
    """
    settings = notice_settings(workspace.settings)
    firm = firm_settings(workspace.settings)
    frozen = freeze(store, workspace, incident_id, actor)
    passes = [
        p for p in plan(kinds, formats, version=frozen.version) if channel is None or p.channel == channel
    ]
    asked = bool(kinds and "public_notice" in kinds)
    # Not resolved: a link planted at out/ or out/<ID> must be refused when written through, not followed.
    folder = Path(os.path.abspath(out_dir or workspace.out_dir / incident_id))
    clean_temporaries(folder)
    report = RenderReport(incident_id, folder, frozen.version)
    with store.read() as session:
        stats = recipient_stats(session, incident_id)
        counts: dict[Pass, int] = {}
        for p in passes:
            if p.kind == "public_notice":
                owed, already = announcements_owed(session, incident_id, p, frozen.version, asked=asked)
                counts[p] = len(owed)
            else:
                counts[p] = _count(session, todo(p, incident_id, frozen.version))
                already = _count(session, eligible(p, incident_id, frozen.version)) - counts[p]
            if already:
                report.already[p.label] = report.already.get(p.label, 0) + already
    if on_total:
        on_total(sum(counts.values()))
    default_locale = str(workspace.settings.get("workspace", {}).get("locale", "zh-CN"))
    renderer = DocumentRenderer(workspace.search_path("templates"), locale_default=default_locale)
    contexts = NoticeContexts(
        frozen.incident, firm, frozen.content, frozen.generated_at, stats, workspace.timezone
    )
    for p in passes:
        if not counts[p]:
            continue
        if p.kind == "public_notice":
            done = render_announcements(
                store,
                p,
                incident=frozen.incident,
                version=frozen.version,
                contexts=contexts,
                renderer=renderer,
                folder=folder,
                root=workspace.home,
                actor=actor,
                asked=asked,
            )
            report.rendered[p.label] = report.rendered.get(p.label, 0) + done
            if on_advance:
                on_advance(done)
        else:
            _run_pass(
                store,
                p,
                frozen,
                contexts,
                renderer,
                folder,
                workspace.home,
                settings.batch_size,
                actor,
                report,
                on_advance,
            )
    _audit(store, incident_id, actor, report)
    return report


def _count(session: Session, where: list[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(PERSON).where(*where)).scalar_one())


def _write(target: PrivateFolder, name: str, content: bytes) -> None:
    try:
        target.put(name, content)
    except OSError as exc:
        raise BadInput(f"cannot write {target.path / name}: {exc.strerror or exc}") from None


def _context(
    p: Pass,
    person: Mapping[str, Any],
    frozen: Frozen,
    contexts: NoticeContexts,
    employees: dict[str, list[Any]],
    changes: dict[str, list[dict[str, Any]]],
    originals: dict[int, str],
) -> dict[str, Any]:
    if p.kind == "client_notice":
        cid = person["customer_id"]
        return contexts.client(person, employees.get(cid, []), frozen.numbers[cid])
    if p.kind == "correction_notice":
        original = originals.get(person["id"])
        return correction_context(contexts, person, frozen.version, changes[person["locale"]], original)
    return contexts.customer(person)


def _run_pass(
    store: Store,
    p: Pass,
    frozen: Frozen,
    contexts: NoticeContexts,
    renderer: DocumentRenderer,
    folder: Path,
    root: Path,
    batch: int,
    actor: str,
    report: RenderReport,
    on_advance: Progress | None,
) -> None:
    """Stream one pass: a page of people, their files, then their rows; until no one is left."""
    incident, version = frozen.incident, frozen.version
    last = 0
    hashes: set[str] = set()
    prefix = ["DRILL"] if incident.drill else []
    changes: dict[str, list[dict[str, Any]]] = {}
    correction = p.kind == "correction_notice"
    while True:
        with store.read() as session:
            # Rows keyed by column name (SQLAlchemy types the keys as names or columns).
            page = cast(
                "Sequence[Mapping[str, Any]]",
                session.execute(
                    select(*_PAGE_COLUMNS)
                    .where(*todo(p, incident.id, version), PERSON.c.id > last)
                    .order_by(PERSON.c.id)
                    .limit(batch)
                )
                .mappings()
                .all(),
            )
            employees = _employees(session, incident.id, page) if p.kind == "client_notice" else {}
            originals: dict[int, str] = {}
            if correction:
                for loc in {person["locale"] for person in page} - set(changes):
                    changes[loc] = correction_changes(session, incident.id, version, loc)
                if p.fmt == "eml":
                    originals = original_message_ids(session, incident.id, [row["id"] for row in page])
        if not page:
            break
        last = page[-1]["id"]
        rows = []
        now = utcnow()
        # The folder is opened (and its path checked for links) once per page, not once per file: the
        # open descriptor pins it, so every file of the page lands in the folder that was checked.
        with PrivateFolder.open(folder, root=root) as target:
            base = str(target.path)
            for person in page:
                cid = person["customer_id"]
                parts = [*prefix, p.kind, cid, *([f"v{version}"] if correction else []), person["name"]]
                rendered = renderer.render(
                    p.kind,
                    p.fmt,
                    _context(p, person, frozen, contexts, employees, changes, originals),
                    filename=safe_filename(*parts, ext=p.fmt),
                )
                _write(target, rendered.filename, rendered.content)
                hashes.add(rendered.template_sha256)
                if p.fmt == "sms":
                    report.sms_messages += 1
                    report.sms_segments += sms_segments(rendered.content.decode("utf-8"))[0]
                rows.append(
                    document_values(
                        incident_id=incident.id,
                        rendered=rendered,
                        path=os.path.join(base, rendered.filename),
                        actor=actor,
                        at=now,
                        subject=f"{cid}#v{version}" if correction else cid,
                        person_id=person["id"],
                        person_ref=cid,
                        version=version,
                    )
                )
        with store.write() as session:
            insert_documents(session, rows)
        report.rendered[p.label] = report.rendered.get(p.label, 0) + len(rows)
        if on_advance:
            on_advance(len(rows))
    if hashes:
        with store.read() as session:
            d = DOCUMENT.c
            other = session.execute(
                select(func.count())
                .select_from(DOCUMENT)
                .where(
                    d.incident_id == incident.id,
                    d.kind == p.kind,
                    d.fmt == p.fmt,
                    d.template_sha256.not_in(hashes),
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
                generated_at = record.generated_at if record is not None else None
                frozen_sha = (
                    record.content_sha256 if record is not None and generated_at is not None else None
                )
                frozen_said = frozen_sha is None or said.get("content_sha256") == frozen_sha
                if said.get("recorded") == recorded and frozen_said and not report.rendered:
                    return  # nothing new since the last event
                inputs: dict[str, Any] = {"rendered": report.rendered, "recorded": recorded}
                if generated_at is not None:
                    inputs.update(generated_at=generated_at.isoformat(), content_sha256=frozen_sha)
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
