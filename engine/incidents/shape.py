"""The one shape of an incident that every service and hook is written against, and the statuses.

An incident reaches code in two forms: the ORM row (:class:`engine.incidents.tables.Incident`), used by
services that change a few incidents, and the plain :class:`engine.incidents.rows.IncidentRecord` the hot
trigger path builds from a Core row. Both have exactly the attributes below, so code typed against
:class:`IncidentShape` works with either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = ["DeadlineStatus", "DeliveryStatus", "IncidentShape", "TaskStatus"]

TaskStatus = Literal["open", "done"]
"""A task is open from the moment its state (or its clock) opens it until it is done."""

DeadlineStatus = Literal["pending", "warned", "met", "missed", "waived", "void"]
"""A clock runs while ``pending`` or ``warned``; ``met``, ``waived`` and ``void`` end it; ``missed`` is
overdue and still owed."""

DeliveryStatus = Literal["pending", "sending", "sent", "failed", "in_doubt", "drill_skipped"]
"""One message to one recipient or channel, through the outbox."""


class IncidentShape(Protocol):
    """What every incident carries, in either of its two forms."""

    id: str
    title: str
    playbook_id: str
    playbook_version: int
    playbook_sha256: str
    state: str
    version: int
    drill: bool
    opened_by: str
    opened_at: datetime
    discovered_at: datetime
    closed_at: datetime | None
    facts: dict[str, Any]
    anchors: dict[str, Any]
    flags: dict[str, Any]
    records: dict[str, Any]
    assessment: dict[str, Any]
    event_count: int
    audit_head: str
