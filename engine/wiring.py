"""Which extra work runs inside every flow transaction of a workspace (assessment, deadlines, ...).

The flow knows nothing of deadlines or assessment; it calls the hooks built here, in its own transaction,
so a refused step leaves them untouched too. Commands and the demo get their hooks from ``hooks_for``.
"""

from __future__ import annotations

from engine.flow import Hooks
from engine.workspace import Workspace

__all__ = ["hooks_for"]


def hooks_for(workspace: Workspace) -> Hooks:
    """The hooks every flow call in ``workspace`` runs with."""
    hooks = Hooks()
    return hooks
