"""Labels of states, tasks and triggers as a stored playbook summary holds them, in a locale.

The summary (``{"states": {id: {"labels": {...}}}, "tasks": ...}``) is what the read model keeps per
playbook version, so a screen, a report or a JSON shape names a step without loading the playbook.
"""

from __future__ import annotations

from typing import Any

__all__ = ["label_of"]


def label_of(labels: dict[str, Any], kind: str, key: str | None, locale: str = "zh-CN") -> str:
    """A state's, task's or trigger's label from the playbook summary, in ``locale`` (else zh-CN; the
    key itself when the summary has none)."""
    if not key:
        return ""
    entry = labels.get(kind, {}).get(key)
    if entry is None:
        return key
    names = entry.get("labels", entry) if isinstance(entry, dict) else {}
    return str(names.get(locale) or names.get("zh-CN") or key)
