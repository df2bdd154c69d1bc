"""The bytes of one notice email as it goes out: the recorded document, checked, dated now, and
readdressed in a drill or marked when it is sent again in doubt."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.headerregistry import Address
from email.utils import format_datetime
from pathlib import Path

from engine.outbox.channels import DeliveryFailed

__all__ = ["dated_now", "outgoing"]

_DATE_HEADER = re.compile(rb"\r\nDate: [^\r\n]*\r\n")


def dated_now(content: bytes) -> bytes:
    """The message with ``Date`` set to now: a reader sees when it was sent, not when it was rendered
    (the recorded file keeps its render date and hash; the delivery records the hash of what was sent)."""
    head, sep, body = content.partition(b"\r\n\r\n")
    now = format_datetime(datetime.now(UTC)).encode("ascii")
    dated, count = _DATE_HEADER.subn(b"\r\nDate: " + now + b"\r\n", b"\r\n" + head + b"\r\n", count=1)
    if not count:
        return content
    return dated[2:-2] + sep + body


def outgoing(
    path: Path, sha256: str, email: str, *, drill_recipient: str | None, in_doubt: bool
) -> tuple[bytes, str]:
    """The bytes to send and the envelope recipient: the recorded document, checked against its hash.

    :raises DeliveryFailed: (for good) when the file is gone or changed since it was rendered.
    """
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise DeliveryFailed(
            f"document file unreadable ({exc.strerror}); render it again", transient=False
        ) from None
    if hashlib.sha256(content).hexdigest() != sha256:
        raise DeliveryFailed(
            "document file changed since it was rendered (hash differs); not sent", transient=False
        )
    content = dated_now(content)
    if drill_recipient is None and not in_doubt:
        return content, email
    message = message_from_bytes(content, policy=email_policy.default)
    recipient = email
    if drill_recipient is not None:
        # A drill never reaches a real person: the drill mailbox gets it, the original To is dropped.
        recipient = drill_recipient
        display = message["To"].addresses[0].display_name if message["To"] else ""
        del message["To"]
        message["To"] = Address(display_name=display, addr_spec=recipient)
        message["X-Breach-Drill"] = "drill: delivered to the drill mailbox, not to the person"
    if in_doubt:
        message["X-Breach-Delivery"] = (
            "resent in doubt: an earlier attempt with this Message-ID may have arrived"
        )
    return message.as_bytes(policy=email_policy.SMTP), recipient
