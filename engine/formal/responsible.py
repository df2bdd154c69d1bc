"""Accountability records of an incident: the responsible persons, and the register of formal documents.

``responsible_person`` holds each employee found responsible (direct or indirect), the sanction decided
(警告, 记过 or 降职) and any compensation; the internal bulletin lists them and each gets a disciplinary
decision. They are recorded only while the incident is in the state whose step issues the decisions,
each with an audit event. The register of documents issued (``formal_issue``, their numbers) lives in
:mod:`engine.register`, below both the formal documents and the notices that number client letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Table,
    UniqueConstraint,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, Session, SQLModel

from engine.errors import BadInput, NotAllowed
from engine.incidents.audit import next_event
from engine.incidents.rows import insert_event, load_incident, load_tasks, write_incident
from engine.register.table import ISSUE, FormalIssue
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "ISSUE",
    "RESPONSIBILITY",
    "RESPONSIBLE",
    "SANCTION",
    "FormalIssue",
    "Recorded",
    "ResponsiblePerson",
    "accountability_states",
    "compensation_text",
    "list_responsible",
    "parse_amount",
    "record_responsible",
    "word",
]

# Codes stored, with the words documents print (zh-CN, en); the Chinese words are accepted as input too.
RESPONSIBILITY: dict[str, tuple[str, str]] = {
    "direct": ("直接责任", "direct"),
    "indirect": ("间接责任", "indirect"),
}
SANCTION: dict[str, tuple[str, str]] = {
    "warning": ("警告", "warning"),
    "demerit": ("记过", "demerit"),
    "demotion": ("降职", "demotion"),
}
_ALIASES = {"直接": "direct", "间接": "indirect"}
_MAX_TEXT = {"name": 200, "department": 200, "position": 200, "facts": 4000, "rule": 500, "basis": 1000}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_JSON = JSON().with_variant(JSONB(), "postgresql")


class ResponsiblePerson(SQLModel, table=True):
    """An employee found responsible for the incident, with the sanction decided (no customer data)."""

    __tablename__ = "responsible_person"
    __table_args__ = (UniqueConstraint("incident_id", "name", "department", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    department: str = Field(max_length=200)
    position: str = Field(max_length=200)
    responsibility: str = Field(max_length=16)
    sanction: str = Field(max_length=16)
    # Whole fen (0.01 RMB): money is never a float, and an integer column is exact on every database.
    compensation_fen: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    compensation_basis: str | None = None
    facts: str | None = None
    rules: list[str] = Field(default_factory=list, sa_column=Column(_JSON, nullable=False))
    # A draft decision may lack its facts or the rule broken; it is marked 草稿 on every page.
    draft: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False, server_default=false()))
    recorded_by: str
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


RESPONSIBLE: Table = table_of(ResponsiblePerson)


def word(table: dict[str, tuple[str, str]], code: str, locale: str) -> str:
    """The printed word for a code in ``locale`` (Chinese for zh-*, else English)."""
    zh, en = table.get(code, (code, code))
    return zh if locale.startswith("zh") else en


def _code(value: str, table: dict[str, tuple[str, str]], option: str) -> str:
    """A code from its name or its Chinese word (``警告`` or ``warning``)."""
    given = value.strip()
    for code, (zh, _en) in table.items():
        if given.lower() == code or given in (zh, zh.removesuffix("责任")):
            return code
    if given in _ALIASES and _ALIASES[given] in table:
        return _ALIASES[given]
    choices = ", ".join(f"{code} ({zh})" for code, (zh, _en) in table.items())
    raise BadInput(f"{option} {value!r} is not one of {choices}")


def _text(value: str | None, option: str, key: str, *, required: bool) -> str | None:
    """A trimmed text of bounded length without control characters; None when not given."""
    text = (value or "").strip()
    if not text:
        if required:
            raise BadInput(f"{option} is required (it is printed on the disciplinary decision)")
        return None
    if len(text) > _MAX_TEXT[key]:
        raise BadInput(f"{option} is longer than {_MAX_TEXT[key]} characters")
    if _CONTROL.search(text):
        raise BadInput(f"{option} contains control characters")
    return text


def parse_amount(value: str) -> int:
    """An RMB amount such as ``1500``, ``1,500.50`` or ``¥800`` as whole fen.

    :raises BadInput: for anything but a positive amount with at most two decimals.
    """
    cleaned = value.strip().replace(",", "").removeprefix("¥").removeprefix("￥").removesuffix("元").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise BadInput(f"--compensation {value!r} is not an amount in RMB, e.g. 1500 or 1500.50") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise BadInput(f"--compensation {value!r}: give a positive amount with at most two decimals")
    if amount >= 10**10:
        raise BadInput(f"--compensation {value!r} is implausibly large")
    return int(amount * 100)


def compensation_text(fen: int | None, basis: str | None, locale: str) -> str | None:
    """``人民币1,500.00元（依据：…）`` / ``RMB 1,500.00 (basis: …)``, or None without compensation."""
    if fen is None:
        return None
    amount = f"{Decimal(fen) / 100:,.2f}"
    if locale.startswith("zh"):
        return f"人民币{amount}元" + (f"（依据：{basis}）" if basis else "")
    return f"RMB {amount}" + (f" (basis: {basis})" if basis else "")


def accountability_states(playbook: Any) -> dict[str, list[str]]:
    """The states in which responsible persons are recorded, each with the tasks that issue decisions:
    those of the playbook's disciplinary-decision rule (an ``accountability`` state when it has none)."""
    found: dict[str, list[str]] = {}
    for rule in playbook.documents:
        if rule.kind != "disciplinary_decision":
            continue
        for on in rule.on:
            if on.task:
                found.setdefault(playbook.task(on.task)[0].id, []).append(on.task)
            elif on.state:
                found.setdefault(on.state, [])
            else:
                for t in playbook.transitions:
                    if t.trigger == on.trigger:
                        for source in t.source:
                            found.setdefault(source, [])
    if not found and any(s.id == "accountability" for s in playbook.states):
        found["accountability"] = []
    return found


