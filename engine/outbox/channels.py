"""Where warnings and escalations go: the log, email over SMTP, and an HTTP webhook.

Each channel sends one :class:`Message` and calls ``handoff()`` immediately before the step that cannot
be taken back (the end of the SMTP DATA command, the HTTP request). ``handoff`` records that moment in
the database and refuses (:class:`LeaseLost`) when this worker no longer owns the delivery, so a slow
worker never sends what another has taken over. A failure says whether the receiver may nevertheless
have the message (``maybe_delivered``): the outbox then treats a re-send as *in doubt*
(see :mod:`engine.deadlines.escalation`). Every message carries a stable id: the email's ``Message-ID``
and the webhook's ``Idempotency-Key`` are the same on every attempt.

Logs never carry personal data: the log line names the incident id, rule, kind and due time only.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import BadInput

__all__ = [
    "Channel",
    "DeliveryFailed",
    "LeaseLost",
    "LogChannel",
    "Message",
    "SmtpChannel",
    "SmtpSettings",
    "StrictSettings",
    "WebhookChannel",
    "WebhookSettings",
]

Handoff = Callable[[], None]


class DeliveryFailed(Exception):
    """A send that did not succeed; ``transient`` ones are retried, ``maybe_delivered`` ones are in doubt."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        maybe_delivered: bool = False,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.maybe_delivered = maybe_delivered
        self.retry_after = retry_after  # the receiver asked for a pause (a rate limit): wait at least this


class LeaseLost(Exception):
    """This worker's claim on a delivery expired or was taken over: it must not send."""


@dataclass(frozen=True)
class Message:
    """One delivery's content: rendered from the escalation's stored payload, so re-sends are identical."""

    message_id: str
    kind: str
    payload: dict[str, Any]
    in_doubt: bool = False

    def subject(self) -> str:
        """A subject line: what happened to which deadline of which incident."""
        p = self.payload
        what = "已逾期 MISSED" if self.kind.startswith("missed") else f"即将到期 due soon ({self.kind})"
        level, repeat = int(p.get("level") or 1), int(p.get("repeat") or 0)
        if level > 1:  # the people of a higher level see that it climbed to them
            what += f", level {level}" + (f" {p['level_name']}" if p.get("level_name") else "")
        if repeat:
            what += f", repeat {repeat}"
        drill = "[演练 DRILL] " if p.get("drill") else ""
        return f"{drill}[breach] {p['incident_id']} {p['rule']}: {what}"

    def text(self) -> str:
        """The body: the deadline, its due time, status and legal basis, in Chinese and English."""
        p, basis = self.payload, self.payload.get("basis", {})
        labels = p.get("labels", {})
        policy = f"  ({basis['note']})" if basis.get("note") else ""
        unverified = "" if basis.get("verified", True) else "  [unverified figure]"
        lines = [
            f"事件 Incident: {p['incident_id']}  {p.get('incident_title', '')}",
            f"时限 Deadline: {p['rule']} {p.get('subject') or ''}".rstrip(),
            f"  {labels.get('zh-CN', '')} / {labels.get('en', '')}",
            f"到期 Due: {p['due_at']}" + ("  (provisional 暂定)" if p.get("provisional") else ""),
            f"状态 Status: {p['status']}  ({self.kind})",
            f"依据 Basis: {basis.get('article', '')} {basis.get('source', '')}{policy}{unverified}",
            "",
            f"breach incident show {p['incident_id']}",
        ]
        return "\n".join(lines) + "\n"

    def log_line(self) -> str:
        """One line for logs: ids, kind and due time only, never titles or facts (no personal data)."""
        p = self.payload
        subject = f" {p['subject']}" if p.get("subject") else ""
        return (
            f"escalation {self.kind} incident={p['incident_id']} rule={p['rule']}{subject} "
            f"due={p['due_at']} id={self.message_id}" + (" in-doubt-resend" if self.in_doubt else "")
        )


