"""Deliveries breach did not make itself: recorded by the operator, with their evidence.

Not every recipient is reached by email. A person who chose SMS gets the rendered ``.sms`` text through
the firm's SMS gateway, a client company that chose post gets the printed letter, people nobody can
reach individually are told by public announcement (PIPL Art 57 allows it). :func:`record_deliveries`
records such deliveries (or failed attempts) against the notice documents breach rendered, so the
record says exactly what each person was sent (its sha256) and on what evidence (a gateway batch id, a
registered-mail number, where the announcement was published).

:func:`resolve_deliveries` settles the email deliveries breach itself could not settle: one held *in
doubt* after a crash (``[notices] in_doubt = "hold"``), which the operator checked in the mail server's
log and marks delivered, or asks to be sent again; and one that failed for good, which can be retried.

Each call changes its rows and appends one audit event in one transaction (counts and the reference,
never names or addresses); then the notice tasks complete if everyone is now notified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session

from engine.documents.registry import DOCUMENT
from engine.errors import BadInput, Conflict, NotAllowed
from engine.incidents.audit import append_event
from engine.incidents.hooks import Hooks
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.steptime import check_step_time
from engine.incidents.tables import Incident
from engine.notices.completion import complete_notice_tasks
from engine.notices.delivery import DELIVERY, DONE
from engine.notices.passes import AUDIENCE, CHANNEL_FORMATS
from engine.notices.people import PERSON
from engine.store.db import Store, changed_rows

__all__ = ["OUTCOMES", "RECORDABLE", "Recorded", "record_deliveries", "resolve_deliveries"]

# Email is breach's own channel: ``breach notices send`` makes and records those deliveries.
RECORDABLE = tuple(ch for ch in CHANNEL_FORMATS if ch != "email")
OUTCOMES = ("delivered", "resend")
KIND_OF = {audience: kind for kind, audience in AUDIENCE.items()}
_SHOWN = 5  # customer ids named in an error; the rest are counted


@dataclass
class Recorded:
    """What a record or resolve call did; customer ids only, for the operator's screen."""

    incident_id: str
    action: str
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    tasks: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape ``--json`` prints."""
        return {
            "incident": self.incident_id,
            "action": self.action,
            "changed": len(self.changed),
            "unchanged": self.unchanged,
            "tasks": self.tasks,
        }


def _named(ids: list[str]) -> str:
    more = len(ids) - _SHOWN
    return ", ".join(ids[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _text(value: str | None, option: str, limit: int, *, required: bool) -> str | None:
    text = " ".join((value or "").split())
    if required and not text:
        raise BadInput(
            f"{option} is required: the evidence of the delivery (a batch id, a tracking number, ...)"
        )
    if len(text) > limit:
        raise BadInput(f"{option} is longer than {limit} characters")
    return text or None


def _people(
    session: Session, incident_id: str, customers: list[str] | None, channel: str | None
) -> list[Any]:
    """The recipients asked for, by customer id, or every recipient of ``channel``; unknown ids refused."""
    p = PERSON.c
    query = select(p.id, p.customer_id, p.type, p.channel, p.locale).where(p.incident_id == incident_id)
    if customers:
        wanted = list(dict.fromkeys(c.strip() for c in customers if c.strip()))
        rows = session.execute(query.where(p.customer_id.in_(wanted))).all()
        unknown = sorted(set(wanted) - {r.customer_id for r in rows})
        if unknown:
            raise BadInput(
                f"{incident_id} has no recipient {_named(unknown)} (breach people list shows them)"
            )
        return sorted(rows, key=lambda r: wanted.index(r.customer_id))
    rows = session.execute(query.where(p.channel == channel).order_by(p.id)).all()
    if not rows:
        raise BadInput(f"no recipient of {incident_id} has the channel {channel}")
    return list(rows)


def _audit(
    session: Session,
    incident: Incident,
    action: str,
    inputs: dict[str, Any],
    actor: str,
    at: Any,
    *,
    occurred_at: datetime | None = None,
    reason: str | None = None,
) -> None:
    """Append the call's audit event and write; a concurrent change of the incident is a conflict."""
    append_event(
        session,
        incident,
        kind=action,
        actor=actor,
        at=at,
        from_state=incident.state,
        to_state=incident.state,
        inputs=inputs,
        occurred_at=occurred_at,
        reason=(reason or "").strip() or None if occurred_at is not None else None,
    )
    flush_or_conflict(session, incident.id)


