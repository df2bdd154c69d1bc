"""The table of approval requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from engine.store.db import json_column, time_column

__all__ = ["ApprovalRequest"]


class ApprovalRequest(SQLModel, table=True):
    """A step waiting for its approver: what it is, who asked, who must approve, until when.

    ``kind`` is ``trigger`` (``step`` names the trigger) or ``deadline_waiver`` (``step`` names the
    rule); ``detail`` holds the reason, inputs and record the step is taken with. ``status`` moves from
    ``pending`` to ``approved`` or ``expired``, never back.
    """

    __tablename__ = "approval_request"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=16)
    step: str = Field(max_length=64)
    detail: dict[str, Any] = json_column()
    approver: str = Field(max_length=100)
    role: str = Field(default="", max_length=64)
    requested_by: str = Field(max_length=220)
    requested_at: datetime = time_column()
    expires_at: datetime = time_column()
    status: str = Field(default="pending", max_length=16)
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = time_column(nullable=True)
