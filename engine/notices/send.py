"""A mailing: sending an incident's notices to everyone whose channel is email, start to finish.

``send_notices`` renders the missing ``.eml`` notices (resumable, see :mod:`engine.notices.render`), creates
one delivery per recipient, sends them (see :mod:`engine.notices.sender`), and when every recipient has been
notified (by email, or by SMS, post or announcement recorded with :mod:`engine.notices.recorded`), completes
the playbook task the notices fulfil (see :mod:`engine.notices.completion`). Each run leaves one audit event
with counts, never names or addresses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import String, func, literal, select
from sqlmodel import Session

from engine.documents.registry import DOCUMENT, insert_ignore
from engine.errors import BadInput, Conflict
from engine.incidents.audit import append_event
from engine.incidents.hooks import Hooks
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.notices.completion import complete_notice_tasks
from engine.notices.delivery import DELIVERY, DONE, EMAILED
from engine.notices.people import PERSON
from engine.notices.render import RenderReport, notice_settings, render_notices
from engine.notices.sender import Sender, SendReport
from engine.outbox.channels import SmtpSettings
from engine.outbox.smtp import Mailer, smtp_password
from engine.store.db import Store, UTCDateTime, utcnow
from engine.workspace import Workspace

__all__ = [
    "MailingReport",
    "delivery_status",
    "doubt_counts",
    "enqueue",
    "require_smtp",
    "send_notices",
    "smtp_settings",
]

SMTP_KEYS = ("host", "sender")
"""What a workspace must set itself before notices go out by email. ``port`` may stay at the SMTP
default (25); the built-in host (127.0.0.1) and sender (breach@localhost) are placeholders that no real
mail server delivers for. ``[notices] envelope_sender`` stands in for ``sender``."""
_EXAMPLES = {"host": "mail.example.cn", "sender": "notices@example.cn"}


def require_smtp(workspace: Workspace) -> None:
    """Refuse at once when the workspace's own settings do not name its mail server.

    Sending with the built-in placeholders retried a server that is not there for minutes, so the
    workspace's own ``config/settings.toml`` must set each of :data:`SMTP_KEYS`.

    :raises BadInput: naming the file, the missing keys and the command that sets them.
    """
    import os

    from engine.workspace import SETTINGS_FILE, read_settings

    path = workspace.home / "config" / SETTINGS_FILE
    local = read_settings(path) if os.path.lexists(path) else {}
    table = local.get("smtp")
    table = table if isinstance(table, dict) else {}
    notices = local.get("notices")
    envelope = isinstance(notices, dict) and bool(notices.get("envelope_sender"))
    missing = [
        key
        for key in SMTP_KEYS
        if not str(table.get(key) or "").strip() and not (key == "sender" and envelope)
    ]
    if missing:
        named = ", ".join(f"smtp.{key}" for key in missing)
        commands = " and ".join(f"'breach config set smtp.{key} {_EXAMPLES[key]}'" for key in missing)
        raise BadInput(
            f"{path} does not name the mail server (missing {named}): notices go out by email only "
            f"once it does; set it with {commands} (smtp.port defaults to 25)"
        )


def smtp_settings(workspace: Workspace) -> SmtpSettings:
    """The ``[smtp]`` table (shared with the escalation channel), checked.

    :raises BadInput: naming the key and the problem.
    """
    try:
        return SmtpSettings.model_validate(workspace.settings.get("smtp", {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"settings.toml [smtp] {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


@dataclass
class MailingReport:
    """What ``breach notices send`` did."""

    incident_id: str
    drill: bool
    rendered: RenderReport
    enqueued: int = 0
    sent: SendReport = field(default_factory=SendReport)
    status: dict[str, dict[str, int]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every email delivery of the incident is sent (or, in a drill, deliberately skipped)."""
        return all(set(counts) <= set(DONE) for counts in self.status.values())

    def to_json(self) -> dict[str, Any]:
        """The shape ``breach notices send --json`` prints."""
        s = self.sent
        return {
            "incident": self.incident_id,
            "drill": self.drill,
            "rendered": self.rendered.rendered,
            "enqueued": self.enqueued,
            "sent": s.sent,
            "drill_skipped": s.drill_skipped,
            "resent_in_doubt": s.resent_in_doubt,
            "held_in_doubt": s.held,
            "retrying": s.retrying,
            "failed": s.failed,
            "busy_elsewhere": s.busy,
            "server_unreachable": s.unreachable or None,
            "deliveries": self.status,
            "tasks": self.tasks,
            "complete": self.complete,
        }


def delivery_status(store: Store, incident_id: str, channel: str | None = None) -> dict[str, dict[str, int]]:
    """Deliveries of the incident per notice kind and status (of one ``channel``, or all)."""
    c = DELIVERY.c
    found: dict[str, dict[str, int]] = {}
    where = [c.incident_id == incident_id] + ([c.channel == channel] if channel else [])
    with store.read() as session:
        get_incident(session, incident_id)
        for kind, status, count in session.execute(
            select(c.kind, c.status, func.count()).where(*where).group_by(c.kind, c.status)
        ):
            found.setdefault(kind, {})[status] = int(count)
    return found


