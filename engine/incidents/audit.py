"""The append-only, hash-chained audit trail of each incident.

Each event's hash covers its content and the previous event's hash; the incident row keeps the count and
the last hash. Editing, deleting or reordering a row directly in the database therefore breaks the chain
at that row, and ``verify_chain`` names the first event that no longer fits.

Once ``breach audit verify`` has found an incident's trail broken (a ``chain_broken`` entry in the
workspace log), no further event is appended to it until an operator acknowledges the investigation
(an ``acknowledged`` entry): work recorded on top of a record known to be tampered with would look sound.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlmodel import Session, select

from engine.errors import NotAllowed
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Event

__all__ = [
    "GENESIS",
    "ChainEnd",
    "ChainReport",
    "append_event",
    "canonical_json",
    "event_hash",
    "next_event",
    "refuse_finding",
    "refuse_if_held",
    "verify_chain",
    "verify_rows",
]

# The latest finding about the incident's trail in the workspace log: broken, or acknowledged since.
_LATEST_FINDING = text(
    "SELECT kind, detail FROM workspace_log WHERE incident_id = :i "
    "AND kind IN ('chain_broken', 'acknowledged') ORDER BY id DESC LIMIT 1"
)


def refuse_if_held(session: Session, incident_id: str) -> None:
    """Refuse a write to an incident whose trail was found broken and not yet acknowledged."""
    row = session.connection().execute(_LATEST_FINDING, {"i": incident_id}).first()
    if row is not None:
        refuse_finding(incident_id, row[0], row[1])


def refuse_finding(incident_id: str, kind: str | None, detail: str | None) -> None:
    """Refuse a write when ``kind``, the latest finding about the incident's trail in the workspace log
    (read with the incident by :func:`engine.incidents.rows.load_incident`), says it is broken."""
    if kind == "chain_broken":
        raise NotAllowed(
            f"{incident_id}'s audit trail was found broken ({detail}); nothing more is recorded on it "
            f"until the investigation is acknowledged: breach audit acknowledge {incident_id} --reason ..."
        )


GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """JSON that hashes the same wherever it was stored (key order and spacing fixed)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def event_hash(
    *,
    incident_id: str,
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    trigger: str | None,
    from_state: str | None,
    to_state: str | None,
    reason: str | None,
    inputs: dict[str, Any],
    prev_hash: str,
    occurred_at: datetime | None = None,
) -> str:
    """The SHA-256 of an event's content and its predecessor's hash.

    ``occurred_at`` is hashed only when set, so events recorded before it existed keep their hashes.
    """
    content = {
        "incident": incident_id,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "trigger": trigger,
        "from": from_state,
        "to": to_state,
        "reason": reason,
        "inputs": inputs,
        "prev": prev_hash,
    }
    if occurred_at is not None:
        content["occurred"] = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    payload = canonical_json(content)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def next_event(
    incident: IncidentShape,
    *,
    kind: str,
    actor: str,
    at: datetime,
    trigger: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    inputs: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The column values of the incident's next event; moves the incident's chain head to it.

    ``at`` is the recording time; ``occurred_at`` the real time of a step entered after the fact.
    The caller inserts the row in the same transaction (``append_event`` does it through the session).
    """
    at = at.astimezone(UTC)
    seq = incident.event_count + 1
    prev = incident.audit_head or GENESIS
    body = json.loads(canonical_json(inputs or {}))
    row = {
        "incident_id": incident.id,
        "seq": seq,
        "at": at,
        "actor": actor,
        "kind": kind,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": to_state,
        "reason": reason,
        "inputs": body,
        "prev_hash": prev,
    }
    if occurred_at is not None:
        # Only when set: a step recorded as it happens writes the same row as before this column existed.
        row["occurred_at"] = occurred_at.astimezone(UTC)
    row["hash"] = event_hash(**{k: v for k, v in row.items() if k != "prev_hash"}, prev_hash=prev)
    incident.event_count = seq
    incident.audit_head = row["hash"]
    return row


def append_event(
    session: Session,
    incident: IncidentShape,
    *,
    kind: str,
    actor: str,
    at: datetime,
    trigger: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    inputs: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Add the next event of ``incident`` to the session and move the incident's chain head."""
    if kind != "opened":  # a new incident has no trail that could have been found broken
        refuse_if_held(session, incident.id)
    row = Event(
        **next_event(
            incident,
            kind=kind,
            actor=actor,
            at=at,
            trigger=trigger,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            inputs=inputs,
            occurred_at=occurred_at,
        )
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class ChainReport:
    """The outcome of checking one incident's chain."""

    incident_id: str
    events: int
    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None


class ChainEnd(Protocol):
    """What a chain is checked against: the incident's id and the count and last hash it records.

    An incident row has these; so has the copy read back from an evidence bundle.
    """

    @property
    def id(self) -> str: ...

    @property
    def event_count(self) -> int: ...

    @property
    def audit_head(self) -> str: ...


def _check(incident: ChainEnd, events: Iterable[Event]) -> ChainReport:
    prev = GENESIS
    expected_seq = 1
    count = 0
    for ev in events:
        count += 1
        if ev.seq != expected_seq:
            return ChainReport(
                incident.id,
                count,
                False,
                f"event #{expected_seq} is missing or out of order (found #{ev.seq} in its place)",
                expected_seq,
            )
        if ev.prev_hash != prev:
            return ChainReport(
                incident.id,
                count,
                False,
                f"event #{ev.seq} does not follow event #{ev.seq - 1}: "
                "an event before it was changed, removed or reordered",
                ev.seq,
            )
        recomputed = event_hash(
            incident_id=ev.incident_id,
            seq=ev.seq,
            at=ev.at,
            actor=ev.actor,
            kind=ev.kind,
            trigger=ev.trigger,
            from_state=ev.from_state,
            to_state=ev.to_state,
            reason=ev.reason,
            inputs=ev.inputs,
            prev_hash=ev.prev_hash,
            occurred_at=ev.occurred_at,
        )
        if recomputed != ev.hash:
            what = f"{ev.kind} {ev.trigger}" if ev.trigger else ev.kind
            return ChainReport(
                incident.id,
                count,
                False,
                f"event #{ev.seq} ({what}) was altered: its content no longer matches its hash",
                ev.seq,
            )
        prev = ev.hash
        expected_seq += 1
    if count != incident.event_count or prev != (incident.audit_head or GENESIS):
        return ChainReport(
            incident.id,
            count,
            False,
            f"the trail ends at event #{count} but the incident records {incident.event_count} "
            "events: the last events were deleted or replaced",
            count + 1,
        )
    return ChainReport(incident.id, count, True)


def verify_chain(session: Session, incident: ChainEnd) -> ChainReport:
    """Walk the incident's events in order and report the first one that breaks the chain."""
    events = session.exec(select(Event).where(Event.incident_id == incident.id).order_by(Event.seq))  # type: ignore[arg-type]
    return _check(incident, events)


def verify_rows(incident: ChainEnd, events: Iterable[Event]) -> ChainReport:
    """Check a chain given as rows (e.g. read back from an evidence bundle)."""
    return _check(incident, sorted(events, key=lambda e: e.seq))
