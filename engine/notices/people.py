"""The people a leak affects: persons and client companies, imported from a CSV file per incident.

An import is all or nothing: every row is checked first (each bad row reported with its line number),
and only a clean file is written, in one transaction, with an audit event that carries counts and the
file's hash but no personal data. Identifiers the file may carry (ID number, bank account) are masked
on the way in: notices need only the masked form, so the raw number is never stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Index, Table, UniqueConstraint, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from engine.errors import BadInput, NotAllowed
from engine.incidents.audit import append_event
from engine.incidents.hooks import NO_HOOKS, Hooks, Step
from engine.incidents.repository import flush_or_conflict, get_incident, incident_playbook
from engine.notices.people_cells import cell_text, free_text, masked_identifiers, residence, template_locale
from engine.notices.people_csv import MISMATCH, decode, header_problems, rows
from engine.notices.people_csv import Rejected as ImportRejected
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "CATEGORY_LABELS",
    "CHANNELS",
    "COLUMNS",
    "ImportRejected",
    "ImportReport",
    "Person",
    "import_people",
]

CHANNELS = ("email", "sms", "post", "public")
TYPES = ("person", "company")
# The codes a recipient list may name, with the words a notice prints for them (zh-CN, en). The
# first eight are a person's data; the last two are a client company's own records.
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "ID number"),
    "bank_account": ("银行账号", "bank account number"),
    "phone": ("手机号码", "phone number"),
    "salary": ("工资收入", "salary"),
    "tax": ("纳税信息", "tax records"),
    "address": ("住址", "home address"),
    "email": ("电子邮箱", "email address"),
    "registration": ("企业登记信息", "company registration data"),
    "tax_filing": ("纳税申报资料", "tax filings"),
}
REQUIRED_COLUMNS = ("customer_id", "name", "channel", "categories")
COLUMNS = (
    *REQUIRED_COLUMNS,
    "type",
    "email",
    "phone",
    "locale",
    "employer",
    "employer_name",
    "department",
    "contact_name",
    "contact_title",
    "id_number",
    "bank_account",
    "address",
    "people_count",
    "country",
)
_CHUNK = 1000  # rows per INSERT statement: bounded memory, few round trips
# A customer id is part of every file name: letters and digits with single "-" or "." inside survive
# file-name cleaning unchanged and contain no "_", so no two ids can ever give the same file name.
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


class Person(SQLModel, table=True):
    """One recipient of an incident: a person (``type`` person) or a client company (``company``).

    This table is the only place personal data lives; logs and audit events carry counts and hashes.
    """

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("incident_id", "customer_id"),
        # Rendering walks one incident's people in id order, a batch at a time (keyset pagination).
        Index("ix_person_incident_type_id", "incident_id", "type", "id"),
        # A client letter counts the people naming the company as their employer.
        Index("ix_person_incident_employer", "incident_id", "employer"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    customer_id: str = Field(max_length=64)
    type: str = Field(default="person", max_length=8)
    name: str
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    locale: str = Field(max_length=16)
    channel: str = Field(max_length=8)
    categories: str = ""  # codes joined by ";", in the order the file gave them
    employer: str | None = Field(default=None, max_length=64)  # a company row's customer_id
    country: str | None = Field(default=None, max_length=6)  # ISO 3166 code: whose clocks the person is under
    employer_name: str | None = None
    department: str | None = None
    contact_name: str | None = None
    contact_title: str | None = None
    address: str | None = None  # the postal address a letter goes to (required for the post channel)
    people_count: int | None = None  # a company row: its people affected, when they are not listed
    identifiers: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    imported_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    import_sha256: str = Field(max_length=64)


PERSON: Table = table_of(Person)


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote."""

    incident_id: str
    persons: int
    companies: int
    sha256: str


@dataclass
class _Known:
    """What pass one learns and pass two needs: ids seen, companies and their names."""

    ids: dict[str, int] = field(default_factory=dict)  # customer_id -> line (0: already imported)
    companies: dict[str, str] = field(default_factory=dict)  # customer_id -> name


