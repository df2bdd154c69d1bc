"""What extra work sees of a step: one typed object, handed to every hook inside the step's transaction.

The flow knows nothing of deadlines, assessment or formal documents; the workspace plugs them in as hooks
(see :mod:`engine.wiring`). A hook gets a :class:`Step` holding everything the flow had in hand (the
session, the incident already changed, the playbook it runs under, the moment, the cause and the actor),
so no hook calls back into the flow or queries for what it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from engine.access import RoleMap
from engine.incidents.shape import IncidentShape
from engine.playbooks.guards import Situation
from engine.playbooks.parsing import PlaybookSource

__all__ = ["NO_HOOKS", "Hooks", "Step"]


@dataclass(frozen=True)
class Step:
    """One accepted change of an incident, as its hooks see it.

    ``cause`` says what changed it: ``opened``, a trigger's name, ``task:<id>`` or ``facts``. ``at`` is
    when the change was recorded; ``actor`` who made it; ``occurred_at`` when the step really happened,
    if the operator said so (``--at``): deadlines are met and documents dated by :attr:`happened_at`.
    """

    session: Session
    incident: IncidentShape
    playbook: PlaybookSource
    at: datetime
    cause: str
    actor: str
    occurred_at: datetime | None = None

    @property
    def happened_at(self) -> datetime:
        """When the step happened: the entered time if one was given, else when it was recorded."""
        return self.occurred_at or self.at


@dataclass
class Hooks:
    """Extra work that must share a flow's transaction (deadlines, documents), plugged in by callers."""

    after_change: list[Callable[[Step], None]] = field(default_factory=list)
    # Run on a new incident before its first insert, so what they set (its assessment) is part of version 1.
    on_open: list[Callable[[IncidentShape, datetime], None]] = field(default_factory=list)
    # Who holds which role in this workspace; None means no role is ever required.
    roles: RoleMap | None = None
    situation: list[Callable[[Session, IncidentShape, Situation], None]] = field(default_factory=list)

    def run_after_change(self, step: Step) -> None:
        """Run every ``after_change`` hook on ``step``, in the order they were added."""
        for hook in self.after_change:
            hook(step)


NO_HOOKS = Hooks()
