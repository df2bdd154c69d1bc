"""Writing and recording formal documents: the register of numbers (文号), the files, the audit events.

Each document gets one number from the incident's counter when it is first issued; its formats share
it and a later production keeps it. Files are written 0600 into the incident's out folder (0700) and
removed again if the transaction that wrote them rolls back, so a file exists only for a recorded
document. A production that finds the same bytes recorded leaves the file alone; changed bytes go to a
new file beside the old one (which a regulator may hold), and the record points to the new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, insert, select, update
from sqlmodel import Session

from engine.errors import BadInput, NotAllowed
from engine.incidents.shape import IncidentShape
from engine.playbooks.document_rules import DocumentRule
from engine.register.numbers import NumberTaken, next_number
from engine.register.table import ISSUE, next_issue_seq

__all__ = [
    "FILES_KEY",
    "Job",
    "Produced",
    "audit_document",
    "issue_for",
    "previous_report",
    "store_document",
]

FILES_KEY = "breach_formal_files"


@dataclass
class Produced:
    """One document produced (all its formats): what the CLI and the audit event report."""

    kind: str
    subject: str
    number: str
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # fmt -> {path, sha256}
    replaced: dict[str, str] = field(default_factory=dict)  # fmt -> the sha256 it replaced
    unchanged: list[str] = field(default_factory=list)  # formats found recorded with the same bytes

    def to_json(self) -> dict[str, Any]:
        """The shape ``breach documents render --json`` prints."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "number": self.number,
            "files": self.files,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
        }


@dataclass
class Job:
    """A document to produce: its rule, subject and formats, and what its context needs."""

    rule: DocumentRule
    subject: str
    formats: list[str]
    person: dict[str, Any] | None = None
    entry: dict[str, Any] | None = None


def issue_for(
    session: Session,
    incident: IncidentShape,
    kind: str,
    subject: str,
    src: Any,
    at: datetime,
    taken: list[int],
    numbers: NumberTaken,
) -> dict[str, Any]:
    """The document's register row: found, or a new number and date (not inserted yet: ``new`` says so).

    ``taken`` and ``numbers`` hold the counters and numbers given to this step's other new documents,
    which are inserted later.
    """
    row = session.execute(
        select(ISSUE).where(
            ISSUE.c.incident_id == incident.id, ISSUE.c.kind == kind, ISSUE.c.subject == subject
        )
    ).first()
    if row is not None:
        return {**row._mapping, "new": False}
    seq = max([next_issue_seq(session, incident.id), *(n + 1 for n in taken)])
    taken.append(seq)
    day = at.astimezone(ZoneInfo(src.zone)).date()
    number, register, serial = next_number(
        session, src.settings.number_prefix or incident.id, day.year, numbers
    )
    return {
        "seq": seq,
        "number": number,
        "number_register": register,
        "serial": serial,
        "issued_on": day,
        "created_at": at,
        "stated": {},
        "new": True,
    }


def previous_report(session: Session, incident: IncidentShape, before_seq: int | None) -> dict[str, Any]:
    """The latest regulator report a supplement follows (initial or supplementary, issued before it)."""
    query = select(ISSUE).where(
        ISSUE.c.incident_id == incident.id,
        ISSUE.c.kind.in_(("regulator_initial_report", "regulator_supplementary_report")),
    )
    if before_seq is not None:
        query = query.where(ISSUE.c.seq < before_seq)
    row = session.execute(query.order_by(ISSUE.c.seq.desc()).limit(1)).first()
    if row is None:
        raise NotAllowed(
            "a supplementary report follows an earlier report and none was produced: take the step "
            "that owes the initial report first (or: breach documents render "
            f"{incident.id} regulator_initial_report)"
        )
    return dict(row._mapping)


def _filename(incident: IncidentShape, job: Job, fmt: str) -> str:
    """A sanitised file name: DRILL mark, kind, incident, subject and the person's name (readable)."""
    from engine.documents.render import safe_filename

    parts = ["DRILL"] if incident.drill else []
    parts += [job.rule.kind, incident.id]
    if job.subject:
        parts.append(job.subject)
    if job.person is not None:
        parts.append(job.person["name"])
    return safe_filename(*parts, ext=fmt)


