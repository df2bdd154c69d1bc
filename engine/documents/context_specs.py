"""The declared contexts of documents (``templates/contexts.yaml``): for each kind of document, the
variables its templates may use, their types, choices and fields, and a check of a built context
against them.

It stands alone because two checks read it: the static check of templates
(:mod:`engine.documents.checks`) and the tests of the code that builds contexts (``context_problems``);
neither needs the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "CONTEXTS_FILE",
    "context_problems",
    "load_contexts",
]

CONTEXTS_FILE = "contexts.yaml"


def _variables(body: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    return (body.get("variables") or {}).items()


def _resolve_spec(spec: dict[str, Any], blocks: dict[str, Any]) -> dict[str, Any]:
    if "use" in spec:
        spec = {**blocks[spec["use"]], **{k: v for k, v in spec.items() if k != "use"}}
    spec = dict(spec)
    if "fields" in spec:
        spec["fields"] = {k: _resolve_spec(v, blocks) for k, v in spec["fields"].items()}
    if "items" in spec:
        spec["items"] = _resolve_spec(spec["items"], blocks)
    return spec


def load_contexts(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read the contexts file: kind -> {variable -> spec}, common variables merged and ``use:`` resolved."""
    import yaml

    from engine.workspace import builtin_root

    path = path or builtin_root() / "templates" / CONTEXTS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    blocks = data.get("blocks", {})
    common = {k: _resolve_spec(v, blocks) for k, v in data.get("common", {}).items()}
    return {
        kind: {**common, **{k: _resolve_spec(v, blocks) for k, v in _variables(body)}}
        for kind, body in data["kinds"].items()
    }


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "list": (list, tuple),
    "object": (dict,),
    "date": (date,),
    "datetime": (datetime,),
}


def context_problems(kind: str, context: dict[str, Any], *, contexts: Path | None = None) -> list[str]:
    """What is wrong with ``context`` for ``kind`` against the contexts file: missing or null values
    that are not optional, wrong types, naive datetimes, codes outside their choices.

    Rendering does not call this (it would cost every notice time); the code that builds contexts
    runs it in its tests. ``locale`` and ``timezone`` may be left out: the renderer sets them.
    """
    declared = load_contexts(contexts).get(kind)
    if declared is None:
        return [f"no document kind {kind!r}"]
    problems: list[str] = []
    for name, spec in declared.items():
        if name not in ("locale", "timezone"):
            _check_value(name, context.get(name), spec, name in context, problems)
    return problems


def _check_value(path: str, value: Any, spec: dict[str, Any], present: bool, problems: list[str]) -> None:
    if value is None:
        if not spec.get("optional"):
            problems.append(f"{path}: {'null' if present else 'missing'} but required ({spec['type']})")
        return
    kind = spec["type"]
    wrong = (
        not isinstance(value, _TYPES[kind])
        or (kind == "int" and isinstance(value, bool))
        or (kind == "date" and isinstance(value, datetime))
    )
    if wrong:
        problems.append(f"{path}: expected {kind}, got {type(value).__name__}")
    elif kind == "datetime" and value.utcoffset() is None:
        problems.append(f"{path}: datetime without a time zone")
    elif "choices" in spec and value not in spec["choices"]:
        problems.append(f"{path}: {value!r} is not one of {', '.join(spec['choices'])}")
    elif kind == "object":
        for field, sub in spec.get("fields", {}).items():
            _check_value(f"{path}.{field}", value.get(field), sub, field in value, problems)
    elif kind == "list" and "items" in spec:
        for index, item in enumerate(value):
            _check_value(f"{path}[{index}]", item, spec["items"], True, problems)
