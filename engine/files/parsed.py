"""Parsed YAML kept between commands: the plain values of a file parsed before, read back as JSON.

Every command that changes an incident needs its playbook and the legal data, and parsing their YAML
within bounds (see :mod:`engine.files.structured`) costs more than the rest of a ``task done``. The
values a successful parse produced are kept in the account's cache folder (``$XDG_CACHE_HOME/breach``,
else ``~/.cache/breach``; ``BREACH_CACHE_DIR`` names another, ``off`` keeps none), 0600 in a 0700
folder, under the sha256 of everything that decides the result: the text, the limits, the engine
version and the files of the code that parses. A changed file is a new key; a missing, unreadable or
damaged entry is a parse as before, and failing to write one changes nothing for the command.

Only what JSON gives back unchanged is kept: text, numbers, booleans, null, lists, and mappings (keys
that are not text, such as YAML's ``on:`` read as ``True``, are kept with their type). A value holding
anything else (a date, a tuple) is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.errors import BadInput
from engine.files.limits import current_limits
from engine.files.private import write_private
from engine.files.reading import read_bytes

__all__ = ["CACHE_ENV", "MISSING", "cache_folder", "recall", "remember"]

CACHE_ENV = "BREACH_CACHE_DIR"
MISSING: Any = object()
"""What :func:`recall` returns when nothing is kept for the text."""

_FORMAT = "1"
_MAP = "\x00map"  # a mapping whose keys are not all text, as [key, value] pairs


class _NotKept(Exception):
    """A value JSON would not give back as it was."""


def cache_folder() -> Path | None:
    """Where parsed values are kept, or None when ``BREACH_CACHE_DIR=off``."""
    configured = os.environ.get(CACHE_ENV, "")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "breach" / "parsed"


def _key(kind: str, text: str, parsers: tuple[str, ...]) -> str:
    """The sha256 naming the entry: text, kind, limits, engine version and the parsing code's files."""
    from engine import __version__

    code = []
    for name in parsers:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            info = os.stat(path)
            code.append(f"{name}:{info.st_mtime_ns}:{info.st_size}")
    material = "\x00".join([_FORMAT, __version__, kind, repr(current_limits()), *code, text])
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _NotKept
        return value
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _MAP not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {_MAP: [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise _NotKept


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {_MAP}:
            return {_decode(k): _decode(v) for k, v in value[_MAP]}
        return {k: _decode(v) for k, v in value.items()}
    return value


def recall(kind: str, text: str, *, parsers: tuple[str, ...] = ()) -> Any:
    """The values kept for ``text`` parsed as ``kind``, or :data:`MISSING`."""
    folder = cache_folder()
    if folder is None:
        return MISSING
    try:
        entry = folder / f"{_key(kind, text, parsers)}.json"
        raw = read_bytes(entry, what="cache entry", limit_key="data_file_bytes")
        return _decode(json.loads(raw)["value"])
    except (BadInput, OSError, ValueError, KeyError, TypeError, RecursionError):
        return MISSING


def remember(kind: str, text: str, value: Any, *, parsers: tuple[str, ...] = ()) -> None:
    """Keep ``value``, what parsing ``text`` as ``kind`` gave, for the next command (best effort)."""
    folder = cache_folder()
    if folder is None:
        return
    try:
        encoded = json.dumps({"value": _encode(value)}, ensure_ascii=False, allow_nan=False)
        if _decode(json.loads(encoded)["value"]) != value:
            return
        write_private(folder, f"{_key(kind, text, parsers)}.json", encoded.encode("utf-8"))
    except (_NotKept, BadInput, OSError, ValueError, TypeError, RecursionError):
        return