def doubt_counts(store: Store, incident_id: str) -> dict[str, int]:
    """Email deliveries whose arrival nobody can know, per reason.

    ``held``: kept in doubt (``[notices] in_doubt = "hold"``) until an operator checks the mail log;
    ``interrupted``: handed to the mail server by a run that died before recording the answer (the
    next send re-sends or holds them); ``resent``: sent again after such a crash, so the reader may
    have two copies (same Message-ID).
    """
    c = DELIVERY.c
    handed = (c.status == "sending") & c.handed_off_at.is_not(None)
    reasons = {
        "held": c.status == "in_doubt",
        "interrupted": handed,
        "resent": (c.status == "sent") & c.in_doubt.is_(True),
    }
    with store.read() as session:
        return {
            name: int(
                session.execute(
                    select(func.count()).where(c.incident_id == incident_id, condition)
                ).scalar_one()
            )
            for name, condition in reasons.items()
        }


def enqueue(session: Session, incident_id: str, *, drill: bool, drill_recipient: str, now: datetime) -> int:
    """Create the missing deliveries of the incident's email notices; return how many are new."""
    d, p = DOCUMENT.c, PERSON.c
    skipped = drill and not drill_recipient
    rows = (
        select(
            d.incident_id,
            d.person_id,
            d.id,
            d.kind,
            literal("email", String()),
            d.version,
            d.message_id,
            literal("drill_skipped" if skipped else "pending", String()),
            literal(0),
            literal(False),
            literal(now, UTCDateTime()),
            literal(now, UTCDateTime()),
            literal("drill without [notices] drill_recipient: not sent" if skipped else None, String()),
        )
        .join(PERSON, p.id == d.person_id)
        .where(
            d.incident_id == incident_id,
            d.fmt == "eml",
            d.message_id.is_not(None),
            p.channel == "email",
            d.kind.in_(list(EMAILED)),
        )
    )
    columns = [
        "incident_id",
        "person_id",
        "document_id",
        "kind",
        "channel",
        "version",
        "message_id",
        "status",
        "attempts",
        "in_doubt",
        "next_attempt_at",
        "created_at",
        "last_error",
    ]
    # RETURNING counts what was inserted on both databases (psycopg reports no rowcount here).
    statement = insert_ignore(session, DELIVERY).from_select(columns, rows).returning(DELIVERY.c.id)
    return len(session.execute(statement).all())


def send_notices(
    store: Store,
    workspace: Workspace,
    incident_id: str,
    *,
    actor: str,
    hooks: Hooks,
    out_dir: Path | None = None,
    on_total: Callable[[int], None] | None = None,
    on_advance: Callable[[int], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> MailingReport:
    """Render, enqueue and send the incident's email notices; complete the tasks they fulfil.

    ``on_problem`` hears, once, that the mail server cannot be reached (the run then waits at most
    ``[notices] give_up_seconds`` for it and stops with every delivery left pending)."""
    settings = notice_settings(workspace.settings)
    with store.read() as session:
        drill = bool(get_incident(session, incident_id).drill)
    if not drill or settings.drill_recipient:  # a drill without a drill mailbox sends nothing at all
        require_smtp(workspace)
    smtp = smtp_settings(workspace)
    mailer = Mailer(smtp, smtp_password(smtp))
    if mailer.budget_seconds >= settings.lease_seconds:
        raise BadInput(
            f"settings.toml [notices] lease_seconds = {settings.lease_seconds:g} is not longer than "
            f"one send may take ({mailer.budget_seconds:g} s): raise it or lower [smtp] timeout_seconds"
        )
    rendered = render_notices(store, workspace, incident_id, actor=actor, out_dir=out_dir, channel="email")
    with store.write() as session:
        drill = bool(get_incident(session, incident_id).drill)
        enqueued = enqueue(
            session,
            incident_id,
            drill=drill,
            drill_recipient=settings.drill_recipient,
            now=store.db_now(session),
        )
    report = MailingReport(incident_id, drill, rendered, enqueued)
    report.sent.drill_skipped = enqueued if drill and not settings.drill_recipient else 0
    if on_total:
        c = DELIVERY.c
        with store.read() as session:
            on_total(
                int(
                    session.execute(
                        select(func.count()).where(
                            c.incident_id == incident_id, c.status.in_(("pending", "sending"))
                        )
                    ).scalar_one()
                )
            )
    sender = Sender(
        store, settings, mailer, envelope_sender=settings.envelope_sender or smtp.sender, drill=drill
    )
    sender.run(incident_id, report.sent, on_advance, on_problem)
    report.status = delivery_status(store, incident_id, "email")
    report.tasks = complete_notice_tasks(store, incident_id, actor=actor, hooks=hooks)
    s = report.sent
    if enqueued or s.sent or s.failed or s.held or s.retrying:
        _audit(store, incident_id, actor, report)
    return report


def _audit(store: Store, incident_id: str, actor: str, report: MailingReport) -> None:
    """One event per run with its counts (customer ids, names and addresses stay out of the trail)."""
    s = report.sent
    inputs = {
        "enqueued": report.enqueued,
        "sent": s.sent,
        "failed": len(s.failed),
        "retrying": len(s.retrying),
        "held_in_doubt": len(s.held),
        "resent_in_doubt": s.resent_in_doubt,
        "drill": report.drill,
        "drill_skipped": s.drill_skipped,
    }
    for _attempt in range(5):
        try:
            with store.write() as session, session.no_autoflush:
                incident = get_incident(session, incident_id)
                append_event(
                    session,
                    incident,
                    kind="notices_sent",
                    actor=actor,
                    at=utcnow(),
                    from_state=incident.state,
                    to_state=incident.state,
                    inputs=inputs,
                )
                flush_or_conflict(session, incident_id)
            return
        except Conflict:
            continue
    raise Conflict(f"{incident_id} kept changing; the deliveries are recorded, the audit event is not")
