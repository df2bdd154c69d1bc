"""Finding a caller among the people of every incident: "was I affected, and was I told?".

Reads through the read model (``engine.store.readmodel.Reader``) and answers with masked values only:
the operator on the phone confirms what the caller says, the screen never shows a whole phone number,
e-mail address or name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.documents.filters import mask_phone
from engine.errors import BadInput
from engine.shapes.times import Times, utc

__all__ = ["FOUND_LIMIT", "Match", "find_people", "mask_email", "mask_name"]

FOUND_LIMIT = 50
"""At most this many matches: a search is for one caller, not a way to list everyone."""
_DIGITS = re.compile(r"\D")


def mask_name(name: str) -> str:
    """张三丰 as 张**; Alice Smith as A**********: the first character and the length."""
    text = name.strip()
    return f"{text[:1]}{'*' * (len(text) - 1)}" if text else ""


def mask_email(email: str | None) -> str:
    """zhang.san@example.cn as z***@example.cn."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class Match:
    """One person (or client company) of one incident who matches, and what was sent to them."""

    incident_id: str
    incident_title: str
    customer_id: str
    type: str
    name: str
    phone: str
    email: str
    channel: str
    notices: list[dict[str, Any]]

    @property
    def notified(self) -> bool:
        """Whether a notice reached them (sent, or recorded as sent outside breach)."""
        return any(n["status"] == "sent" for n in self.notices)

    def to_json(self) -> dict[str, Any]:
        """As ``breach people find --json`` prints it (masked)."""
        return {
            "incident_id": self.incident_id,
            "incident_title": self.incident_title,
            "customer_id": self.customer_id,
            "type": self.type,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "channel": self.channel,
            "notified": self.notified,
            "notices": self.notices,
        }


def find_people(reader: Any, text: str, zone: str) -> list[Match]:
    """Everyone whose customer id, name, phone or e-mail matches ``text``, across incidents.

    A customer id, a phone number (8 digits or more, any spacing or +86) and an e-mail address must
    match whole; a name matches whole or by a part of 2 characters or more.

    :raises BadInput: for a search shorter than 2 characters.
    """
    query = text.strip()
    if len(query) < 2:
        raise BadInput("people find needs at least 2 characters: a name, phone, e-mail or customer id")
    digits = _DIGITS.sub("", query)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    clauses = ["p.customer_id = ?", "LOWER(p.email) = ?", "p.name = ?", "p.name LIKE ?"]
    params: list[Any] = [query, query.lower(), query, f"%{query}%"]
    sql = (
        "SELECT p.id, p.incident_id, i.title, p.customer_id, p.type, p.name, p.phone, p.email, p.channel "
        "FROM person p JOIN incident i ON i.id = p.incident_id WHERE "
        + " OR ".join(clauses)
        + " ORDER BY p.incident_id DESC, p.id"
    )
    rows = reader.rows(sql, tuple(params))
    if len(digits) >= 8:
        # Phone numbers are stored as given: compare their digits, not their spelling.
        wanted = reader.rows(
            "SELECT p.id, p.incident_id, i.title, p.customer_id, p.type, p.name, p.phone, p.email, p.channel "
            "FROM person p JOIN incident i ON i.id = p.incident_id WHERE p.phone LIKE ?",
            (f"%{digits[-4:]}",),
        )
        seen = {r["id"] for r in rows}
        rows += [
            r for r in wanted if r["id"] not in seen and _DIGITS.sub("", r["phone"] or "").endswith(digits)
        ]
    # Newest incident first, then in file order, whichever way each row was found.
    rows.sort(key=lambda r: r["id"])
    rows.sort(key=lambda r: r["incident_id"], reverse=True)
    rows = rows[:FOUND_LIMIT]
    return [_match(reader, r, Times(zone)) for r in rows]


def _match(reader: Any, r: dict[str, Any], times: Times) -> Match:
    sent = reader.rows(
        "SELECT kind, channel, status, sent_at, version FROM delivery WHERE person_id = ? ORDER BY id",
        (r["id"],),
    )
    notices = [
        {
            "kind": d["kind"],
            "channel": d["channel"],
            "version": d["version"],
            "status": d["status"],
            "sent_at": times.iso(utc(d["sent_at"])) if d["sent_at"] else None,
        }
        for d in sent
    ]
    person = r["type"] == "person"
    return Match(
        incident_id=r["incident_id"],
        incident_title=r["title"],
        customer_id=r["customer_id"],
        type=r["type"],
        name=mask_name(r["name"]) if person else r["name"],
        phone=mask_phone(r["phone"]) if r["phone"] else "",
        email=mask_email(r["email"]),
        channel=r["channel"],
        notices=notices,
    )
