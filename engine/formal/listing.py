"""An incident's formal documents as the operator lists them: each with its number, path and hash, and
what the playbook still owes, judged from the steps already taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from engine.formal.responsible import RESPONSIBLE
from engine.register.table import ISSUE
from engine.store.db import Store, table_of

__all__ = ["list_documents", "steps_taken"]


def steps_taken(session: Session, incident_id: str) -> set[str]:
    """The causes a document rule may name that already happened: ``task:X`` done, ``trigger:X`` fired,
    ``state:X`` entered."""
    from engine.incidents.tables import Event, Task

    e = table_of(Event).c
    t = table_of(Task).c
    taken: set[str] = set()
    for trigger, to_state in session.execute(
        select(e.trigger, e.to_state).where(e.incident_id == incident_id).distinct()
    ):
        if trigger:
            taken.add(f"trigger:{trigger}")
        if to_state:
            taken.add(f"state:{to_state}")
    for (key,) in session.execute(select(t.key).where(t.incident_id == incident_id, t.status == "done")):
        taken.add(f"task:{key}")
    return taken


def list_documents(store: Store, incident_id: str) -> dict[str, Any]:
    """The incident's formal documents with number, path and hash, and what its playbook still owes."""
    from engine.documents.registry import DOCUMENT
    from engine.incidents.repository import get_incident, incident_playbook

    d = DOCUMENT.c
    with store.read() as session:
        incident = get_incident(session, incident_id)
        playbook = incident_playbook(session, incident).playbook
        rows = (
            session.execute(
                select(
                    d.kind,
                    d.fmt,
                    d.subject,
                    d.path,
                    d.sha256,
                    d.template,
                    d.created_at,
                    d.created_by,
                    ISSUE.c.number,
                    ISSUE.c.issued_on,
                )
                .join(
                    ISSUE,
                    (ISSUE.c.incident_id == d.incident_id)
                    & (ISSUE.c.kind == d.kind)
                    & (ISSUE.c.subject == d.subject),
                )
                .where(d.incident_id == incident_id, d.person_ref.is_(None))
                .order_by(ISSUE.c.seq, d.fmt)
            )
            .mappings()
            .all()
        )
        counts = dict(
            session.execute(
                select(d.kind, func.count()).where(d.incident_id == incident_id).group_by(d.kind)
            ).all()
        )
        happened = steps_taken(session, incident_id)
        persons = {
            str(pid)
            for (pid,) in session.execute(
                select(RESPONSIBLE.c.id).where(RESPONSIBLE.c.incident_id == incident_id)
            )
        }
        decided = {
            str(subject)
            for (subject,) in session.execute(
                select(d.subject).where(d.incident_id == incident_id, d.kind == "disciplinary_decision")
            )
        }
    owed = []
    for r in playbook.documents:
        due = [str(o) for o in r.on if str(o) in happened]
        produced = bool(counts.get(r.kind))
        missing = sorted(persons - decided) if r.kind == "disciplinary_decision" else []
        if r.kind == "disciplinary_decision":
            status = "owed" if due and missing else "produced" if produced else "not yet due"
        else:
            status = "produced" if produced else "owed" if due else "not yet due"
        owed.append(
            {
                "kind": r.kind,
                "on": [str(o) for o in r.on],
                "formats": list(r.formats),
                "produced": produced,
                "status": status,
                "subjects_missing": missing if status == "owed" else [],
            }
        )
    return {
        "incident": incident_id,
        "drill": bool(incident.drill),
        "documents": [dict(r) for r in rows],
        "declared": owed,
    }