class Channel(Protocol):
    """A way to deliver messages; ``budget_seconds`` is the longest one send may take."""

    name: str
    budget_seconds: float

    def send(self, message: Message, handoff: Handoff) -> None:
        """Deliver ``message``; call ``handoff`` just before the irreversible step."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


StrictSettings = _Settings
"""A settings table: unknown keys are refused (a typo is named, not ignored) and values are frozen."""


class LogChannel:
    """The console (stderr) and, when configured, a log file in the workspace."""

    name = "log"
    budget_seconds = 1.0

    def __init__(self, file: Path | None = None, *, root: Path | None = None) -> None:
        self.file = file
        self.root = root  # the workspace: no folder below it on the way to the file may be a link

    def send(self, message: Message, handoff: Handoff) -> None:
        """Write the log line (no personal data)."""
        handoff()
        line = message.log_line()
        print(line, file=sys.stderr, flush=True)
        if self.file is not None:
            from engine.files import append_private

            # Private (0600) and never through a link: another account must not redirect the log.
            stamp = datetime.now().astimezone().isoformat(timespec="seconds")
            append_private(self.file, f"{stamp} {line}\n", root=self.root)


class SmtpSettings(_Settings):
    """``[smtp]`` in settings.toml; the password is read from the environment variable it names."""

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ca_file: str = ""
    sender: str = "breach@localhost"
    recipients: list[str] = []
    username: str = ""
    password_env: str = "BREACH_SMTP_PASSWORD"
    timeout_seconds: float = Field(default=10, gt=0, le=120)


class SmtpChannel:
    """Email over SMTP, optionally with STARTTLS and a login."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings, level_recipients: dict[int, list[str]] | None = None) -> None:
        # An alert level may name its own recipients ([alerts] levels' email); others go to [smtp]'s.
        self.level_recipients = {k: v for k, v in (level_recipients or {}).items() if v}
        if not settings.recipients and not self.level_recipients:
            raise BadInput("settings.toml [smtp] recipients is empty: name who receives escalations")
        self.settings = settings
        self.password = ""
        if settings.username:
            self.password = os.environ.get(settings.password_env, "")
            if not self.password:
                raise BadInput(
                    f"[smtp] username is set but the environment variable {settings.password_env} is empty"
                )
        # Connect, greeting, TLS, login, MAIL, RCPT and DATA each wait at most the timeout.
        self.budget_seconds = settings.timeout_seconds * 6

    def recipients(self, message: Message) -> list[str]:
        """Who receives this message: its alert level's recipients, else ``[smtp] recipients``."""
        level = int(message.payload.get("level") or 1)
        return self.level_recipients.get(level) or list(self.settings.recipients)

    def _email(self, message: Message) -> bytes:
        """The email, with the stable Message-ID and the escalation's own Date."""
        s, mail = self.settings, EmailMessage()
        mail["Message-ID"] = message.message_id
        # The Date is the escalation's own moment, so a re-send is byte-identical but for the header below.
        mail["Date"] = format_datetime(datetime.fromisoformat(message.payload["created_at"]))
        mail["From"] = s.sender
        mail["To"] = ", ".join(self.recipients(message))
        mail["Subject"] = message.subject()
        mail["X-Breach-Escalation"] = message.kind
        if message.in_doubt:
            mail["X-Breach-Delivery"] = (
                "resent in doubt: an earlier attempt with this Message-ID may have arrived"
            )
        mail.set_content(message.text())
        return mail.as_bytes(policy=SMTP_POLICY)

    def send(self, message: Message, handoff: Handoff) -> None:
        """Send one email; a rejection is permanent (5xx) or transient (4xx, connection problems)."""
        s = self.settings
        content = self._email(message)
        try:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"smtp connect {s.host}:{s.port}: {exc}", transient=True) from None
        try:
            self._envelope(smtp, self.recipients(message))
            handoff()
            try:
                # smtplib raises for a refused DATA command but only *returns* the answer to the message
                # itself: a 4xx or 5xx there is a refusal too.
                code, reply = smtp.data(content)
                if code != 250:
                    raise smtplib.SMTPDataError(code, reply)
            except smtplib.SMTPDataError as exc:
                # The server answered DATA with a refusal: it does not have the message.
                raise DeliveryFailed(
                    f"smtp DATA refused: {exc.smtp_code}", transient=exc.smtp_code < 500
                ) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryFailed(f"smtp DATA: {exc}", transient=True, maybe_delivered=True) from None
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _envelope(self, smtp: smtplib.SMTP, recipients: list[str]) -> None:
        """Greeting, STARTTLS, login, sender and recipients: nothing is delivered if these fail."""
        s = self.settings
        try:
            smtp.ehlo()
            if s.starttls:
                context = ssl.create_default_context(cafile=s.ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, self.password)
            code, _reply = smtp.mail(s.sender)
            if code != 250:
                raise DeliveryFailed(f"smtp MAIL FROM refused: {code}", transient=code < 500)
            for recipient in recipients:
                code, _reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    raise DeliveryFailed(f"smtp RCPT TO refused: {code}", transient=code < 500)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"smtp login refused: {exc.smtp_code}", transient=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"smtp: {exc}", transient=True) from None


class WebhookSettings(_Settings):
    """``[webhook]`` in settings.toml."""

    url: str = ""
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def _retry_status(status: int) -> bool:
    """Server errors, timeouts and rate limits are worth another attempt; other 4xx are final."""
    return status >= 500 or status in (408, 425, 429)


class WebhookChannel:
    """An HTTP POST of the escalation as JSON, retried with exponential backoff."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        if not settings.url:
            raise BadInput(
                "settings.toml [webhook] url is empty: name the endpoint that receives escalations"
            )
        self.settings = settings
        backoffs = sum(settings.backoff_seconds * 2**i for i in range(settings.attempts - 1))
        self.budget_seconds = settings.attempts * settings.timeout_seconds + backoffs

    def send(self, message: Message, handoff: Handoff) -> None:
        """POST with ``Idempotency-Key``; retry 5xx, 408, 429 and network errors with backoff."""
        s = self.settings
        body = json.dumps(
            {"id": message.message_id, "kind": message.kind, **message.payload},
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")
        handoff()
        maybe = message.in_doubt
        problem = ""
        for attempt in range(s.attempts):
            if attempt:
                time.sleep(s.backoff_seconds * 2 ** (attempt - 1))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": message.message_id,
                "X-Breach-Kind": message.kind,
                "User-Agent": "breach-escalation",
            }
            if maybe:
                headers["X-Breach-In-Doubt"] = "1"
            request = urllib.request.Request(s.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=s.timeout_seconds) as response:
                    response.read()
                    return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if not _retry_status(exc.code):
                    raise DeliveryFailed(f"webhook refused: {problem}", transient=False) from None
            except TimeoutError as exc:
                # The request may have arrived and only the answer got lost.
                problem, maybe = f"timeout: {exc}", True
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"{reason}"
                maybe = maybe or isinstance(reason, TimeoutError)
        raise DeliveryFailed(
            f"webhook: {problem} after {s.attempts} attempts", transient=True, maybe_delivered=maybe
        )
