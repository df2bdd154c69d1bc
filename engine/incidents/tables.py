"""The incident tables: incidents, their tasks and audit events, the playbook texts they were opened with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from engine.store.db import json_column, time_column

__all__ = ["Event", "Incident", "IncidentCounter", "PlaybookSnapshot", "Task"]


class PlaybookSnapshot(SQLModel, table=True):
    """The exact playbook text an incident was opened with, so later edits never change its rules."""

    __tablename__ = "playbook_snapshot"

    sha256: str = Field(primary_key=True, max_length=64)
    playbook_id: str = Field(index=True, max_length=64)
    version: int
    origin: str
    source: str
    # Titles and labels as JSON, so read commands can show them without parsing YAML.
    summary: dict[str, Any] = json_column()
    stored_at: datetime = time_column()


# The ORM checks and bumps this column on every UPDATE of an incident (``UPDATE ... WHERE version = ?``),
# so two operators acting on the same version cannot both win.
_incident_version = Column("version", Integer, nullable=False, default=1)


class Incident(SQLModel, table=True):
    """One leak being handled; ``version`` rises with every accepted change (optimistic locking)."""

    __tablename__ = "incident"
    __mapper_args__ = {"version_id_col": _incident_version}

    id: str = Field(primary_key=True, max_length=32)
    title: str
    playbook_id: str = Field(max_length=64)
    playbook_version: int
    playbook_sha256: str = Field(foreign_key="playbook_snapshot.sha256", max_length=64)
    state: str = Field(max_length=64, index=True)
    version: int = Field(default=1, sa_column=_incident_version)
    drill: bool = False
    opened_by: str
    opened_at: datetime = time_column()
    discovered_at: datetime = time_column()
    closed_at: datetime | None = time_column(nullable=True)
    facts: dict[str, Any] = json_column()
    anchors: dict[str, Any] = json_column()
    flags: dict[str, Any] = json_column()
    records: dict[str, Any] = json_column()
    assessment: dict[str, Any] = json_column()
    event_count: int = 0
    audit_head: str = Field(default="", max_length=64)


class Task(SQLModel, table=True):
    """A task of a state; entering the state (again) opens it."""

    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    key: str = Field(max_length=64)
    state_id: str = Field(max_length=64)
    required: bool = True
    status: str = Field(default="open", max_length=16)
    opened_at: datetime = time_column()
    done_at: datetime | None = time_column(nullable=True)
    done_by: str | None = None
    note: str | None = None


class Event(SQLModel, table=True):
    """An audit event; ``hash`` chains it to the previous event of the same incident.

    ``at`` is when it was recorded (the chain's order); ``occurred_at``, when set, is when the step
    really happened outside breach (``--at``).
    """

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("incident_id", "seq"),
        Index("ix_event_incident_seq", "incident_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    seq: int
    at: datetime = time_column()
    actor: str
    kind: str = Field(max_length=32)
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    inputs: dict[str, Any] = json_column()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    occurred_at: datetime | None = time_column(nullable=True)


class IncidentCounter(SQLModel, table=True):
    """The last incident number used per year, for readable ids such as INC-2026-0001."""

    __tablename__ = "incident_counter"

    year: int = Field(primary_key=True)
    last: int = 0
