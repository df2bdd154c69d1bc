"""The deadline tables: legal clocks of incidents, and the escalation outbox with its deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from engine.store.db import json_column, json_list_column, time_column

__all__ = ["Deadline", "Escalation", "EscalationDelivery"]


# Every ORM update of a deadline checks and bumps this column, as for incidents; the checker's own
# compare-and-set UPDATEs bump it too, so a hook and a checker never overwrite each other's change.
_deadline_version = Column("version", Integer, nullable=False, default=1)


class Deadline(SQLModel, table=True):
    """A legal clock or internal target of an incident, with its due time computed once and stored.

    ``next_check_at`` is the next moment the checker must look at the row (a warning point or the due
    time); it is NULL once the deadline is met, waived or void, so the scan reads one index range.
    ``version`` rises with every change: the checker claims a row with ``UPDATE ... WHERE version=?``.
    """

    __tablename__ = "deadline"
    __table_args__ = (
        # Also serves every lookup by incident (its first column), so incident_id needs no index of its own.
        UniqueConstraint("incident_id", "rule_id", "subject"),
        # Missed deadlines leave the next_check_at range, so "what is overdue" finds them here. Partial:
        # inserting and updating the (many) pending rows never touches it.
        Index(
            "ix_deadline_missed",
            "due_at",
            sqlite_where=text("status = 'missed'"),
            postgresql_where=text("status = 'missed'"),
        ),
    )
    __mapper_args__ = {"version_id_col": _deadline_version}

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    rule_id: str = Field(max_length=64)
    subject: str = Field(default="", max_length=96)
    kind: str = Field(max_length=16)
    labels: dict[str, Any] = json_column()
    anchor: str | None = Field(default=None, max_length=96)
    start_at: datetime | None = time_column(nullable=True)
    duration: str | None = Field(default=None, max_length=64)
    calendar: str = Field(max_length=32)
    calendar_version: str = Field(default="", max_length=400)
    due_at: datetime = time_column()
    provisional: bool = False
    explain: list[str] = json_list_column()
    basis: dict[str, Any] = json_column()
    warnings: list[dict[str, Any]] = json_list_column()
    status: str = Field(default="pending", max_length=16)
    version: int = Field(default=1, sa_column=_deadline_version)
    alert_round: int = 1
    next_check_at: datetime | None = time_column(nullable=True, index=True)
    created_at: datetime = time_column()
    updated_at: datetime = time_column()
    met_at: datetime | None = time_column(nullable=True)
    met_by: str | None = Field(default=None, max_length=96)
    lateness_seconds: int | None = None
    missed_at: datetime | None = time_column(nullable=True)
    waived_at: datetime | None = time_column(nullable=True)
    waived_by: str | None = None
    waiver_reason: str | None = None
    waiver_approver: str | None = None
    void_reason: str | None = None
    # A missed deadline someone has taken on (``breach deadlines ack``): its alerts stop repeating and
    # climbing the levels; it stays missed and overdue until met or waived.
    acknowledged_at: datetime | None = time_column(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=220)


class Escalation(SQLModel, table=True):
    """The outbox: one warning or escalation of a deadline, at most one per (deadline, kind) ever.

    ``payload`` is rendered once when the row is written, so every delivery (and any re-send) carries
    the same content.
    """

    __tablename__ = "escalation"
    __table_args__ = (UniqueConstraint("deadline_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    deadline_id: int = Field(foreign_key="deadline.id", index=True)
    incident_id: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = json_column()
    created_at: datetime = time_column()


class EscalationDelivery(SQLModel, table=True):
    """One channel's delivery of an escalation: claimed under a lease, marked sent.

    See :mod:`engine.deadlines.escalation`.
    """

    __tablename__ = "escalation_delivery"
    __table_args__ = (
        UniqueConstraint("escalation_id", "channel"),
        Index("ix_escalation_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id")
    channel: str = Field(max_length=16)
    message_id: str = Field(max_length=200, unique=True)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = time_column(nullable=True)
    handed_off_at: datetime | None = time_column(nullable=True)
    in_doubt: bool = False
    next_attempt_at: datetime = time_column()
    sent_at: datetime | None = time_column(nullable=True)
    last_error: str | None = None
