"""The deadline checker: one scan warns before deadlines, escalates missed ones and lists what is overdue.

A scan (``breach deadlines check``, or each tick of ``breach scheduler run``):

1. reads the database's ``now()``, so checkers on several machines agree on the time;
2. finds the deadlines whose ``next_check_at`` has come: one range of one index, however many
   deadlines are pending (:func:`find_due`);
3. for each, decides the alert (:func:`decide`: the latest warning point passed, or ``missed`` once
   due) and, with a compare-and-set on the row's version, moves it on and writes the outbox row in the
   same transaction; PostgreSQL also skips rows another checker holds (``FOR UPDATE SKIP LOCKED``);
4. delivers the outbox (:class:`engine.deadlines.escalation.Outbox`);
5. lists the deadlines that are overdue and the deliveries that need a person.

Several checkers may run at once: each alert is still decided and delivered once per channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, select, text, union_all, update
from sqlmodel import Session

from engine.clocks.durations import format_instant
from engine.deadlines.escalation import (
    DEADLINE,
    DELIVERY,
    ESCALATION,
    DeliveryReport,
    EscalationSettings,
    Outbox,
    enqueue,
)
from engine.deadlines.policy import AlertPolicy, missed_alert
from engine.incidents.tables import Incident
from engine.store.db import Store, UTCDateTime, changed_rows, table_of

__all__ = ["Decision", "DueRow", "ScanReport", "advance_due", "decide", "find_due", "overdue", "scan"]

INCIDENT: Table = table_of(Incident)
ACTIVE = ("pending", "warned", "missed")
# The scan's hot query, one index range (ix_deadline_next_check_at). Only the bound moment goes through
# our column type; results are read plainly and converted below, because the generic per-value result
# processing (regex date parsing, JSON) costs three times the query itself on 1,000 rows.
_DUE_SQL = (
    "SELECT id, status, version, alert_round, due_at, next_check_at, warnings, missed_at FROM deadline "
    "WHERE next_check_at <= :now ORDER BY next_check_at LIMIT :limit"
)
_DUE = text(_DUE_SQL).bindparams(bindparam("now", type_=UTCDateTime()))
_DUE_LOCKED = text(_DUE_SQL + " FOR UPDATE SKIP LOCKED").bindparams(bindparam("now", type_=UTCDateTime()))


class DueRow(NamedTuple):
    """A deadline whose next check has come; ``warnings`` stays JSON text until a decision needs it."""

    id: int
    status: str
    version: int
    alert_round: int
    due_at: datetime
    next_check_at: datetime
    warnings: Any
    missed_at: datetime | None = None


def _utc(value: Any) -> datetime:
    # SQLite hands back the stored text, PostgreSQL a naive timestamp; both are UTC. Parsing the text
    # with its offset appended is five times faster than datetime.replace(tzinfo=...) on the result.
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    moment: datetime = value.replace(tzinfo=UTC)
    return moment


def find_due(session: Session, now: datetime, limit: int, *, skip_locked: bool = False) -> list[DueRow]:
    """Deadlines whose next check has come, earliest first: what one scan works on."""
    result = session.execute(_DUE_LOCKED if skip_locked else _DUE, {"now": now, "limit": limit})
    make, utc = DueRow._make, _utc  # _make skips the keyword handling of DueRow(...): half the cost per row
    return [
        make((i, st, v, r, utc(d), utc(n), w, None if m is None else utc(m)))
        for i, st, v, r, d, n, w, m in result.all()
    ]


def _warnings(value: Any) -> list[dict[str, Any]]:
    return list(json.loads(value) if isinstance(value, str | bytes) else value or [])


@dataclass(frozen=True)
class Decision:
    """What a scan does with one due deadline: the alert to record (if any) and where the row goes."""

    kind: str | None
    status: str
    next_check_at: datetime | None
    skipped: list[str] = field(default_factory=list)
    level: int = 1
    repeat: int = 0


def decide(
    *,
    status: str,
    due_at: datetime,
    next_check_at: datetime,
    warnings: list[dict[str, Any]],
    alert_round: int,
    now: datetime,
    missed_at: datetime | None = None,
    policy: AlertPolicy | None = None,
) -> Decision:
    """The alert a deadline owes at ``now``.

    Once due, only missed-deadline alerts are sent: the first, then per ``policy`` its repeats and the
    levels it climbs (:mod:`engine.deadlines.policy`). Before that, only the latest warning point passed
    since the last check is sent: warnings a stopped checker slept through are skipped, not sent in a
    burst. A due time that was recomputed starts a new round, whose kinds carry ``@r<round>``.
    """
    suffix = "" if alert_round <= 1 else f"@r{alert_round}"
    if due_at <= now:
        first = status != "missed"
        passed = [w["kind"] for w in warnings if first and next_check_at <= datetime.fromisoformat(w["at"])]
        alert = missed_alert(
            policy or AlertPolicy.single([]),
            due_at=due_at,
            missed_at=now if first or missed_at is None else missed_at,
            now=now,
            alert_round=alert_round,
        )
        return Decision(alert.kind, "missed", alert.next_check_at, passed, alert.level, alert.repeat)
    points = [(w["kind"], datetime.fromisoformat(w["at"])) for w in warnings]
    passed = [kind for kind, at in points if next_check_at <= at <= now]
    upcoming = min((at for _, at in points if at > now), default=due_at)
    if passed:
        return Decision(f"{passed[-1]}{suffix}", "warned", upcoming, passed[:-1])
    return Decision(None, status, upcoming)


def _payload(
    session: Session, deadline_id: int, decision: Decision, now: datetime, zone: str, level_name: str
) -> dict[str, Any]:
    """What the alert says, fixed once: every channel and every re-send render this same content."""
    row = session.execute(
        select(
            DEADLINE.c.incident_id,
            DEADLINE.c.rule_id,
            DEADLINE.c.subject,
            DEADLINE.c.labels,
            DEADLINE.c.basis,
            DEADLINE.c.due_at,
            DEADLINE.c.provisional,
            DEADLINE.c.alert_round,
            INCIDENT.c.title,
            INCIDENT.c.drill,
        )
        .join(INCIDENT, INCIDENT.c.id == DEADLINE.c.incident_id)
        .where(DEADLINE.c.id == deadline_id)
    ).one()
    return {
        "deadline_id": deadline_id,
        "incident_id": row.incident_id,
        "incident_title": row.title,
        "drill": bool(row.drill),
        "rule": row.rule_id,
        "subject": row.subject,
        "labels": dict(row.labels),
        "basis": dict(row.basis),
        "due_at": format_instant(row.due_at, zone),
        "provisional": bool(row.provisional),
        "status": decision.status,
        "round": row.alert_round,
        "level": decision.level,
        "level_name": level_name,
        "repeat": decision.repeat,
        "created_at": now.isoformat(),
    }


def advance_due(
    store: Store,
    settings: EscalationSettings,
    channels: list[str],
    *,
    zone: str,
    batch: int,
    domain: str,
    policy: AlertPolicy | None = None,
) -> list[dict[str, Any]]:
    """Claim every due deadline once and write its alert to the outbox; return the alerts written.

    Without ``policy`` every alert goes to ``channels`` once (no repeats, one level).
    """
    policy = policy or AlertPolicy.single(channels)
    alerts: list[dict[str, Any]] = []
    pg = store.engine.dialect.name == "postgresql"
    while True:
        with store.write() as session:
            now = store.db_now(session)
            rows = find_due(session, now, batch, skip_locked=pg)
            progressed = 0
            for row in rows:
                decision = decide(
                    status=row.status,
                    due_at=row.due_at,
                    next_check_at=row.next_check_at,
                    warnings=_warnings(row.warnings),
                    alert_round=row.alert_round,
                    now=now,
                    missed_at=row.missed_at,
                    policy=policy,
                )
                values: dict[str, Any] = {
                    "status": decision.status,
                    "next_check_at": decision.next_check_at,
                    "version": DEADLINE.c.version + 1,
                    "updated_at": now,
                }
                if decision.status == "missed" and row.status != "missed":
                    values["missed_at"] = now
                won = changed_rows(
                    session.execute(
                        update(DEADLINE)
                        .where(
                            DEADLINE.c.id == row.id,
                            DEADLINE.c.version == row.version,
                            DEADLINE.c.status == row.status,
                        )
                        .values(**values)
                    )
                )
                if won != 1:
                    continue  # another checker or an operator changed it since we read it
                progressed += 1
                if decision.kind is None:
                    continue
                level = policy.level(decision.level)
                payload = _payload(session, row.id, decision, now, zone, level.name)
                # A drill rehearses the process: its alerts go to the log only, never to real people.
                targets = ["log"] if payload["drill"] else list(level.channels)
                if enqueue(
                    session,
                    deadline_id=row.id,
                    incident_id=payload["incident_id"],
                    kind=decision.kind,
                    payload=payload,
                    channels=targets,
                    now=now,
                    domain=domain,
                ):
                    alerts.append(
                        {
                            "deadline_id": row.id,
                            "incident_id": payload["incident_id"],
                            "rule": payload["rule"],
                            "subject": payload["subject"],
                            "kind": decision.kind,
                            "skipped": decision.skipped,
                            "due_at": payload["due_at"],
                            "remaining_seconds": int((row.due_at - now).total_seconds()),
                            "label": payload["labels"].get("zh-CN", ""),
                            "basis": payload["basis"],
                            "level": decision.level,
                            "repeat": decision.repeat,
                            "channels": targets,
                        }
                    )
        if len(rows) < batch or progressed == 0:
            return alerts


def overdue(session: Session, now: datetime) -> list[Any]:
    """Deadlines past due and neither met nor waived (missed ones stay until met or waived).

    Two index ranges, never the whole table: missed rows through the partial index on missed ones,
    and rows not yet marked missed through ``next_check_at`` (always at or before their due time).
    """
    columns = (
        DEADLINE.c.id,
        DEADLINE.c.incident_id,
        DEADLINE.c.rule_id,
        DEADLINE.c.subject,
        DEADLINE.c.kind,
        DEADLINE.c.status,
        DEADLINE.c.due_at,
        DEADLINE.c.basis,
    )
    missed = select(*columns).where(DEADLINE.c.status == "missed", DEADLINE.c.due_at <= now)
    unmarked = select(*columns).where(
        DEADLINE.c.next_check_at <= now,
        DEADLINE.c.due_at <= now,
        DEADLINE.c.status.in_(("pending", "warned")),
    )
    # One statement, so both ranges are read from one snapshot: as two, a checker committing between
    # them (pending -> missed) would hide a deadline from both on PostgreSQL.
    rows = list(session.execute(union_all(missed, unmarked)).all())
    return sorted(rows, key=lambda r: (r.due_at, r.id))


@dataclass
class ScanReport:
    """What one scan did and found."""

    checked_at: datetime
    alerts: list[dict[str, Any]]
    delivery: DeliveryReport
    overdue: list[dict[str, Any]]
    attention: list[dict[str, Any]]

    def to_json(self, zone: str) -> dict[str, Any]:
        """The ``breach deadlines check --json`` object."""
        d = self.delivery
        return {
            "checked_at": format_instant(self.checked_at, zone),
            "alerts": self.alerts,
            "deliveries": {
                "sent": len(d.sent),
                "retrying": len(d.retrying),
                "failed": len(d.failed),
                "cancelled": len(d.cancelled),
                "held_in_doubt": len(d.held),
                "resent_in_doubt": len(d.resent_in_doubt),
                "problems": d.failed + d.retrying,
            },
            "overdue": self.overdue,
            "needs_attention": self.attention,
        }


def scan(
    store: Store,
    settings: EscalationSettings,
    channels: dict[str, Any],
    *,
    zone: str,
    batch: int = 500,
    domain: str = "breach.invalid",
    policy: AlertPolicy | None = None,
) -> ScanReport:
    """One full scan: alerts decided and written, the outbox delivered, the overdue listed."""
    alerts = advance_due(
        store, settings, list(channels), zone=zone, batch=batch, domain=domain, policy=policy
    )
    delivery = Outbox(store, settings, channels).deliver()
    with store.read() as session:
        now = store.db_now(session)
        late = [
            {
                "deadline_id": r.id,
                "incident_id": r.incident_id,
                "rule": r.rule_id,
                "subject": r.subject,
                "kind": r.kind,
                "status": r.status,
                "due_at": format_instant(r.due_at, zone),
                "overdue_seconds": int((now - r.due_at).total_seconds()),
                "basis": dict(r.basis),
            }
            for r in overdue(session, now)
        ]
        held = session.execute(
            select(
                DELIVERY.c.id,
                DELIVERY.c.channel,
                DELIVERY.c.status,
                DELIVERY.c.last_error,
                ESCALATION.c.kind,
                ESCALATION.c.incident_id,
            )
            .join(ESCALATION, ESCALATION.c.id == DELIVERY.c.escalation_id)
            .where(DELIVERY.c.status.in_(("in_doubt", "failed")))
            .order_by(DELIVERY.c.id)
        ).all()
        attention = [
            {
                "delivery_id": h.id,
                "incident_id": h.incident_id,
                "kind": h.kind,
                "channel": h.channel,
                "status": h.status,
                "error": h.last_error,
            }
            for h in held
        ]
    return ScanReport(now, alerts, delivery, late, attention)
