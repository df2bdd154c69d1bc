"""The escalation outbox: each warning and missed-deadline alert recorded once, delivered once per channel.

How "exactly once" is achieved, and where it honestly stops
-----------------------------------------------------------

1. **Deciding** an alert is exactly once. The checker claims a deadline with a compare-and-set
   (``UPDATE deadline ... WHERE id=? AND version=? AND status=?``, plus ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL) and, in the same transaction, inserts the outbox row ``escalation`` whose key
   ``(deadline_id, kind)`` is unique (``INSERT ... ON CONFLICT DO NOTHING``), with one
   ``escalation_delivery`` row per channel, unique per ``(escalation_id, channel)``. Any number of
   checkers, on one machine or many, produce each (deadline, kind, channel) row once.
2. **Sending** is claimed under a lease: ``UPDATE escalation_delivery SET status='sending',
   claim_token=<new>, lease_until=now()+lease WHERE id=? AND status=<seen> AND claim_token=<seen>``.
   Only the winner sends. The message id (email ``Message-ID``, webhook ``Idempotency-Key``) and the
   payload were fixed when the row was written, so every attempt is the same message.
3. Just before the irreversible step the sender commits ``handed_off_at`` with a fence (``WHERE
   claim_token=<mine> AND lease_until > now()``): a worker whose lease ran out cannot send any more.
   After the send it marks the row ``sent`` (again only with its own claim token).
4. **Crash recovery.** A row left in ``sending`` is taken over once its lease has expired:
   - crashed *before* the hand-off: the receiver never got the message; it is sent, once;
   - crashed *after* the hand-off and before ``sent`` was recorded: nobody can know whether the server
     accepted it (a network peer's acknowledgement and our own commit are two separate events; no
     protocol closes that gap without the receiver's help). Such a delivery is **in doubt**. With
     ``in_doubt = "resend"`` (default: a duplicate warning beats a lost legal escalation) it is sent
     again with the *same* id and marked as a possible repeat (``X-Breach-Delivery`` header,
     ``X-Breach-In-Doubt`` header, ``in-doubt-resend`` in the log); receivers that honour
     ``Message-ID``/``Idempotency-Key`` collapse it. With ``in_doubt = "hold"`` it is never re-sent: it
     is kept as ``in_doubt`` and ``breach deadlines check`` lists it for a person to confirm (at most
     once, never a silent duplicate, but possibly none).
   The window of doubt is only the time between the hand-off commit and the ``sent`` commit (one SMTP
   DATA exchange or one HTTP request); every other crash point is recovered without a duplicate.
5. A sender slower than its lease cannot cause a duplicate before its hand-off (the fence refuses),
   but one that outlives its lease *after* the hand-off can: the lease must be longer than a channel's
   worst send time, which :func:`load_settings` enforces from the configured timeouts.

So: exactly once per (deadline, kind, channel) for deciding and recording; exactly once delivered
unless a process dies, or stalls past its lease, inside the hand-off window, where it is at least once
with the same id (``resend``) or at most once with a person told (``hold``).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from engine.deadlines.alerting import EscalationSettings, load_settings
from engine.deadlines.tables import Deadline, Escalation, EscalationDelivery
from engine.outbox.channels import Channel, DeliveryFailed, LeaseLost, Message
from engine.outbox.leases import NOW, fenced_update, take_claim
from engine.store.db import Store, table_of

__all__ = ["DeliveryReport", "EscalationSettings", "Outbox", "enqueue", "load_settings"]

FAILPOINT_ENV = "BREACH_FAILPOINT"
DELIVERY: Table = table_of(EscalationDelivery)
ESCALATION: Table = table_of(Escalation)
DEADLINE: Table = table_of(Deadline)


def _failpoint(name: str) -> None:
    """Die here, as a crash would, when the tests ask for it (``BREACH_FAILPOINT=<name>``)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os._exit(75)


