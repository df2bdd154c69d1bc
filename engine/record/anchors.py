"""Anchors: the chain heads of every incident and of the workspace log, signed, kept outside the database.

A hash chain only proves that its rows fit each other. Someone who can write the database can delete an
event and renumber the rest, or rewrite an actor and recompute every hash, and the chain fits again. An
anchor records, at a moment, how many events each incident had and the hash of the last one (and the same
for the workspace log), signed with the workspace's key and appended to a file outside the database
(``[audit] anchor_file``). A later rewrite changes the hash at an anchored position, and ``audit verify``
names it. Copies of the file, or of the lines ``breach audit anchor`` prints, kept elsewhere (a witness
mailbox) catch a rewrite of the file as well: ``audit verify --against COPY``.

A new anchor is written only when the database still extends the latest one, so an anchor never vouches
for a rewritten record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlmodel import Session

from engine.errors import BadInput
from engine.files import append_private, read_text
from engine.incidents.audit import canonical_json
from engine.incidents.worklog import log_head
from engine.record.signing import SigningKey, fingerprint, load_key, signature_valid
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

__all__ = [
    "ANCHOR_FORMAT",
    "Anchor",
    "Anchored",
    "anchor_now",
    "anchor_path",
    "changed_since",
    "current_heads",
    "divergences",
    "latest_positions",
    "read_anchors",
    "sign_anchor",
]

ANCHOR_FORMAT = "breach-anchor/1"
DEFAULT_FILE = "audit/anchors.jsonl"


def anchor_path(workspace: Workspace) -> Path:
    """The workspace's anchor file (``[audit] anchor_file``, relative to the workspace)."""
    configured = str((workspace.settings.get("audit") or {}).get("anchor_file") or DEFAULT_FILE)
    path = Path(configured).expanduser()
    return path if path.is_absolute() else workspace.home / path


@dataclass(frozen=True)
class Anchor:
    """One signed line of an anchor file: the statement, and whether its signature verified."""

    line: int
    statement: dict[str, Any]
    signature: str
    valid: bool

    @property
    def at(self) -> str:
        """When it was signed (ISO-8601, UTC)."""
        return str(self.statement.get("at", ""))


def current_heads(session: Session) -> dict[str, Any]:
    """Every incident's event count and last hash, and the workspace log's, as an anchor states them."""
    rows = session.connection().execute(text("SELECT id, event_count, audit_head FROM incident ORDER BY id"))
    incidents = {str(i): {"events": int(n), "head": str(h or "")} for i, n, h in rows}
    log = log_head(session)
    return {"incidents": incidents, "workspace_log": {"entries": log.entries, "head": log.head}}


def sign_anchor(path: Path, key: SigningKey, heads: dict[str, Any], at: datetime | None = None) -> str:
    """Sign ``heads`` and append them to the anchor file; return the line written (without newline)."""
    statement = {
        "format": ANCHOR_FORMAT,
        "at": (at or utcnow()).isoformat(),
        "key": key.fingerprint,
        **heads,
    }
    line = canonical_json({"statement": statement, "signature": key.sign(canonical_json(statement).encode())})
    os.makedirs(path.parent, mode=0o700, exist_ok=True)
    append_private(path, line + "\n")
    return line