def _check_row(
    row: dict[str, str | None], line: int, known: _Known, locales: tuple[str, ...], default_locale: str
) -> tuple[dict[str, Any], list[str]]:
    """One row as the table stores it, and everything wrong with it (empty when it is clean)."""
    problems: list[str] = []
    if MISMATCH in row:
        problems.append("the number of cells differs from the header")
    customer_id = cell_text(row, "customer_id")
    if not customer_id:
        problems.append("customer_id is empty")
    elif len(customer_id) > 64 or not _CUSTOMER_ID.fullmatch(customer_id):
        problems.append(
            f"customer_id {customer_id[:70]!r} must be at most 64 letters and digits, "
            "with single '-' or '.' between them"
        )
    elif customer_id in known.ids:
        first = known.ids[customer_id]
        problems.append(
            f"duplicate customer_id {customer_id} ("
            + (f"first on line {first})" if first else "already imported for this incident)")
        )
    else:
        known.ids[customer_id] = line
    kind = cell_text(row, "type").lower() or "person"
    if kind not in TYPES:
        problems.append(f"type {kind!r} is not one of: {', '.join(TYPES)}")
    name = free_text(row, "name", problems, limit=1000)
    if name is None:
        problems.append("name is empty")
    channel = cell_text(row, "channel").lower()
    allowed = CHANNELS if kind != "company" else ("email", "post")
    if channel not in allowed:
        problems.append(f"channel {channel!r} is not one of: {', '.join(allowed)}")
    email = cell_text(row, "email") or None
    if email is not None and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        problems.append(f"email {email[:80]!r} is not a valid address")
    elif email is None and channel == "email":
        problems.append("channel is email but email is empty")
    phone = re.sub(r"[\s()-]", "", cell_text(row, "phone")) or None
    if phone is not None and not re.fullmatch(r"\+?\d{5,20}", phone):
        problems.append(f"phone {cell_text(row, 'phone')[:40]!r} is not a phone number")
    elif phone is None and channel == "sms":
        problems.append("channel is sms but phone is empty")
    locale = template_locale(cell_text(row, "locale"), locales, default_locale)
    if locale is None:
        problems.append(f"locale {cell_text(row, 'locale')[:20]!r} is not one of: {', '.join(locales)}")
    codes = list(
        dict.fromkeys(c.strip().lower() for c in cell_text(row, "categories").split(";") if c.strip())
    )
    unknown = [c for c in codes if c not in CATEGORY_LABELS]
    if unknown:
        problems.append(f"unknown category {', '.join(unknown)} (known: {', '.join(CATEGORY_LABELS)})")
    elif not codes and kind == "person":
        problems.append("categories is empty: name what leaked, e.g. name;id_number")
    address = free_text(row, "address", problems, limit=500)
    if address is None and channel == "post":
        problems.append("channel is post but address is empty (a letter needs the postal address)")
    employer = cell_text(row, "employer") or None
    contact_name = free_text(row, "contact_name", problems)
    people_count = None
    count_text = cell_text(row, "people_count")
    if count_text:
        if kind != "company":
            problems.append("people_count is for a company row (how many of its people are affected)")
        elif not count_text.isdigit() or len(count_text) > 9:
            problems.append(f"people_count {count_text[:20]!r} is not a whole number")
        else:
            people_count = int(count_text)
    if kind == "company":
        if contact_name is None:
            problems.append("a company row needs contact_name (its legal representative or contact)")
        if employer:
            problems.append("a company row has no employer")
    elif employer is not None and employer not in known.companies:
        problems.append(
            f"employer {employer[:70]!r} is not the customer_id of a company in this file or already imported"
        )
    values = {
        "customer_id": customer_id,
        "type": kind,
        "name": name,
        "email": email,
        "phone": phone,
        "locale": locale,
        "channel": channel,
        "categories": ";".join(codes),
        "employer": employer,
        "employer_name": free_text(row, "employer_name", problems) or known.companies.get(employer or ""),
        "department": free_text(row, "department", problems),
        "contact_name": contact_name,
        "contact_title": free_text(row, "contact_title", problems),
        "address": address,
        "people_count": people_count,
        "identifiers": masked_identifiers(row, problems),
        "country": residence(row, problems),
    }
    return values, problems


