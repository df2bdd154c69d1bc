"""Emailing the rendered notices: exactly one delivery per person, rate-limited, retried with backoff.

The deliveries are rows of the ``delivery`` table (:mod:`engine.notices.delivery`).

How "exactly once" is achieved, and where it honestly stops
-----------------------------------------------------------
The pattern is the escalation outbox's (:mod:`engine.deadlines.escalation`), applied to people:

1. **Deciding**: one ``delivery`` row per (incident, person, channel), unique, inserted with
   ``ON CONFLICT DO NOTHING`` from the recorded ``.eml`` documents. Its ``message_id`` is the
   document's ``Message-ID``, stable per (incident, person): the content is frozen at the first render.
2. **Claiming**: ``UPDATE delivery SET status='sending', claim_token=<new>, lease_until=now+lease
   WHERE id=? AND status=<seen> AND claim_token=<seen>`` (plus ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL): one sender wins. The token names its host and process, so a row claimed by a process
   of this host that has died is taken over at once instead of after the lease.
3. **Hand-off**: just before DATA the sender commits ``handed_off_at``, fenced by its token and an
   unexpired lease; after the server accepts, it marks the row ``sent``.
4. **Crash recovery**: killed before the hand-off, the server never had the message: it is sent once
   by the next run. Killed *after* the hand-off and before ``sent`` was committed (one DATA exchange and
   one commit), nobody can know whether the server accepted it. Such a delivery is *in doubt*: with
   ``[notices] in_doubt = "resend"`` (the default: a repeated notice beats a missing one) it is sent again
   with the **same Message-ID** and an ``X-Breach-Delivery`` header saying so; mail systems that
   deduplicate by Message-ID collapse it. With ``"hold"`` it is never re-sent but kept as ``in_doubt``
   for a person to check. Every other crash point recovers without a duplicate.

In a drill, no person's address is ever used: the message goes to ``[notices] drill_recipient`` (To
rewritten, envelope too), or, without one, the delivery is recorded as ``drill_skipped``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Row, func, select, update

from engine.deadlines.escalation import FAILPOINT_ENV
from engine.documents.registry import DOCUMENT
from engine.notices.delivery import DELIVERY
from engine.notices.outage import Outage
from engine.notices.outgoing import outgoing
from engine.notices.people import PERSON
from engine.notices.settings import NoticeSettings
from engine.outbox.channels import DeliveryFailed, LeaseLost
from engine.outbox.leases import NOW, fenced_update, take_claim
from engine.outbox.smtp import Mailer, Pace, ServerUnavailable
from engine.store.db import Store

__all__ = ["SendReport", "Sender"]

_HOST = socket.gethostname()[:40]


def _failpoint(name: str) -> None:
    """Die here, as a crash would, when a test asks for it (``BREACH_FAILPOINT=<name>``)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os._exit(75)


@dataclass
class SendReport:
    """What one send run did, by outcome (people named by customer id only)."""

    sent: int = 0
    drill_skipped: int = 0
    resent_in_doubt: int = 0
    held: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy: int = 0  # claimed by another live process
    unreachable: str = ""  # why the run stopped early: the mail server could not be reached


@dataclass
class _Claimed:
    id: int
    token: str
    attempts: int
    in_doubt: bool
    message_id: str
    customer_id: str
    email: str
    path: str
    sha256: str