def _open(delivery: Any) -> bool:
    """Whether a notice still has to be recorded: no delivery yet, or one not done."""
    return delivery is None or delivery.status not in DONE


def _documents(
    session: Session, incident_id: str, channel: str, fmt: str, people: list[Any]
) -> dict[int, list[Any]]:
    """The documents each recipient is sent by ``channel``: their notice and any correction notices, or,
    for the public channel, the latest announcement in their language (the workspace's when none)."""
    d = DOCUMENT.c
    found: dict[int, list[Any]] = {}
    if channel == "public":
        rows = session.execute(
            select(d.id, d.kind, d.sha256, d.version, d.subject)
            .where(d.incident_id == incident_id, d.kind == "public_notice", d.fmt == fmt)
            .order_by(d.version.desc(), d.id)
        ).all()
        if rows:
            latest = [r for r in rows if r.version == rows[0].version]
            for person in people:
                mine = [r for r in latest if r.subject.endswith(f"-{person.locale}")] or latest[:1]
                found[person.id] = mine
        return found
    for row in session.execute(
        select(d.id, d.kind, d.sha256, d.version, d.person_id)
        .where(
            d.incident_id == incident_id,
            d.fmt == fmt,
            d.kind.in_((*KIND_OF.values(), "correction_notice")),
            d.person_id.in_([r.id for r in people]),
        )
        .order_by(d.version, d.id)
    ):
        found.setdefault(int(row.person_id), []).append(row)
    return found


def record_deliveries(
    store: Store,
    incident_id: str,
    *,
    channel: str,
    reference: str | None,
    actor: str,
    hooks: Hooks,
    customers: list[str] | None = None,
    failed: str | None = None,
    at: datetime | None = None,
    at_reason: str | None = None,
    zone: str = "UTC",
) -> Recorded:
    """Record that the rendered notices went out by ``channel`` (or, with ``failed``, that sending failed).

    Without ``customers``, every recipient whose channel is ``channel``. Each must have its notice
    rendered in the channel's format; a recipient already recorded as notified is left as it is.
    All or nothing: one unknown or unrendered recipient refuses the whole call. ``at`` is when they
    really went out (``--at``; ``at_reason`` explains a time over a day back): the deliveries, the
    audit event and the notice tasks it completes take it.
    """
    if channel not in RECORDABLE:
        if channel == "email":
            raise BadInput("email deliveries are made and recorded by 'breach notices send'")
        raise BadInput(f"--channel {channel!r} is not one of {', '.join(RECORDABLE)}")
    ref = _text(reference, "--ref", 200, required=failed is None)
    reason = _text(failed, "--failed", 500, required=False)
    fmt = CHANNEL_FORMATS[channel]
    action = "notices_recorded"
    c = DELIVERY.c
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        people = _people(session, incident_id, customers, channel)
        docs = _documents(session, incident_id, channel, fmt, people)
        unrendered = [r.customer_id for r in people if not docs.get(r.id)]
        if unrendered:
            kind = "--kind public_notice " if channel == "public" else ""
            raise BadInput(
                f"no {fmt} notice rendered for {_named(unrendered)}: run "
                f"'breach notices render {incident_id} {kind}--format {fmt}' first"
            )
        existing = {
            (row.person_id, row.version): row
            for row in session.execute(
                select(c.id, c.person_id, c.status, c.version).where(
                    c.incident_id == incident_id,
                    c.channel == channel,
                    c.person_id.in_([r.id for r in people]),
                )
            )
        }
        now = store.db_now(session)
        if at is not None:
            check_step_time(at, now=now, discovered_at=incident.discovered_at, zone=zone, reason=at_reason)
        sent_at = at or now
        outcome = Recorded(incident_id, action)
        status = "failed" if reason else "sent"
        for person in people:
            owed = [doc for doc in docs[person.id] if _open(existing.get((person.id, doc.version)))]
            if not owed:
                outcome.unchanged.append(person.customer_id)
                continue
            for doc in owed:
                before = existing.get((person.id, doc.version))
                values: dict[str, Any] = {
                    "status": status,
                    "sent_at": None if reason else sent_at,
                    "sent_to": None if reason else ("drill" if incident.drill else "recipient"),
                    "sent_sha256": None if reason else doc.sha256,
                    "last_error": reason,
                    "reference": ref,
                    "recorded_by": actor[:64],
                    "document_id": doc.id,
                }
                if before is None:
                    tag = "" if doc.version == 1 else f".v{doc.version}"
                    session.execute(
                        insert(DELIVERY).values(
                            incident_id=incident_id,
                            person_id=person.id,
                            # The announcement is how these people get their notice: it fulfils that task.
                            kind=KIND_OF[person.type] if doc.kind == "public_notice" else doc.kind,
                            channel=channel,
                            version=doc.version,
                            message_id=f"<{channel}.{person.id}{tag}.{incident_id}@breach.invalid>",
                            attempts=1,
                            in_doubt=False,
                            next_attempt_at=now,
                            created_at=now,
                            **values,
                        )
                    )
                else:
                    changed = changed_rows(
                        session.execute(
                            update(DELIVERY)
                            .where(c.id == before.id, c.status == before.status)
                            .values(attempts=c.attempts + 1, **values)
                        )
                    )
                    if changed != 1:
                        raise Conflict(f"a delivery of {incident_id} changed meanwhile: try again")
            outcome.changed.append(person.customer_id)
        if outcome.changed:
            inputs = {
                "channel": channel,
                "status": status,
                "recipients": len(outcome.changed),
                "reference": ref,
            }
            _audit(session, incident, action, inputs, actor, now, occurred_at=at, reason=at_reason)
    if outcome.changed and not reason:
        outcome.tasks = complete_notice_tasks(
            store, incident_id, actor=actor, hooks=hooks, at=at, reason=at_reason, zone=zone
        )
    return outcome


