"""The allow-list of effects a transition may have on an incident, beyond changing its state.

Effects write only the incident's own bookkeeping: flags (``notification_waived``), anchors (the moments
legal clocks start from, such as ``contained_at``) and records (lists such as correction ``orders``).
They run inside the flow's transaction, so a failing effect leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import NotAllowed

__all__ = ["EFFECTS", "EffectDef", "Mutable", "apply_effects"]


@dataclass
class Mutable:
    """The parts of an incident that effects may change, plus the attempt's own data."""

    flags: dict[str, Any]
    anchors: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    at: datetime
    actor: str
    inputs: dict[str, Any]
    reason: str | None


EffectRun = Callable[[Mutable, Any], str]


@dataclass(frozen=True)
class EffectDef:
    """One allowed effect: its parameter kind, a description, and the change it makes."""

    name: str
    param: str
    description: str
    run: EffectRun


def _set_flag(m: Mutable, name: str) -> str:
    m.flags[name] = True
    return f"{name} set"


def _clear_flag(m: Mutable, name: str) -> str:
    m.flags.pop(name, None)
    return f"{name} cleared"


def _set_anchor(m: Mutable, name: str) -> str:
    # An input of the same name (e.g. the date on a regulator's order) wins over the moment of the step.
    value = m.inputs.get(name) or m.at.isoformat()
    m.anchors[name] = str(value)
    return f"{name} = {value}"


def _record(m: Mutable, name: str, *, status: str | None) -> dict[str, Any]:
    entries = m.records.setdefault(name, [])
    entry: dict[str, Any] = {"number": len(entries) + 1, "at": m.at.isoformat(), "actor": m.actor, **m.inputs}
    if m.reason:
        entry["reason"] = m.reason
    if status:
        entry["status"] = status
    entries.append(entry)
    return entry


def _append_record(m: Mutable, name: str) -> str:
    entry = _record(m, name, status=None)
    return f"{name} #{entry['number']} recorded"


def _open_record(m: Mutable, name: str) -> str:
    entry = _record(m, name, status="open")
    return f"{name} #{entry['number']} opened"


def _close_record(m: Mutable, name: str) -> str:
    ref = str(m.inputs.get("ref") or "")
    entries = m.records.get(name, [])
    for entry in entries:
        if str(entry.get("ref")) == ref and entry.get("status") == "open":
            entry["status"] = "closed"
            entry["closed_at"] = m.at.isoformat()
            entry["closed_by"] = m.actor
            return f"{name} {ref} closed"
    open_refs = [str(e.get("ref")) for e in entries if e.get("status") == "open"]
    allowed = ", ".join(open_refs) if open_refs else "none is open"
    raise NotAllowed(f"no open {name} with ref {ref!r} (open: {allowed})")


EFFECTS: dict[str, EffectDef] = {
    e.name: e
    for e in (
        EffectDef("set_flag", "name", "set a named flag", _set_flag),
        EffectDef("clear_flag", "name", "clear a named flag", _clear_flag),
        EffectDef(
            "set_anchor", "name", "record a clock anchor: the input of that name, else now", _set_anchor
        ),
        EffectDef("append_record", "name", "append the step's inputs to a named list", _append_record),
        EffectDef("open_record", "name", "append an open entry (closed later) to a named list", _open_record),
        EffectDef("close_record", "name", "close the open entry whose ref is the input 'ref'", _close_record),
    )
}


def apply_effects(specs: list[tuple[str, Any]], mutable: Mutable) -> list[str]:
    """Apply effects in order and return what each did, for the audit trail."""
    return [EFFECTS[name].run(mutable, param) for name, param in specs]