def _dead_local_owner(token: str | None) -> bool:
    """Whether ``token`` was taken by a process of this host that no longer exists."""
    host, _, rest = (token or "").partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Sender:
    """Claims and sends the due deliveries of one incident (see the module docstring)."""

    def __init__(
        self, store: Store, settings: NoticeSettings, mailer: Mailer, *, envelope_sender: str, drill: bool
    ) -> None:
        self.store = store
        self.settings = settings
        self.mailer = mailer
        self.envelope_sender = envelope_sender
        self.drill = drill
        self.pace = Pace(settings.rate_per_second)
        # A claim must not outlive its lease: take no more than can be sent in half of it.
        self.claim_size = max(
            1, min(settings.batch_size, int(settings.rate_per_second * settings.lease_seconds / 2))
        )

    def run(
        self,
        incident_id: str,
        report: SendReport,
        on_advance: Callable[[int], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        """Send until nothing is due; wait for retries up to ``max_wait_seconds`` in all, and for a mail
        server out of reach up to ``give_up_seconds`` (see :mod:`engine.notices.outage`).

        ``on_advance`` counts deliveries settled (sent, failed, held, taken by another sender), never a
        retry, so a progress bar ends at its total; ``on_problem`` hears of an unreachable server once.
        """
        waited = 0.0
        outage = Outage(self.settings.give_up_seconds, on_problem)
        try:
            while True:
                held = len(report.held)
                claimed = self._claim(incident_id, report)
                if on_advance and len(report.held) > held:
                    on_advance(len(report.held) - held)
                for index, item in enumerate(claimed):
                    try:
                        settled = self._send(item, report)
                    except ServerUnavailable as exc:
                        self._give_back(claimed[index:], str(exc))
                        if not outage.wait(exc):
                            report.unreachable = str(exc)
                            return
                        break
                    outage.over()
                    if on_advance and settled:
                        on_advance(1)
                if claimed:
                    continue
                delay = self._next_retry_in(incident_id)
                if delay is None or waited + delay > self.settings.max_wait_seconds:
                    report.busy = self._busy(incident_id)
                    return
                self.mailer.close()
                time.sleep(delay)
                waited += delay
        finally:
            self.mailer.close()

    def _give_back(self, items: list[_Claimed], error: str) -> None:
        """Return claimed deliveries to the queue as they were: the server, not the recipient, failed,
        so the attempt is not counted and the next run sends each of them once."""
        c = DELIVERY.c
        with self.store.write() as session:
            now = self.store.db_now(session)
            for item in items:
                session.execute(
                    update(DELIVERY)
                    .where(c.id == item.id, c.claim_token == item.token)
                    .values(
                        status="pending",
                        attempts=c.attempts - 1,
                        lease_until=None,
                        claim_token=None,
                        handed_off_at=None,
                        next_attempt_at=now,
                        last_error=error[:500],
                    )
                )

    def _busy(self, incident_id: str) -> int:
        """Deliveries another live sender holds right now."""
        c = DELIVERY.c
        with self.store.read() as session:
            now = self.store.db_now(session)
            return int(
                session.execute(
                    select(func.count()).where(
                        c.incident_id == incident_id, c.status == "sending", c.lease_until > now
                    )
                ).scalar_one()
            )

    def _next_retry_in(self, incident_id: str) -> float | None:
        c = DELIVERY.c
        with self.store.read() as session:
            now = self.store.db_now(session)
            due = session.execute(
                select(func.min(c.next_attempt_at)).where(c.incident_id == incident_id, c.status == "pending")
            ).scalar_one()
        return None if due is None else max(0.0, (due - now).total_seconds()) + 0.05

    def _claim(self, incident_id: str, report: SendReport) -> list[_Claimed]:
        c, p, d = DELIVERY.c, PERSON.c, DOCUMENT.c
        pg = self.store.engine.dialect.name == "postgresql"
        claimed: list[_Claimed] = []
        with self.store.write() as session:
            now = self.store.db_now(session)
            query = (
                select(
                    c.id,
                    c.status,
                    c.claim_token,
                    c.handed_off_at,
                    c.in_doubt,
                    c.attempts,
                    c.message_id,
                    c.lease_until,
                    c.resolution,
                    p.customer_id,
                    p.email,
                    d.path,
                    d.sha256,
                )
                .join(PERSON, p.id == c.person_id)
                .join(DOCUMENT, d.id == c.document_id)
                .where(c.incident_id == incident_id)
                .order_by(c.id)
                .limit(self.claim_size)
            )
            due = ((c.status == "pending") & (c.next_attempt_at <= now)) | (
                (c.status == "sending") & (c.lease_until <= now)
            )
            # Rows still leased by a process of this host: taken over at once if that process is dead.
            orphaned = (c.status == "sending") & (c.lease_until > now) & c.claim_token.like(f"{_HOST}:%")
            found: list[Row[Any]] = []
            for condition in (due, orphaned):
                query_now = query.where(condition)
                found += session.execute(
                    query_now.with_for_update(skip_locked=True, of=DELIVERY) if pg else query_now
                ).all()
            for row in found:
                if (
                    row.status == "sending"
                    and row.lease_until > now
                    and not _dead_local_owner(row.claim_token)
                ):
                    continue
                in_doubt = bool(row.in_doubt) or (row.status == "sending" and row.handed_off_at is not None)
                # An operator who checked and asked for a resend has lifted the hold for this row.
                hold = in_doubt and self.settings.in_doubt == "hold" and row.resolution != "resend"
                token = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:16]}"
                won = take_claim(
                    session,
                    DELIVERY,
                    row,
                    token,
                    now,
                    in_doubt=in_doubt,
                    lease_seconds=self.settings.lease_seconds,
                    settle="in_doubt" if hold else None,
                )
                if not won:
                    continue
                if hold:
                    report.held.append(row.customer_id)
                    continue
                report.resent_in_doubt += in_doubt
                claimed.append(
                    _Claimed(
                        row.id,
                        token,
                        int(row.attempts) + 1,
                        in_doubt,
                        row.message_id,
                        row.customer_id,
                        row.email,
                        row.path,
                        row.sha256,
                    )
                )
        _failpoint("notices_after_claim")
        return claimed

    def _fenced(self, item: _Claimed, values: dict[str, Any], *, need_lease: bool = False) -> int:
        return fenced_update(
            self.store,
            DELIVERY,
            item.id,
            item.token,
            values,
            lease_seconds=self.settings.lease_seconds,
            hand_off=need_lease,
        )

    def _content(self, item: _Claimed) -> tuple[bytes, str]:
        """The bytes to send and the envelope recipient (see :func:`engine.notices.outgoing.outgoing`)."""
        return outgoing(
            Path(item.path),
            item.sha256,
            item.email,
            drill_recipient=self.settings.drill_recipient if self.drill else None,
            in_doubt=item.in_doubt,
        )

    def _send(self, item: _Claimed, report: SendReport) -> bool:
        """Send one claimed delivery; True once it is settled (sent, failed for good, or not ours)."""
        try:
            content, recipient = self._content(item)

            def handoff() -> None:
                if self._fenced(item, {"handed_off_at": NOW}, need_lease=True) != 1:
                    raise LeaseLost(f"delivery {item.id}: lease expired or taken over")
                _failpoint("notices_after_handoff")

            self.pace.wait()
            self.mailer.send(self.envelope_sender, recipient, content, handoff)
        except LeaseLost:
            return True  # whoever holds it now sends it
        except ServerUnavailable:
            raise  # no recipient can be reached: the run pauses (see run)
        except DeliveryFailed as exc:
            final = self._release(item, str(exc), transient=exc.transient, maybe=exc.maybe_delivered)
            (report.failed if final else report.retrying).append(f"{item.customer_id}: {exc}")
            return final
        _failpoint("notices_after_send")
        self._fenced(
            item,
            {
                "status": "sent",
                "sent_at": NOW,
                "lease_until": None,
                "last_error": None,
                "sent_to": "drill" if self.drill else "recipient",
                "sent_sha256": hashlib.sha256(content).hexdigest(),
            },
        )
        report.sent += 1
        return True

    def _release(self, item: _Claimed, error: str, *, transient: bool, maybe: bool) -> bool:
        """Give a failed delivery back for a retry with exponential backoff, or fail it; True if final."""
        final = not transient or item.attempts >= self.settings.max_attempts
        delay = min(self.settings.retry_seconds * 2 ** (item.attempts - 1), 3600.0)
        values: dict[str, Any] = {
            "status": "failed" if final else "pending",
            "lease_until": None,
            "claim_token": None,
            "handed_off_at": None,
            "last_error": error[:500],
        }
        if maybe or item.in_doubt:
            values["in_doubt"] = True
        c = DELIVERY.c
        with self.store.write() as session:
            now = self.store.db_now(session)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            session.execute(
                update(DELIVERY).where(c.id == item.id, c.claim_token == item.token).values(values)
            )
        return final
