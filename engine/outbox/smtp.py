"""Sending many emails over one SMTP connection, at a steady pace.

The server settings are the ``[smtp]`` table of :mod:`engine.outbox.channels` (host, port, STARTTLS, login
with the password from an environment variable, timeout). :meth:`Mailer.send` calls ``handoff()``
immediately before DATA, the one step that cannot be taken back, and classifies every failure the way
the escalation channels do: permanent (5xx), transient (4xx, network), or *maybe delivered* (the
connection broke during DATA, so the server may have the message).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable

from engine.errors import BadInput
from engine.outbox.channels import DeliveryFailed, SmtpSettings

__all__ = ["Mailer", "Pace", "ServerUnavailable", "smtp_password"]

_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>]+")


def _reply(code: int, reply: bytes | str) -> str:
    """A server reply for the record, without the addresses it may quote (they are personal data)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {_ADDRESS.sub('<address>', ' '.join(text.split()))}"[:300]


class ServerUnavailable(DeliveryFailed):
    """The mail server could not be reached or would not let us in: no message can go out until it
    does, so the whole mailing pauses rather than charging each recipient a failed attempt.

    ``waiting_helps`` is False for a failure that time does not mend (a login refused, a certificate
    that does not verify): the run stops at once instead of waiting for the server.
    """

    def __init__(self, message: str, *, waiting_helps: bool) -> None:
        super().__init__(message, transient=True)
        self.waiting_helps = waiting_helps


def _unreachable(settings: SmtpSettings, exc: BaseException) -> ServerUnavailable:
    """The failure to reach the server in words, with what to check."""
    where = f"mail server {settings.host}:{settings.port}"
    # smtplib wraps a timeout while reading a reply in SMTPServerDisconnected: name the timeout.
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        exc = exc.__context__
    if isinstance(exc, ConnectionRefusedError):
        return ServerUnavailable(
            f"{where} refused the connection: is it running, and are smtp.host and smtp.port right?",
            waiting_helps=True,
        )
    if isinstance(exc, TimeoutError):
        return ServerUnavailable(
            f"{where} did not answer within {settings.timeout_seconds:g} s: check smtp.host, smtp.port "
            "and any firewall on the way",
            waiting_helps=True,
        )
    if isinstance(exc, ssl.SSLError | smtplib.SMTPNotSupportedError):
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return ServerUnavailable(
            f"TLS with {where} failed ({reason}): check smtp.starttls and smtp.ca_file", waiting_helps=False
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ServerUnavailable(
            f"{where} refused the login of smtp.username ({exc.smtp_code}): check the username and the "
            f"password in the environment variable {settings.password_env}",
            waiting_helps=False,
        )
    reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    return ServerUnavailable(
        f"{where} cannot be reached ({' '.join(reason.split())[:200]}): check smtp.host and smtp.port",
        waiting_helps=True,
    )


def smtp_password(settings: SmtpSettings) -> str:
    """The login password, from the environment variable ``[smtp] password_env`` names.

    :raises BadInput: when a username is set but the variable is empty.
    """
    if not settings.username:
        return ""
    password = os.environ.get(settings.password_env, "")
    if not password:
        raise BadInput(
            f"[smtp] username is set but the environment variable {settings.password_env} is empty"
        )
    return password


class Pace:
    """At most ``rate`` sends a second, evenly spaced (a burst would trip the server's limits)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()

    def wait(self) -> None:
        """Sleep until the next send is allowed."""
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


class Mailer:
    """One SMTP connection, opened on first use, reused for every message, reopened after a failure."""

    def __init__(self, settings: SmtpSettings, password: str) -> None:
        self.settings = settings
        self.password = password
        self.smtp: smtplib.SMTP | None = None
        # Connect, greeting, TLS, login, MAIL, RCPT and DATA each wait at most the timeout.
        self.budget_seconds = settings.timeout_seconds * 7

    def _connect(self) -> smtplib.SMTP:
        """A connection greeted, upgraded and logged in; any failure on the way is the server's."""
        s = self.settings
        try:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise _unreachable(s, exc) from None
        try:
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=s.ca_file or None))
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise _unreachable(s, exc) from None
        return smtp

    def close(self) -> None:
        """Say goodbye to the server (or just drop the connection if it is gone)."""
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def _envelope(self, sender: str, recipient: str, eight_bit: bool) -> smtplib.SMTP:
        """MAIL and RCPT on a live connection; an idle connection the server closed is reopened once."""
        for attempt in (1, 2):
            smtp = self.smtp or self._connect()
            self.smtp = smtp
            try:
                options = ["BODY=8BITMIME"] if eight_bit and smtp.has_extn("8bitmime") else []
                code, reply = smtp.mail(sender, options)
                if code != 250:
                    smtp.rset()
                    raise DeliveryFailed(
                        f"smtp MAIL FROM refused: {_reply(code, reply)}", transient=code < 500
                    )
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    smtp.rset()
                    raise DeliveryFailed(f"smtp RCPT TO refused: {_reply(code, reply)}", transient=code < 500)
                return smtp
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if attempt == 2:
                    raise DeliveryFailed("smtp: the server closed the connection", transient=True) from None
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise DeliveryFailed(f"smtp: {exc}", transient=True) from None
        raise AssertionError("unreachable")

    def send(self, sender: str, recipient: str, content: bytes, handoff: Callable[[], None]) -> None:
        """Deliver ``content`` to ``recipient``; ``handoff`` runs just before DATA (it may refuse)."""
        smtp = self._envelope(sender, recipient, b"Content-Transfer-Encoding: 8bit" in content)
        try:
            handoff()
        except BaseException:
            self._drop()  # the envelope is half done: start the next message on a fresh connection
            raise
        try:
            # smtplib raises for a refused DATA command but only *returns* the answer to the message
            # itself: a 4xx or 5xx there is a refusal too.
            code, reply = smtp.data(content)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPDataError as exc:
            # The server answered DATA with a refusal: it does not have the message.
            raise DeliveryFailed(
                f"smtp DATA refused: {_reply(exc.smtp_code, exc.smtp_error)}", transient=exc.smtp_code < 500
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryFailed(f"smtp DATA: {exc}", transient=True, maybe_delivered=True) from None
