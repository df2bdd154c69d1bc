"""What every handler of one server shares: the workspace, its database, the zone and the locale."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from engine.shapes import Times
from engine.store.db import Store
from engine.web.readers import ReaderPool
from engine.workspace import Workspace

if TYPE_CHECKING:
    from starlette.requests import Request

    from engine.incidents.flow import TriggerInfo
    from engine.incidents.hooks import Hooks

__all__ = ["WebContext"]


@dataclass
class WebContext:
    """One workspace served: a writer store (only for the workspace log) and per-thread readers."""

    workspace: Workspace
    store: Store
    readers: ReaderPool
    locale: str = "zh-CN"
    times: Times = field(init=False)

    def __post_init__(self) -> None:
        self.times = Times(self.zone)

    @property
    def zone(self) -> str:
        """The workspace's time zone."""
        return self.workspace.timezone

    @cached_property
    def hooks(self) -> Hooks:
        """The workspace's hooks, which tell which triggers their guards allow."""
        from engine.wiring import hooks_for

        return hooks_for(self.workspace)

    def triggers(self, incident_id: str, request: Request) -> list[TriggerInfo]:
        """The incident's triggers as the token's holder would see them (no change is made)."""
        from engine.incidents.flow import list_triggers
        from engine.incidents.repository import get_incident

        check = request.scope.get("state", {}).get("token")
        actor = f"token:{check.name}" if check is not None and check.name else "web"
        with self.store.read() as session:
            incident = get_incident(session, incident_id)
            return list_triggers(session, incident, actor=actor, hooks=self.hooks)
