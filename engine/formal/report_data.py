"""Report data: the regulator-report items the operator supplies at any time (``breach incident
report-data``), kept with every earlier value and audited.

The notice content (``breach notices content``) is frozen once a notice reached someone, but a report to
the regulator is completed over weeks: the initial report marks what is not known as 待补报, each
supplement states what was learned since, and the summary report states everything. Report data is where
those items come from later: it overrides the notice content's words in the formal reports only (never in
a notice already sent). Every change is a row of ``report_item`` (the old rows stay: the table is the
item's history) and one audit event in the same transaction; ``supplied_at`` is when the item became known
(``--at``), ``recorded_at`` when it was entered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Table, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from engine.errors import BadInput
from engine.formal.report_items import LATE_ITEM
from engine.incidents.audit import append_event
from engine.incidents.shape import IncidentShape
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "DERIVED",
    "REPORT_ITEM",
    "SETTABLE",
    "ReportDataChange",
    "ReportItemRecord",
    "Supplied",
    "apply_report_data",
    "check_values",
    "current_report_data",
    "initial_report_lateness",
    "record_report_data",
    "report_data_rows",
    "set_report_data",
]

# Items the operator may supply, and how each is written: one text, one line per entry, or a moment.
SETTABLE: dict[str, str] = {
    "system": "text",
    "occurred_at": "moment",
    "found_how": "text",
    "place": "text",
    "type_label": "text",
    "possible_harm": "text",
    "measures": "lines",
    "measures_effect": "text",
    "outlook": "text",
    "cause": "text",
    "leads": "text",
    "next_steps": "lines",
    "support_requested": "text",
    "scene_protection": "text",
    "other_matters": "text",
    LATE_ITEM[0]: "text",
}
# Items a report takes from the facts or the recipient list, with the command that changes them.
DERIVED: dict[str, str] = {
    "grade_label": "the assessment of the facts (breach incident facts)",
    "categories": "the recipient list (breach people import)",
    "people_count": "the facts (breach incident facts ID --set people_affected=N)",
    "record_count": "the facts (breach incident facts ID --set records.KIND=N)",
    "client_count": "the recipient list (breach people import)",
}
_JSON = JSON().with_variant(JSONB(), "postgresql")
TEXT_LIMIT = 2000  # characters of one text or one line of a list: a report item, not a file
LINES_LIMIT = 50


class ReportItemRecord(SQLModel, table=True):
    """One value of one report item as supplied; the newest row of an item is its value now."""

    __tablename__ = "report_item"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    item: str = Field(max_length=32)
    # A text, a list of texts, or an ISO-8601 moment; null: cleared (the notice content's words again).
    value: Any = Field(
        default=None, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=True)
    )
    supplied_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_by: str = Field(max_length=220)


REPORT_ITEM: Table = table_of(ReportItemRecord)


@dataclass(frozen=True)
class Supplied:
    """An item's value now: what it says, when it became known and who entered it."""

    value: Any
    supplied_at: datetime
    recorded_by: str


