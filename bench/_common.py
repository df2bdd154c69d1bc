"""Helpers the benchmarks share: the built-in playbook, the happy-path walk, fresh stores, statistics.

Benchmarks run from a source checkout (``python bench/NAME.py``); this module puts the checkout on
``sys.path`` so ``import engine`` works without an install, and imports nothing heavy at module level.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from engine.playbooks.parsing import PlaybookSource
    from engine.store.db import Store

__all__ = ["REPO", "Step", "builtin_source", "fmt_rate", "median", "open_store", "rss_kib", "walk"]

ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Step:
    """One phase of the happy path: the required tasks to complete, then the trigger that leaves it."""

    tasks: tuple[str, ...]
    trigger: str


def builtin_source() -> PlaybookSource:
    """The built-in ``cn-agency-firm`` playbook of this checkout."""
    from engine.playbooks.catalog import PlaybookCatalog
    from engine.workspace import Workspace

    return PlaybookCatalog(Workspace.resolve(REPO)).get("cn-agency-firm")


def walk(source: PlaybookSource) -> list[Step]:
    """The happy path from opening to closed: every phase's required tasks, then its forward trigger.

    ``handling_ended`` (an internal step in remediation) comes before ``close``, whose guard needs it.
    """
    playbook = source.playbook
    steps, state = [], playbook.initial
    for trigger in ("contain", "notify", "report", "hold_accountable", "handling_ended", "close"):
        spec = playbook.transition(trigger, state)
        if spec is None:
            raise SystemExit(f"the playbook has no {trigger!r} from {state!r}: update bench/_common.walk")
        # An internal step leaves the phase's tasks to the step that leaves the phase.
        required = () if spec.internal else tuple(t.id for t in playbook.state(state).tasks if t.required)
        steps.append(Step(required, trigger))
        state = state if spec.internal else str(spec.dest)
    return steps


def open_store(path: Path, *, synchronous: str = "NORMAL") -> Store:
    """A fresh SQLite store at ``path`` with every table; ``synchronous`` overrides the engine's pragma."""
    from engine.migrations.tables import create_all
    from engine.store.db import Store

    store = Store(f"sqlite:///{path}", sqlite_synchronous=synchronous)
    create_all(store)
    return store


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def fmt_rate(count: int, seconds: float) -> str:
    """``count`` per second, or a dash when nothing was timed."""
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"