def resolve_deliveries(
    store: Store,
    incident_id: str,
    *,
    outcome: str,
    reference: str | None,
    actor: str,
    hooks: Hooks,
    customers: list[str] | None = None,
) -> Recorded:
    """Settle email deliveries held in doubt (``delivered`` or ``resend``) or failed (``resend``).

    Without ``customers``, every email delivery of the incident held in doubt.
    """
    if outcome not in OUTCOMES:
        raise BadInput(f"the outcome must be one of {', '.join(OUTCOMES)}")
    ref = _text(reference, "--ref", 200, required=outcome == "delivered")
    action = "deliveries_resolved"
    c, p = DELIVERY.c, PERSON.c
    settle = ("in_doubt",) if outcome == "delivered" else ("in_doubt", "failed")
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        query = (
            select(c.id, c.status, c.document_id, p.customer_id, DOCUMENT.c.sha256)
            .join(PERSON, p.id == c.person_id)
            .join(DOCUMENT, DOCUMENT.c.id == c.document_id)
            .where(c.incident_id == incident_id, c.channel == "email")
            .order_by(c.id)
        )
        if customers:
            people = {r.customer_id for r in _people(session, incident_id, customers, None)}
            rows = session.execute(query.where(p.customer_id.in_(people))).all()
            unsent = sorted(people - {r.customer_id for r in rows})
            if unsent:
                raise NotAllowed(f"no email delivery of {_named(unsent)} to resolve (breach notices status)")
            wrong = [f"{r.customer_id} is {r.status}" for r in rows if r.status not in settle]
            if wrong:
                can = " or ".join(settle)
                raise NotAllowed(f"only deliveries {can} can be marked {outcome}: {_named(wrong)}")
        else:
            rows = session.execute(query.where(c.status == "in_doubt")).all()
            if not rows:
                raise NotAllowed(f"{incident_id} has no delivery held in doubt")
        now = store.db_now(session)
        result = Recorded(incident_id, action)
        for row in rows:
            values: dict[str, Any] = {
                "resolution": outcome,
                "reference": ref,
                "recorded_by": actor[:64],
                "claim_token": None,
                "lease_until": None,
                "handed_off_at": None,
            }
            if outcome == "delivered":
                values.update(
                    status="sent",
                    sent_at=now,
                    sent_to="drill" if incident.drill else "recipient",
                    sent_sha256=row.sha256,
                    last_error=None,
                )
            else:
                # A fresh round of attempts; one in doubt keeps its flag, so it goes out marked as a resend.
                values.update(status="pending", next_attempt_at=now, attempts=0)
            changed = changed_rows(
                session.execute(update(DELIVERY).where(c.id == row.id, c.status == row.status).values(values))
            )
            if changed != 1:
                raise Conflict(f"a delivery of {incident_id} changed meanwhile: try again")
            result.changed.append(row.customer_id)
        inputs = {"outcome": outcome, "deliveries": len(result.changed), "reference": ref}
        _audit(session, incident, action, inputs, actor, now)
    if outcome == "delivered":
        result.tasks = complete_notice_tasks(store, incident_id, actor=actor, hooks=hooks)
    return result