def _insert(session: Session, table: Table) -> Any:
    """INSERT that can say ON CONFLICT DO NOTHING, in the session's dialect."""
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def enqueue(
    session: Session,
    *,
    deadline_id: int,
    incident_id: str,
    kind: str,
    payload: dict[str, Any],
    channels: list[str],
    now: datetime,
    domain: str = "breach.invalid",
) -> bool:
    """Record an alert and its deliveries in the caller's transaction; False if it existed already.

    The message ids are made here, once, so every later attempt reuses them.
    """
    inserted = session.execute(
        _insert(session, ESCALATION)
        .values(deadline_id=deadline_id, incident_id=incident_id, kind=kind, payload=payload, created_at=now)
        .on_conflict_do_nothing(index_elements=["deadline_id", "kind"])
        .returning(ESCALATION.c.id)
    ).first()
    if inserted is None:
        return False
    for channel in channels:
        session.execute(
            _insert(session, DELIVERY)
            .values(
                escalation_id=inserted[0],
                channel=channel,
                message_id=f"<breach-{uuid.uuid4().hex}@{domain}>",
                status="pending",
                attempts=0,
                in_doubt=False,
                next_attempt_at=now,
            )
            .on_conflict_do_nothing(index_elements=["escalation_id", "channel"])
        )
    return True


@dataclass
class DeliveryReport:
    """What one delivery pass did, per outcome."""

    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    resent_in_doubt: list[str] = field(default_factory=list)


@dataclass
class _Claimed:
    id: int
    channel: str
    token: str
    message: Message
    attempts: int


def _noise(kind: str, deadline_status: str, acknowledged: bool) -> bool:
    """Whether an undelivered alert has become noise: a warning or a repeat about a settled deadline,
    or a repeat about one somebody acknowledged. A first alert at each level is kept: it is the record
    that the people of that level were told."""
    settled = deadline_status in ("met", "waived", "void")
    if kind.startswith("warn"):
        return settled
    return "#" in kind and (settled or acknowledged)


def _candidates(now: datetime, batch: int, pg: bool) -> Any:
    """Deliveries due now: pending ones whose retry time came, and claims whose lease ran out."""
    d = DELIVERY.c
    query = (
        select(
            d.id,
            d.status,
            d.claim_token,
            d.handed_off_at,
            d.in_doubt,
            d.attempts,
            d.channel,
            d.message_id,
            ESCALATION.c.kind,
            ESCALATION.c.payload,
            ESCALATION.c.incident_id,
            DEADLINE.c.rule_id,
            DEADLINE.c.status.label("deadline_status"),
            DEADLINE.c.acknowledged_at,
        )
        .join(ESCALATION, ESCALATION.c.id == d.escalation_id)
        .join(DEADLINE, DEADLINE.c.id == ESCALATION.c.deadline_id)
        .where(
            ((d.status == "pending") & (d.next_attempt_at <= now))
            | ((d.status == "sending") & (d.lease_until <= now))
        )
        .order_by(d.id)
        .limit(batch)
    )
    return query.with_for_update(skip_locked=True, of=DELIVERY) if pg else query


