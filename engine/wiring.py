"""Which extra work runs inside every flow transaction of a workspace (assessment, deadlines, ...).

The flow knows nothing of deadlines or assessment; it calls the hooks built here, in its own transaction,
so a refused step leaves them untouched too. Commands and the demo get their hooks from ``hooks_for``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.legal.data import LegalData, load_legal
from engine.workspace import Workspace

if TYPE_CHECKING:
    from engine.incidents.hooks import Hooks

__all__ = ["hooks_for", "legal_for"]


def hooks_for(workspace: Workspace) -> Hooks:
    """The hooks every flow call in ``workspace`` runs with."""
    # Imported here: ``legal_for`` alone (breach assess) must not load the database layer they need.
    from engine.access import RoleMap
    from engine.deadlines.sync import DeadlineHook
    from engine.formal.service import FormalHook
    from engine.incidents.hooks import Hooks
    from engine.incidents.reassess import assessment_hook

    hooks = Hooks(roles=RoleMap.from_settings(workspace.settings))
    hooks.on_open.append(assessment_hook(lambda: legal_for(workspace)))
    # Deadlines come after every hook that changes the incident: they read its grade, facts and anchors.
    hooks.after_change.append(DeadlineHook(workspace, lambda: legal_for(workspace)))
    # Formal documents come last: a step that an earlier hook refuses renders and writes nothing.
    hooks.after_change.append(FormalHook(workspace))
    return hooks


_legal_cache: dict[tuple[str, ...], LegalData] = {}


def legal_for(workspace: Workspace) -> LegalData:
    """The legal data in force in ``workspace`` (its config/legal files shadow the built-in ones)."""
    dirs = workspace.search_path("config")
    key = tuple(str(d) for d in dirs)
    if key not in _legal_cache:
        _legal_cache[key] = load_legal(dirs)
    return _legal_cache[key]
