"""The delivery record: one row per recipient, channel and content version of an emailed notice.

A ``delivery`` row is the outbox entry of one email (see :mod:`engine.notices.sender` for how rows are
claimed, sent exactly once and recovered after a crash). Operators' records of notices sent outside
breach (an SMS gateway, post, an announcement) and their resolutions of deliveries in doubt are kept
on the same row (:mod:`engine.notices.recorded`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Index, Integer, Table, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.store.db import UTCDateTime, table_of

__all__ = ["DELIVERY", "DONE", "EMAILED", "TASKS", "Delivery"]

# The playbook task each notice kind fulfils once every recipient of it has been notified.
TASKS = {"customer_notice": "notify_individuals", "client_notice": "notify_client_companies"}
# Kinds delivered one per recipient by email: the notices, and correction notices (version 2 onward).
EMAILED = (*TASKS, "correction_notice")
DONE = ("sent", "drill_skipped")


class Delivery(SQLModel, table=True):
    """One email of a notice to one recipient: claimed under a lease, marked sent once accepted."""

    __tablename__ = "delivery"
    __table_args__ = (
        # One delivery per recipient, channel and content version (a correction is version 2 onward).
        UniqueConstraint("incident_id", "person_id", "channel", "version"),
        Index("ix_delivery_incident_status", "incident_id", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    person_id: int = Field(foreign_key="person.id")
    document_id: int = Field(foreign_key="document.id")
    kind: str = Field(max_length=48)
    channel: str = Field(default="email", max_length=8)
    version: int = Field(default=1, sa_column=Column(Integer(), nullable=False, server_default="1"))
    message_id: str = Field(max_length=200, unique=True)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    handed_off_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    in_doubt: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    sent_to: str | None = Field(default=None, max_length=16)  # "recipient" or "drill"
    sent_sha256: str | None = Field(default=None, max_length=64)
    last_error: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Set when an operator recorded the delivery (SMS gateway, post, announcement) or resolved one in
    # doubt: their evidence (a gateway batch id, a tracking number, a mail-log line) and their name.
    reference: str | None = Field(default=None, max_length=200)
    recorded_by: str | None = Field(default=None, max_length=64)
    resolution: str | None = Field(default=None, max_length=16)  # "delivered" or "resend"


DELIVERY: Table = table_of(Delivery)