def store_document(
    session: Session,
    incident: IncidentShape,
    folder: Path,
    job: Job,
    issue: dict[str, Any],
    docs: list[Any],
    *,
    at: datetime,
    actor: str,
    replace: bool,
    root: Path | None = None,
) -> Produced:
    """Register the number, write the files (removed again if the transaction rolls back), record them.

    No link below ``root`` (the workspace) is followed on the way to ``folder``.
    """
    from engine.documents.registry import DOCUMENT, record_document
    from engine.documents.render import write_private

    kind = job.rule.kind
    values = {k: issue[k] for k in ("seq", "number", "issued_on", "stated")}
    if issue.pop("new"):
        values.update(number_register=issue["number_register"], serial=issue["serial"])
        session.execute(
            insert(ISSUE).values(
                incident_id=incident.id,
                kind=kind,
                subject=job.subject,
                created_at=at,
                created_by=actor,
                **values,
            )
        )
    else:
        session.execute(update(ISSUE).where(ISSUE.c.id == issue["id"]).values(stated=values["stated"]))
    produced = Produced(kind, job.subject, issue["number"])
    d = DOCUMENT.c
    for doc in docs:
        old = session.execute(
            select(d.id, d.path, d.sha256).where(
                d.incident_id == incident.id, d.kind == kind, d.fmt == doc.fmt, d.subject == job.subject
            )
        ).first()
        if old is not None and old.sha256 == doc.sha256 and Path(old.path).is_file():
            produced.files[doc.fmt] = {"path": old.path, "sha256": doc.sha256}  # the same bytes: kept as is
            produced.unchanged.append(doc.fmt)
            continue
        name = _filename(incident, job, doc.fmt)
        if old is not None and (folder / name).exists():
            name = _free_name(folder, name)  # the file a regulator may hold stays: a revision beside it
        try:
            path = write_private(folder, name, doc.content, root=root)
        except OSError as exc:
            raise BadInput(f"cannot write {folder / name}: {exc.strerror or exc}") from None
        _discard_on_rollback(session, path)
        if old is None:
            record_document(
                session,
                incident_id=incident.id,
                rendered=doc,
                path=path,
                actor=actor,
                at=at,
                subject=job.subject,
            )
        else:
            session.execute(
                update(DOCUMENT)
                .where(d.id == old.id)
                .values(
                    path=str(path),
                    sha256=doc.sha256,
                    template=doc.template,
                    template_sha256=doc.template_sha256,
                    created_at=at,
                    created_by=actor,
                )
            )
            produced.replaced[doc.fmt] = old.sha256
        produced.files[doc.fmt] = {"path": str(path), "sha256": doc.sha256}
    return produced


def _free_name(folder: Path, name: str) -> str:
    """``name`` with the first ``_r2``, ``_r3``... suffix no file in ``folder`` has."""
    stem, dot, ext = name.rpartition(".")
    n = 2
    while (folder / f"{stem}_r{n}{dot}{ext}").exists():
        n += 1
    return f"{stem}_r{n}{dot}{ext}"


def _discard_on_rollback(session: Session, path: Path) -> None:
    """Remove ``path`` if the session's transaction rolls back; keep it once it commits."""
    if FILES_KEY not in session.info:
        session.info[FILES_KEY] = []

        def rolled_back(s: Session) -> None:
            """Remove the files of the transaction that did not happen."""
            for written in s.info.pop(FILES_KEY, []):
                try:
                    os.unlink(written)
                except FileNotFoundError:
                    pass

        def committed(s: Session) -> None:
            """Keep the files: their records are now committed."""
            s.info.pop(FILES_KEY, None)

        event.listen(session, "after_rollback", rolled_back, once=True)
        event.listen(session, "after_commit", committed, once=True)
    session.info[FILES_KEY].append(path)


def audit_document(
    session: Session, incident: IncidentShape, produced: Produced, *, at: datetime, actor: str, cause: str
) -> None:
    """One event per document: its number and each format's file name and hash (never its content)."""
    from engine.incidents.audit import next_event
    from engine.incidents.rows import insert_event

    inputs: dict[str, Any] = {
        "kind": produced.kind,
        "number": produced.number,
        "cause": cause,
        "files": {
            fmt: {"name": Path(f["path"]).name, "sha256": f["sha256"]} for fmt, f in produced.files.items()
        },
    }
    if produced.subject:
        inputs["subject"] = produced.subject
    if produced.replaced:
        inputs["replaced"] = produced.replaced
    insert_event(
        session,
        next_event(
            incident,
            kind="documents_produced",
            actor=actor,
            at=at,
            from_state=incident.state,
            to_state=incident.state,
            inputs=inputs,
        ),
    )
