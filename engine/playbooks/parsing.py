"""Reading a playbook: YAML text to a validated :class:`~engine.playbooks.model.Playbook`.

Kept apart from the model because it is about text, not the response: it locates every validation error
at its file and line (``origin:line: where: what``), pins the exact text by its SHA-256 (what an incident
is opened with) and reuses the YAML of a text parsed before, so that the model stays a plain schema.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import BadInput
from engine.playbooks.model import Playbook
from engine.playbooks.yamlpos import LocatedYaml, load_located

__all__ = [
    "PlaybookSource",
    "parse_playbook",
    "playbook_errors",
    "read_playbook_file",
]


class PlaybookSource(BaseModel):
    """A parsed playbook with the text it came from and that text's hash (what incidents pin)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    playbook: Playbook
    text: str
    sha256: str
    origin: str


def _format_loc(loc: tuple[Any, ...], doc: LocatedYaml) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(item, str) and not re.fullmatch(r"[a-z_-]*\[.*\]|function-.*", item):
            parts.append(f".{item}" if parts else item)
    return "".join(parts) or "(top level)"


_PARSERS = ("engine.files.structured", "engine.playbooks.yamlpos")


def playbook_errors(text: str, origin: str) -> tuple[PlaybookSource | None, list[str]]:
    """Parse and validate; return the playbook or every error as ``origin:line: where: what``.

    The YAML of a text that parsed before is read back from the cache (:mod:`engine.files.parsed`):
    every command that changes an incident needs its playbook, and parsing it is most of their work.
    """
    from engine.files.parsed import MISSING, recall, remember

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    kept = recall("playbook", text, parsers=_PARSERS)
    if kept is not MISSING:
        try:
            playbook = Playbook.model_validate(kept)
            return PlaybookSource(playbook=playbook, text=text, sha256=digest, origin=origin), []
        except ValidationError:
            pass  # the engine's rules changed since: parse again, with lines for the errors
    try:
        doc = load_located(text, origin)
    except BadInput as exc:
        return None, [str(exc)]
    if not isinstance(doc.data, dict):
        return None, [f"{origin}:1: a playbook is a mapping with id, version, states and transitions"]
    try:
        playbook = Playbook.model_validate(doc.data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # Drop pydantic's union/tagged parts so the location reads like the YAML path.
            loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
            where = _format_loc(loc, doc)
            message = err["msg"].removeprefix("Value error, ")
            errors.append(f"{origin}:{doc.line_of(loc)}: {where}: {message}")
        return None, errors
    remember("playbook", text, doc.data, parsers=_PARSERS)
    return PlaybookSource(playbook=playbook, text=text, sha256=digest, origin=origin), []


def parse_playbook(text: str, origin: str) -> PlaybookSource:
    """Parse and validate a playbook; ``BadInput`` carries the first error (``playbook_errors`` has all)."""
    source, errors = playbook_errors(text, origin)
    if source is None:
        more = f" (and {len(errors) - 1} more; run breach playbook validate)" if len(errors) > 1 else ""
        raise BadInput(errors[0] + more)
    return source


def read_playbook_file(path: Path) -> PlaybookSource:
    """Read and parse one playbook file."""
    from engine.files import read_text

    return parse_playbook(read_text(path, what="playbook"), str(path))
