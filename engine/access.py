"""Who may take which step: operators' roles from config, and the log of refused attempts.

A playbook transition may require a role (only the DPO submits the regulator report) and a guard may
require the approver to hold one (only the DPO approves a waiver). The workspace's ``[roles]`` settings
map operators to roles. A workspace that maps nobody runs in single-operator mode: every operator holds
every role, and ``breach incident triggers`` says so.

An attempt refused for want of a role is recorded in the workspace log (``engine.incidents.worklog``), not in
the incident's trail: a refused step must leave the incident, its version and its events exactly as they were,
yet the attempt itself must not vanish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RoleMap"]


@dataclass(frozen=True)
class RoleMap:
    """Operators and their roles, from the ``[roles]`` table of the settings."""

    members: Mapping[str, frozenset[str]]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RoleMap:
        """Read ``[roles.members]`` (name = ["dpo", ...]); names compare case-insensitively."""
        table = settings.get("roles", {}).get("members", {}) or {}
        return cls({str(name).casefold(): frozenset(map(str, roles)) for name, roles in table.items()})

    @property
    def enforced(self) -> bool:
        """Whether any operator is mapped (otherwise single-operator mode: everyone holds every role)."""
        return bool(self.members)

    def holds(self, name: str, role: str) -> bool:
        """Whether ``name`` may act in ``role`` (always, in single-operator mode)."""
        roles = self.roles_of(name)
        return roles is None or role in roles

    def roles_of(self, name: str) -> frozenset[str] | None:
        """The roles of ``name``; None in single-operator mode, meaning "any role"."""
        if not self.enforced:
            return None
        return self.members.get(name.strip().casefold(), frozenset())