def import_people(
    store: Store,
    incident_id: str,
    path: Path,
    *,
    actor: str,
    locales: tuple[str, ...],
    default_locale: str,
    hooks: Hooks = NO_HOOKS,
) -> ImportReport:
    """Import the recipients in ``path`` for ``incident_id``: every row or none.

    People with a ``country`` add to the incident's ``residents`` counts in the same transaction, and
    ``hooks`` (the deadlines) run, so the clocks of the places they live in start with the import.

    :raises ImportRejected: with every bad row (line and reason) when anything is wrong.
    """
    from engine.files import read_bytes

    data = read_bytes(path, what="people file", limit_key="people_file_bytes")
    digest = hashlib.sha256(data).hexdigest()
    text = decode(data)
    problems = header_problems(text, REQUIRED_COLUMNS, COLUMNS)
    if problems:
        raise ImportRejected(f"{path.name}: bad header; nothing imported", problems)
    known = _Known()
    with store.read() as session:
        incident = get_incident(session, incident_id)
        if incident.closed_at is not None:
            raise NotAllowed(f"{incident_id} is closed; people can no longer be added")
        for customer_id, kind, name in session.execute(
            select(PERSON.c.customer_id, PERSON.c.type, PERSON.c.name).where(
                PERSON.c.incident_id == incident_id
            )
        ):
            known.ids[customer_id] = 0
            if kind == "company":
                known.companies[customer_id] = name
    # Companies first, so that a person may name an employer listed further down.
    for _line, row in rows(text):
        if (
            cell_text(row, "type").lower() == "company"
            and cell_text(row, "customer_id")
            and cell_text(row, "name")
        ):
            known.companies.setdefault(cell_text(row, "customer_id"), cell_text(row, "name"))
    # Then every row, keeping only what later rows need (ids seen).
    count = 0
    for line, row in rows(text):
        count += 1
        problems += [f"line {line}: {p}" for p in _check_row(row, line, known, locales, default_locale)[1]]
    if not count and not problems:
        problems.append("line 2: no data rows below the header")
    if problems:
        raise ImportRejected(f"{path.name}: {len(problems)} problem(s); nothing imported", problems)
    return _write(store, incident_id, text, known, digest, actor, (locales, default_locale), hooks)


def _write(
    store: Store,
    incident_id: str,
    text: str,
    known: _Known,
    digest: str,
    actor: str,
    locale_choice: tuple[tuple[str, ...], str],
    hooks: Hooks,
) -> ImportReport:
    """Pass two: the clean rows, in chunks, in one transaction with the audit event."""
    locales, default_locale = locale_choice
    now = utcnow()
    counts = {"person": 0, "company": 0}
    residents: dict[str, int] = {}
    seen = _Known(companies=dict(known.companies), ids={k: v for k, v in known.ids.items() if v == 0})
    try:
        with store.write() as session:
            chunk: list[dict[str, Any]] = []
            for line, row in rows(text):
                values, _ = _check_row(row, line, seen, locales, default_locale)
                counts[values["type"]] += 1
                if "country" not in row:
                    # A file without the column writes none, so it imports into a database of any
                    # release since 0004 (upgrades run before, not during, an operator's work).
                    values.pop("country")
                if values.get("country") and values["type"] == "person":
                    residents[values["country"]] = residents.get(values["country"], 0) + 1
                chunk.append(
                    {**values, "incident_id": incident_id, "imported_at": now, "import_sha256": digest}
                )
                if len(chunk) >= _CHUNK:
                    session.execute(insert(PERSON), chunk)
                    chunk = []
            if chunk:
                session.execute(insert(PERSON), chunk)
            _audit(session, incident_id, actor, now, counts, digest, residents, hooks)
    except IntegrityError:
        raise BadInput(
            f"some of these customer ids were imported for {incident_id} meanwhile by someone "
            "else; nothing imported, run the import again to see which"
        ) from None
    return ImportReport(incident_id, counts["person"], counts["company"], digest)


def _audit(
    session: Session,
    incident_id: str,
    actor: str,
    at: datetime,
    counts: dict[str, int],
    digest: str,
    residents: dict[str, int],
    hooks: Hooks,
) -> None:
    """The import on the incident's trail: counts and the file's hash, never a name or an address."""
    from engine.legal.facts import facts_to_dict, merge_facts

    incident = get_incident(session, incident_id)
    if residents:
        facts = dict(incident.facts or {})
        merged = dict(facts.get("residents") or {})
        for code, number in residents.items():
            merged[code] = merged.get(code, 0) + number
        incident.facts = facts_to_dict(merge_facts(facts, {"residents": merged}))
    append_event(
        session,
        incident,
        kind="people_imported",
        actor=actor,
        at=at,
        from_state=incident.state,
        to_state=incident.state,
        inputs={
            "count": counts["person"] + counts["company"],
            "persons": counts["person"],
            "companies": counts["company"],
            "file_sha256": digest,
            **({"residents": dict(sorted(residents.items()))} if residents else {}),
        },
    )
    if residents:
        step = Step(session, incident, incident_playbook(session, incident), at, "people_imported", actor)
        hooks.run_after_change(step)
    flush_or_conflict(session, incident_id)