@dataclass(frozen=True)
class Recorded:
    """A responsible person just recorded, and the decision tasks already done (their decision is not
    produced by itself then: ``breach documents render`` does it)."""

    person: dict[str, Any]
    decisions_done: list[str]


def record_responsible(
    store: Store,
    incident_id: str,
    *,
    name: str,
    department: str,
    position: str,
    responsibility: str,
    sanction: str,
    actor: str,
    compensation: str | None = None,
    compensation_basis: str | None = None,
    facts: str | None = None,
    rules: list[str] | None = None,
    draft: bool = False,
) -> Recorded:
    """Check and record one responsible person, with an audit event, while accountability is open.

    A decision states the facts found and the rule broken; without them the person is recorded only as
    a ``draft``, whose decision says 草稿 on every page. Recording a draft person again (same name,
    department and position) replaces the draft, so the decision can be completed.

    :raises BadInput: a value that is missing or malformed (nothing is written).
    :raises NotAllowed: the incident is not in the state where persons are recorded, or the person
        is recorded already (and not as a draft).
    """
    from engine.incidents.repository import incident_playbook

    values: dict[str, Any] = {
        "name": _text(name, "--name", "name", required=True),
        "department": _text(department, "--department", "department", required=True),
        "position": _text(position, "--position", "position", required=True),
        "responsibility": _code(responsibility, RESPONSIBILITY, "--responsibility"),
        "sanction": _code(sanction, SANCTION, "--sanction"),
        "facts": _text(facts, "--facts", "facts", required=False),
        "rules": [r for r in (_text(x, "--rule", "rule", required=False) for x in rules or []) if r],
        "compensation_basis": _text(compensation_basis, "--compensation-basis", "basis", required=False),
        "compensation_fen": parse_amount(compensation) if compensation and compensation.strip() else None,
    }
    if len(values["rules"]) > 20:
        raise BadInput("at most 20 --rule values")
    lacking = [o for o, v in (("--facts", values["facts"]), ("--rule", values["rules"])) if not v]
    if lacking and not draft:
        raise BadInput(
            f"a disciplinary decision needs {' and '.join(lacking)} (the facts found and the rule broken); "
            "give them, or record the person with --draft: the decision then says 草稿 on every page"
        )
    values["draft"] = bool(draft)
    if (values["compensation_fen"] is None) != (values["compensation_basis"] is None):
        raise BadInput(
            "--compensation and --compensation-basis go together (the amount and the rule allowing it)"
        )
    now = utcnow()
    with store.write() as session:
        incident = load_incident(session, incident_id)
        playbook = incident_playbook(session, incident).playbook
        states = accountability_states(playbook)
        if incident.state not in states:
            where = ", ".join(f"{s} ({playbook.state(s).label('zh-CN')})" for s in states) or "no state"
            raise NotAllowed(
                f"{incident_id} is in {incident.state} ({playbook.state(incident.state).label('zh-CN')}); "
                f"responsible persons are recorded in {where}, where their disciplinary decisions are issued"
            )
        same_row = session.execute(
            select(RESPONSIBLE.c.id, RESPONSIBLE.c.draft).where(
                RESPONSIBLE.c.incident_id == incident_id,
                RESPONSIBLE.c.name == values["name"],
                RESPONSIBLE.c.department == values["department"],
                RESPONSIBLE.c.position == values["position"],
            )
        ).first()
        if same_row is not None and not same_row.draft:
            who = f"{values['name']} ({values['department']}, {values['position']})"
            raise NotAllowed(f"{who} is recorded already as #{same_row.id}")
        row = {"incident_id": incident_id, **values, "recorded_by": actor, "recorded_at": now}
        if same_row is None:
            new_id = session.execute(
                insert(RESPONSIBLE).values(**row).returning(RESPONSIBLE.c.id)
            ).scalar_one()
        else:  # the draft is completed (or redrafted): the same person, the same decision number
            new_id = same_row.id
            session.execute(update(RESPONSIBLE).where(RESPONSIBLE.c.id == new_id).values(**row))
        shown = {k: v for k, v in values.items() if v not in (None, [], False)}
        if same_row is not None:
            shown["replaces_draft"] = True
        event = next_event(
            incident,
            kind="responsible_recorded",
            actor=actor,
            at=now,
            from_state=incident.state,
            to_state=incident.state,
            inputs={"id": new_id, **shown},
        )
        insert_event(session, event)
        write_incident(session, incident, incident.version)
        tasks = load_tasks(session, incident_id)
        done = [t for t in states[incident.state] if t in tasks and tasks[t].status == "done"]
    return Recorded({"id": new_id, **row}, done)


def list_responsible(session: Session, incident_id: str) -> list[dict[str, Any]]:
    """The incident's responsible persons in the order they were recorded."""
    rows = session.execute(
        select(RESPONSIBLE).where(RESPONSIBLE.c.incident_id == incident_id).order_by(RESPONSIBLE.c.id)
    )
    return [dict(r._mapping) for r in rows]
