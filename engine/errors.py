"""Errors the CLI turns into one clear line and an exit code, never a traceback.

Every error here carries a message written for the operator: what was wrong and what is allowed.
"""

from __future__ import annotations

__all__ = [
    "BadInput",
    "BreachError",
    "CheckFailed",
    "Conflict",
    "GuardFailed",
    "IncidentNotFound",
    "NotAllowed",
    "NotFound",
]


class BreachError(Exception):
    """Base of every error the operator should see as one line."""

    exit_code: int = 2


class BadInput(BreachError):
    """The input is malformed: a bad time, duration, file, value or option."""


class NotFound(BadInput):
    """An incident, playbook, trigger, task, rule or template that does not exist."""


class IncidentNotFound(NotFound):
    """An incident id that does not exist, worded the same by every command."""

    def __init__(self, incident_id: str) -> None:
        super().__init__(f"no incident {incident_id!r} (breach incident list shows them)")
        self.incident_id = incident_id


class NotAllowed(BadInput):
    """An operation that exists but is refused now (wrong state, missing role)."""


class GuardFailed(NotAllowed):
    """A transition whose guards do not hold; ``reasons`` lists each failing guard in words."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []


class Conflict(BreachError):
    """Someone else changed the incident meanwhile; nothing of this attempt was kept."""


class CheckFailed(BreachError):
    """A check ran and found something (overdue deadlines, a broken audit chain)."""

    exit_code = 1
