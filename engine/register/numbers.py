"""Document numbers (文号): one register per prefix and year for the whole firm, so no two documents
share a number, whatever their kind or incident.

A number reads ``示例财税〔2026〕7号``: the ``[documents] number_prefix`` (else the incident id), the year
in 〔〕 and the serial within that register. The serial is the register's next one, checked against
every number issued (including those issued before registers were kept, which carry no register), and
the pair (register, serial) is unique in the database, so two steps racing for a number cannot both
take it: the second is refused and retried by its operator.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, insert, select
from sqlmodel import Session

from engine.incidents.shape import IncidentShape
from engine.register.table import ISSUE, next_issue_seq

__all__ = ["NumberTaken", "issue_numbers", "next_number", "register_of"]


def register_of(prefix: str, year: int) -> str:
    """The register a number belongs to: ``示例财税〔2026〕``."""
    return f"{prefix}〔{year}〕"


class NumberTaken:
    """Numbers handed out in the current transaction but not inserted yet (a step's several documents)."""

    def __init__(self) -> None:
        """Nothing handed out yet."""
        self.numbers: set[str] = set()
        self.serials: dict[str, int] = {}


def next_number(session: Session, prefix: str, year: int, taken: NumberTaken) -> tuple[str, str, int]:
    """The next free number of the register: ``(number, register, serial)``."""
    register = register_of(prefix, year)
    last = session.execute(
        select(func.max(ISSUE.c.serial)).where(ISSUE.c.number_register == register)
    ).scalar()
    serial = max(int(last or 0), taken.serials.get(register, 0)) + 1
    while True:
        number = f"{register}{serial}号"
        clash = (
            number in taken.numbers
            or session.execute(select(ISSUE.c.id).where(ISSUE.c.number == number).limit(1)).first()
        )
        if not clash:
            break
        serial += 1
    taken.numbers.add(number)
    taken.serials[register] = serial
    return number, register, serial


def issue_numbers(
    session: Session,
    incident: IncidentShape,
    kind: str,
    subjects: list[str],
    *,
    prefix: str,
    day: date,
    at: datetime,
    actor: str,
) -> dict[str, str]:
    """The number of each ``subjects`` document of ``kind`` (a client letter per company): found in the
    register, or issued now (inserted in the caller's transaction)."""
    rows = session.execute(
        select(ISSUE.c.subject, ISSUE.c.number).where(
            ISSUE.c.incident_id == incident.id, ISSUE.c.kind == kind, ISSUE.c.subject.in_(subjects)
        )
    ).all()
    found = {str(subject): str(number) for subject, number in rows}
    taken = NumberTaken()
    seq = next_issue_seq(session, incident.id)
    for subject in subjects:
        if subject in found:
            continue
        number, register, serial = next_number(session, prefix, day.year, taken)
        session.execute(
            insert(ISSUE).values(
                incident_id=incident.id,
                kind=kind,
                subject=subject,
                seq=seq,
                number=number,
                number_register=register,
                serial=serial,
                issued_on=day,
                stated={},
                created_at=at,
                created_by=actor,
            )
        )
        seq += 1
        found[subject] = number
    return found