def read_anchors(path: Path, public: Ed25519PublicKey | None) -> list[Anchor]:
    """Every anchor of the file, each with whether ``public`` signed it (not checked when None, and
    then not valid); [] when there is no file."""
    if not path.exists():
        return []
    content = read_text(path, what="anchor file", limit_key="data_file_bytes")
    anchors: list[Anchor] = []
    expected = fingerprint(public) if public is not None else None
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            statement = entry["statement"]
            signature = str(entry["signature"])
            if not isinstance(statement, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{path}: line {number} is not a breach anchor") from None
        valid = (
            public is not None
            and statement.get("key") == expected
            and signature_valid(public, canonical_json(statement).encode(), signature)
        )
        anchors.append(Anchor(number, statement, signature, valid))
    return anchors


@dataclass(frozen=True)
class Anchored:
    """The latest anchored position of one chain: how many entries, the last hash, when it was signed."""

    count: int
    head: str
    at: str


def latest_positions(anchors: list[Anchor]) -> tuple[dict[str, Anchored], Anchored | None]:
    """The latest anchored position of each incident and of the workspace log.

    The latest is enough: a chain that is intact and still has the anchored hash at the anchored
    position still has every event before it as it was.
    """
    incidents: dict[str, Anchored] = {}
    log: Anchored | None = None
    for anchor in anchors:
        for incident_id, was in (anchor.statement.get("incidents") or {}).items():
            incidents[str(incident_id)] = Anchored(int(was["events"]), str(was["head"]), anchor.at)
        was_log = anchor.statement.get("workspace_log")
        if isinstance(was_log, dict):
            log = Anchored(int(was_log.get("entries") or 0), str(was_log.get("head") or ""), anchor.at)
    return incidents, log


_EVENT_HASH = text("SELECT hash FROM event WHERE incident_id = :i AND seq = :s")
_LOG_HASHES = text("SELECT hash FROM workspace_log ORDER BY id")
_PURGED = text("SELECT 1 FROM workspace_log WHERE kind = 'purged' AND incident_id = :i")


def divergences(session: Session, anchors: list[Anchor], current: dict[str, Any] | None = None) -> list[str]:
    """What in the database no longer extends the anchors: one line per incident or log that diverged."""
    heads = current if current is not None else current_heads(session)
    incidents, log = latest_positions(anchors)
    conn = session.connection()
    found: list[str] = []
    for incident_id, was in sorted(incidents.items()):
        now = heads["incidents"].get(incident_id)
        signed = f"the anchor of {was.at}"
        if now is None:
            if conn.execute(_PURGED, {"i": incident_id}).first() is None:
                found.append(
                    f"{incident_id}: gone from the database, though {signed} records {was.count} events"
                )
            continue
        if now["events"] == was.count and now["head"] == was.head:
            continue
        if now["events"] < was.count:
            found.append(
                f"{incident_id}: {now['events']} events, fewer than the {was.count} {signed} records: "
                "events were deleted"
            )
            continue
        if was.count and conn.execute(_EVENT_HASH, {"i": incident_id, "s": was.count}).scalar() != was.head:
            found.append(
                f"{incident_id}: event #{was.count} is not the one {signed} signed: the trail was rewritten"
            )
    if log is not None and log.count:
        signed = f"the anchor of {log.at}"
        hashes = [str(h) for (h,) in conn.execute(_LOG_HASHES)]
        if len(hashes) < log.count:
            found.append(f"workspace log: {len(hashes)} entries, fewer than the {log.count} {signed} records")
        elif hashes[log.count - 1] != log.head:
            found.append(f"workspace log: entry {log.count} is not the one {signed} signed: it was rewritten")
    return found


def changed_since(anchors: list[Anchor], heads: dict[str, Any]) -> dict[str, Any] | None:
    """The heads that moved since the latest anchors (None when nothing did), as a partial statement."""
    incidents, log = latest_positions(anchors)
    moved = {
        incident_id: now
        for incident_id, now in heads["incidents"].items()
        if (was := incidents.get(incident_id)) is None
        or (was.count, was.head) != (now["events"], now["head"])
    }
    now_log = heads["workspace_log"]
    log_moved = log is None or (log.count, log.head) != (now_log["entries"], now_log["head"])
    if not moved and not log_moved:
        return None
    return {"incidents": moved, "workspace_log": now_log}


def anchor_now(store: Store, workspace: Workspace, *, full: bool) -> str | None:
    """Sign the current heads into the workspace's anchor file; return the line, or None when nothing
    moved since the latest anchor (``full`` writes every head all the same).

    :raises BadInput: when the database no longer extends the latest anchors: signing it now would
        vouch for a rewritten record.
    """
    key = load_key(workspace)
    path = anchor_path(workspace)
    anchors = [a for a in read_anchors(path, key.public) if a.valid]
    with store.read() as session:
        heads = current_heads(session)
        problems = divergences(session, anchors, heads)
    if problems:
        raise BadInput(f"not anchored: the database no longer extends the signed anchors ({problems[0]})")
    statement = heads if full else changed_since(anchors, heads)
    if statement is None:
        return None
    return sign_anchor(path, key, statement)