def _text(item: str, value: Any, origin: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadInput(f"{origin}: {item} must be text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > TEXT_LIMIT:
        raise BadInput(f"{origin}: {item} is {len(text)} characters; at most {TEXT_LIMIT}")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise BadInput(f"{origin}: {item} holds control characters")
    return text


def _one(item: str, value: Any, origin: str, zone: str) -> Any:
    """``value`` as stored for ``item`` (None clears it)."""
    kind = SETTABLE[item]
    if value is None or value == "" or value == []:
        return None
    if kind == "moment":
        from engine.clocks.durations import parse_instant

        if isinstance(value, datetime):  # YAML reads an unquoted time as one
            moment = value if value.utcoffset() is not None else parse_instant(value.isoformat(), zone)
        else:
            moment = parse_instant(_text(item, value, origin), zone)
        return moment.isoformat()
    if kind == "lines":
        entries = value if isinstance(value, list) else _text(item, value, origin).splitlines()
        lines = [_text(item, entry, origin) for entry in entries]
        lines = [line for line in lines if line]
        if len(lines) > LINES_LIMIT:
            raise BadInput(f"{origin}: {item} has {len(lines)} entries; at most {LINES_LIMIT}")
        return lines or None
    return _text(item, value, origin) or None


def check_values(raw: Any, origin: str, zone: str) -> dict[str, Any]:
    """The items of ``raw`` (a mapping item → value) as stored; every key and value is checked.

    :raises BadInput: naming the first unknown item, value too long or of the wrong shape.
    """
    if not isinstance(raw, Mapping):
        raise BadInput(f"{origin}: expected a mapping of report items (item: value)")
    values: dict[str, Any] = {}
    for item, value in raw.items():
        name = str(item)
        if name in DERIVED:
            raise BadInput(f"{origin}: {name} is not report data: it comes from {DERIVED[name]}")
        if name not in SETTABLE:
            raise BadInput(f"{origin}: unknown report item {name!r}; use one of {', '.join(SETTABLE)}")
        values[name] = _one(name, value, origin, zone)
    return values


def current_report_data(session: Session, incident_id: str) -> dict[str, Supplied]:
    """Each item's newest value (a cleared item is left out)."""
    r = REPORT_ITEM.c
    rows = session.execute(
        select(r.item, r.value, r.supplied_at, r.recorded_by)
        .where(r.incident_id == incident_id)
        .order_by(r.id)
    )
    newest = {row.item: Supplied(row.value, row.supplied_at, row.recorded_by) for row in rows}
    return {item: supplied for item, supplied in newest.items() if supplied.value is not None}


def record_report_data(
    session: Session,
    incident: IncidentShape,
    values: dict[str, Any],
    *,
    actor: str,
    at: datetime,
    supplied_at: datetime | None = None,
    reason: str | None = None,
) -> list[str]:
    """Store the items of ``values`` that differ from their value now, with one audit event, in the
    caller's transaction; return the items changed (none: nothing is written)."""
    now = current_report_data(session, incident.id)
    changed = {
        item: value for item, value in values.items() if value != (now[item].value if item in now else None)
    }
    if not changed:
        return []
    when = supplied_at or at
    # Core inserts run at once: a step's later hook (the documents) reads them in the same transaction,
    # where the ORM would not flush first.
    session.execute(
        insert(REPORT_ITEM),
        [
            {
                "incident_id": incident.id,
                "item": item,
                "value": value,
                "supplied_at": when,
                "recorded_at": at,
                "recorded_by": actor,
            }
            for item, value in changed.items()
        ],
    )
    append_event(
        session,
        incident,
        kind="report_data",
        actor=actor,
        at=at,
        from_state=incident.state,
        to_state=incident.state,
        reason=(reason or "").strip() or None,
        inputs={
            "changed": {
                item: {"from": now[item].value if item in now else None, "to": value}
                for item, value in changed.items()
            }
        },
        occurred_at=supplied_at,
    )
    return list(changed)


def apply_report_data(block: dict[str, Any], supplied: dict[str, Supplied]) -> None:
    """Put the supplied items into a context's ``incident`` block, over the notice content's words."""
    for item, entry in supplied.items():
        if item == LATE_ITEM[0]:
            continue  # not an item of the incident block: the initial report's ``late`` block holds it
        kind = SETTABLE[item]
        if kind == "moment":
            block[item] = datetime.fromisoformat(str(entry.value))
        elif kind == "lines":
            block[item] = [str(line) for line in entry.value]
        else:
            block[item] = str(entry.value)


def initial_report_lateness(
    session: Session, incident: IncidentShape, playbook: Any, made_at: datetime
) -> dict[str, Any] | None:
    """The legal clock the initial report answers, when it was due before the report was made (迟报,
    CN-CAC-RPT-10): ``rule``, ``due_at`` and its ``basis``; None when the report is on time.

    The clocks are those of kind ``law`` met by a step that produces the initial report; a clock met
    counts at its met time, one still running at ``made_at``.
    """
    from engine.deadlines.tables import Deadline

    rule = next((r for r in playbook.documents if r.kind == "regulator_initial_report"), None)
    if rule is None:
        return None
    causes = {str(on) for on in rule.on}
    clocks = {d.id for d in playbook.deadlines if d.kind == "law" and causes & {str(m) for m in d.met_by}}
    if not clocks:
        return None
    dl = table_of(Deadline).c
    rows = session.execute(
        select(dl.rule_id, dl.due_at, dl.met_at, dl.basis)
        .where(
            dl.incident_id == incident.id,
            dl.rule_id.in_(sorted(clocks)),
            dl.status.not_in(("void", "waived")),
        )
        .order_by(dl.due_at)
    )
    for row in rows:
        if row.due_at < (row.met_at or made_at):
            basis = row.basis or {}
            return {
                "rule": row.rule_id,
                "due_at": row.due_at,
                "basis": str(basis.get("article") or basis.get("basis") or row.rule_id),
            }
    return None


@dataclass(frozen=True)
class ReportDataChange:
    """What ``breach incident report-data --set`` did."""

    incident_id: str
    changed: list[str]
    version: int


def set_report_data(
    store: Store,
    incident_id: str,
    values: dict[str, Any],
    *,
    actor: str,
    zone: str,
    at: datetime | None = None,
    reason: str | None = None,
) -> ReportDataChange:
    """Store the changed items of ``values`` (checked with :func:`check_values`), all or nothing.

    ``at`` is when they became known (checked like every entered step time: not in the future, not
    before discovery, more than 24 hours back only with ``reason``).
    """
    from engine.incidents.repository import flush_or_conflict, get_incident
    from engine.incidents.steptime import check_step_time

    now = utcnow()
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        if at is not None:
            check_step_time(at, now=now, discovered_at=incident.discovered_at, zone=zone, reason=reason)
        changed = record_report_data(
            session, incident, values, actor=actor, at=now, supplied_at=at, reason=reason
        )
        flush_or_conflict(session, incident_id)
        return ReportDataChange(incident_id, changed, incident.version)


def report_data_rows(store: Store, incident_id: str, locale: str) -> list[dict[str, Any]]:
    """Every settable item in report order: its label with the Art 7 item number, its value now (None:
    to follow, or from the notice content) and when it was supplied and by whom."""
    from engine.formal.report_items import item_label
    from engine.incidents.repository import get_incident
    from engine.notices.content import CONTENT
    from engine.notices.contexts import NoticeContent, localize

    with store.read() as session:
        get_incident(session, incident_id)
        supplied = current_report_data(session, incident_id)
        raw = session.execute(select(CONTENT.c.content).where(CONTENT.c.incident_id == incident_id)).scalar()
    narrative = NoticeContent.parse(raw or {}, "notice content").incident
    rows = []
    for item in SETTABLE:
        entry = supplied.get(item)
        said = localize(getattr(narrative, item, None), locale)
        if isinstance(said, datetime):
            said = said.isoformat()
        value, source = (entry.value, "report data") if entry else (said or None, "notice content")
        rows.append(
            {
                "item": item,
                "label": item_label(item, locale),
                "value": value,
                "source": source if value is not None else None,
                "supplied_at": None if entry is None else entry.supplied_at,
                "supplied_by": None if entry is None else entry.recorded_by,
            }
        )
    return rows