class Outbox:
    """Delivers the outbox's due deliveries through the configured channels (see the module docstring)."""

    def __init__(self, store: Store, settings: EscalationSettings, channels: dict[str, Channel]) -> None:
        self.store = store
        self.settings = settings
        self.channels = channels

    def deliver(self, *, batch: int = 20) -> DeliveryReport:
        """Claim and send due deliveries in small batches until none is left for this worker."""
        report = DeliveryReport()
        while True:
            settled_before = len(report.cancelled) + len(report.held)
            claimed = self._claim(batch, report)
            if not claimed and len(report.cancelled) + len(report.held) == settled_before:
                return report  # nothing left that this worker could take
            if claimed:
                _failpoint("after_claim")
            for item in claimed:
                self._send(item, report)

    def _claim(self, batch: int, report: DeliveryReport) -> list[_Claimed]:
        """Take up to ``batch`` due deliveries under a fresh lease; held and cancelled ones settle here."""
        pg = self.store.engine.dialect.name == "postgresql"
        claimed: list[_Claimed] = []
        with self.store.write() as session:
            now = self.store.db_now(session)
            for row in session.execute(_candidates(now, batch, pg)).all():
                in_doubt = bool(row.in_doubt) or (row.status == "sending" and row.handed_off_at is not None)
                name = f"{row.kind}/{row.channel} {row.incident_id} {row.rule_id}"
                settle, bucket = None, report.cancelled
                if _noise(row.kind, row.deadline_status, row.acknowledged_at is not None):
                    settle, bucket = "cancelled", report.cancelled
                elif in_doubt and self.settings.in_doubt == "hold":
                    settle, bucket = "in_doubt", report.held
                token = uuid.uuid4().hex
                won = take_claim(
                    session,
                    DELIVERY,
                    row,
                    token,
                    now,
                    in_doubt=in_doubt,
                    lease_seconds=self.settings.lease_seconds,
                    settle=settle,
                )
                if not won:
                    continue  # another checker took it between our read and our write
                if settle:
                    bucket.append(name)
                    continue
                if in_doubt:
                    report.resent_in_doubt.append(name)
                payload = row.payload if isinstance(row.payload, dict) else dict(row.payload)
                message = Message(row.message_id, row.kind, payload, in_doubt)
                claimed.append(_Claimed(row.id, row.channel, token, message, int(row.attempts) + 1))
        return claimed

    def _fenced(self, item: _Claimed, values: dict[str, Any], *, need_lease: bool = False) -> int:
        """One UPDATE of our own claim (see ``engine.outbox.leases``)."""
        return fenced_update(
            self.store,
            DELIVERY,
            item.id,
            item.token,
            values,
            lease_seconds=self.settings.lease_seconds,
            hand_off=need_lease,
        )

    def _send(self, item: _Claimed, report: DeliveryReport) -> None:
        """Send one claimed delivery: hand-off fence, the channel's send, then ``sent`` under our claim."""
        payload = item.message.payload
        name = f"{item.message.kind}/{item.channel} {payload['incident_id']} {payload['rule']}"
        channel = self.channels.get(item.channel)
        if channel is None:
            # The channel was switched off after the row was written: keep it for when it returns.
            self._release(item, f"channel {item.channel} is not enabled", transient=True, maybe=False)
            report.retrying.append(name)
            return

        def handoff() -> None:
            if self._fenced(item, {"handed_off_at": NOW}, need_lease=True) != 1:
                raise LeaseLost(f"delivery {item.id}: lease expired or taken over")
            _failpoint("after_handoff")

        try:
            channel.send(item.message, handoff)
        except LeaseLost:
            return  # whoever holds it now sends it
        except DeliveryFailed as exc:
            final = self._release(
                item,
                str(exc),
                transient=exc.transient,
                maybe=exc.maybe_delivered,
                retry_after=exc.retry_after,
            )
            (report.failed if final else report.retrying).append(f"{name}: {exc}")
            return
        _failpoint("after_send")
        self._fenced(item, {"status": "sent", "sent_at": NOW, "lease_until": None, "last_error": None})
        report.sent.append(name)

    def _release(
        self,
        item: _Claimed,
        error: str,
        *,
        transient: bool,
        maybe: bool,
        retry_after: timedelta | None = None,
    ) -> bool:
        """Give a failed delivery back for a later retry (exponential backoff), or fail it; True if final.

        ``maybe`` (the receiver may have it) is kept on the row, so the next attempt is marked in doubt.
        """
        final = not transient or item.attempts >= self.settings.max_attempts
        delay = min(self.settings.retry_seconds * 2 ** (item.attempts - 1), 3600.0)
        if retry_after is not None:
            delay = max(delay, retry_after.total_seconds())  # the receiver asked for a pause
        values: dict[str, Any] = {
            "status": "failed" if final else "pending",
            "lease_until": None,
            "claim_token": None,
            "handed_off_at": None,
            "last_error": error[:500],
        }
        if maybe or item.message.in_doubt:
            values["in_doubt"] = True
        d = DELIVERY.c
        with self.store.write() as session:
            now = self.store.db_now(session)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            session.execute(
                update(DELIVERY).where(d.id == item.id, d.claim_token == item.token).values(**values)
            )
        return final
