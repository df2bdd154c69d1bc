"""Documents a jurisdiction rule owes: GDPR Art 33 notification, Art 34 communication, HIPAA 164.404 notice.

Rendered in English through the same sandboxed templates as every other document (``templates/en/``,
workspace first), with a slot naming the authority's language for the translation the authority may
ask for. The context lists the items the law requires (from the rule's data) beside what the incident
knows; an item not known yet prints as "to follow" so a phased report (GDPR Art 33(4)) shows what is
still owed. A notification made after its clock ran out must state the reasons for the delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from engine.deadlines.tables import Deadline
from engine.errors import BadInput
from engine.incidents.repository import get_incident
from engine.legal.jurisdictions import Jurisdiction, JurisdictionRule
from engine.notices.content import NoticeContentRecord
from engine.notices.contexts import localize
from engine.store.db import Store

__all__ = ["RULE_DOCUMENT_KINDS", "RuleDocumentRequest", "output_folder", "rule_document_context"]

# kind -> the clock whose due time the document answers
RULE_DOCUMENT_KINDS: dict[str, str] = {
    "gdpr33_notification": "notification",
    "gdpr34_communication": "communication",
    "hipaa404_notice": "individuals",
}


@dataclass(frozen=True)
class RuleDocumentRequest:
    """What the operator asks for: which rule's document, its phase, and the reasons for any delay."""

    incident_id: str
    jurisdiction: Jurisdiction
    rule: JurisdictionRule
    phase: int = 1
    delay_reason: str | None = None
    firm: dict[str, Any] | None = None


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def rule_document_context(
    store: Store, request: RuleDocumentRequest, *, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The document kind and its context for ``request``.

    :raises BadInput: when the rule owes no document, or a late notification gives no reason for delay.
    """
    kinds = [k for k in request.rule.documents if k in RULE_DOCUMENT_KINDS]
    if not kinds:
        owed = ", ".join(sorted(r for r in ("EU-GDPR-33", "EU-GDPR-34", "US-HIPAA-404")))
        raise BadInput(f"{request.rule.id} has no document template; rules with one: {owed}")
    kind = kinds[0]
    clock_id = RULE_DOCUMENT_KINDS[kind]
    clock = next(c for c in request.rule.clocks if c.id == clock_id)
    with store.read() as session:
        incident = get_incident(session, request.incident_id)
        facts = dict(incident.facts or {})
        deadline = _deadline(session, incident.id, request.rule.id, clock_id)
        record = session.get(NoticeContentRecord, incident.id)
        narrative = dict((record.content if record else {}).get("incident", {}))
        anchors = dict(incident.anchors or {})
    due_at = deadline.due_at if deadline is not None else None
    late = due_at is not None and now > due_at
    reason = (request.delay_reason or "").strip() or None
    if late and reason is None and kind == "gdpr33_notification":
        raise BadInput(
            f"the {clock_id} clock of {request.rule.id} ran out at {due_at.isoformat() if due_at else ''}: "
            "give --delay-reason (GDPR Art 33(1) requires the reasons for the delay)"
        )

    def text(name: str) -> str | None:
        value = localize(narrative.get(name), "en")
        return str(value) if value else None

    records = facts.get("records") or {}
    context: dict[str, Any] = {
        "firm": request.firm,
        "incident": {
            "id": incident.id,
            "title": text("title") or incident.title,
            "discovered_at": _moment(anchors.get("discovered_at")),
            "aware_at": _moment(facts.get("aware_at") or anchors.get("aware_at")),
            "occurred_at": _moment(narrative.get("occurred_at")),
            "people_count": facts.get("people_affected"),
            "record_count": sum(int(v) for v in records.values()) or None,
            "cause": text("cause"),
            "possible_harm": text("possible_harm"),
            "measures": [str(localize(m, "en")) for m in narrative.get("measures") or []],
        },
        "rule": {
            "id": request.rule.id,
            "title": request.rule.title,
            "article": request.rule.article,
            "source": request.rule.source,
            "verified": request.rule.verified,
            "content": list(request.rule.content),
        },
        "clock": {
            "label": clock.label,
            "wording": clock.wording,
            "due_at": due_at,
            "recipient": clock.recipient,
        },
        "phase": request.phase,
        "late": late,
        "delay_reason": reason,
        "authority_language": request.jurisdiction.authority_language,
        "generated_at": now,
        "drill": bool(incident.drill),
        "timezone": request.jurisdiction.zone,
    }
    return kind, context


def _deadline(session: Session, incident_id: str, rule_id: str, clock_id: str) -> Deadline | None:
    query = select(Deadline).where(
        Deadline.incident_id == incident_id, Deadline.rule_id == rule_id, Deadline.subject == clock_id
    )
    return session.exec(query).first()


def output_folder(out_dir: Path, incident_id: str) -> Path:
    """Where an incident's rule documents are written (the formal documents' folder)."""
    return out_dir / incident_id
