"""Email messages of the notices: multipart/alternative, UTF-8, headers RFC 2047-encoded when not ASCII.

``email_bytes`` writes the MIME text directly (headers encoded with ``email.header``, bodies in
base64, CRLF line ends): a notice goes to thousands of people, and the standard library's
``EmailMessage`` spends about 8 ms per message folding headers, forty times the rest. The result
parses back with ``email.message_from_bytes(..., policy=email.policy.default)`` to the same To,
Subject and parts; ``build_email`` (the ``EmailMessage`` route) stays for callers that want the object.
The bodies are base64, so the message is 7-bit clean and needs no 8BITMIME from the server.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import re
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, quote

from engine.documents.templating import strip_unsafe
from engine.errors import BadInput

__all__ = ["build_email", "email_bytes"]

_ADDR_SPEC = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_MSG_ID = re.compile(r"<[!-=?-~]{1,240}@[!-=?-~]{1,240}>")  # printable ASCII, no '>' inside


def build_email(
    *,
    sender: tuple[str, str],
    to: tuple[str, str],
    subject: str,
    text: str,
    html: str,
    message_id_domain: str,
    date: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """A multipart/alternative UTF-8 message: display names and subject RFC 2047-encoded when not
    ASCII, ``Date`` and ``Message-ID`` set; no tracking, no marketing headers."""
    if not isinstance(date, datetime) or date.utcoffset() is None:
        raise BadInput("an email's date must be a timezone-aware datetime")
    message = EmailMessage(policy=email.policy.default)
    try:
        message["From"] = Address(display_name=_one_line(sender[0]), addr_spec=sender[1].strip())
        message["To"] = Address(display_name=_one_line(to[0]), addr_spec=to[1].strip())
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise BadInput(f"invalid email address ({exc}): sender {sender[1]!r}, recipient {to[1]!r}") from None
    message["Subject"] = _one_line(subject)  # a newline here would inject headers
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id or make_msgid(domain=message_id_domain)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    if message_id:  # a boundary derived from the id keeps the bytes reproducible; "=_" never occurs
        # in base64 or quoted-printable bodies
        message.set_boundary("=_breach_" + hashlib.sha256(message_id.encode()).hexdigest()[:24])
    return message


def _one_line(text: str) -> str:
    return " ".join(strip_unsafe(text).split())


def _encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words of at most 45 UTF-8 bytes (76 characters encoded), folded.

    Words break only between two non-space characters: a space at a word's edge is doubled by some
    decoders (Python's own address parser among them) when it reads a display name back.
    """
    words: list[str] = []
    current = ""
    for char in text:
        if len((current + char).encode("utf-8")) > 45:
            keep = 2 if current.endswith(" ") else 1 if char == " " else 0
            cut = len(current) - keep
            if cut <= 0:  # nothing but spaces to move: cut here after all
                cut = len(current)
            words.append(current[:cut])
            current = current[cut:]
        current += char
    words.append(current)
    encoded = (base64.b64encode(word.encode("utf-8")).decode("ascii") for word in words if word)
    return "\r\n ".join(f"=?utf-8?b?{chunk}?=" for chunk in encoded)


def _header_text(text: str) -> str:
    """A header value: ASCII as is when it fits a line, anything else as encoded words."""
    return text if text.isascii() and len(text) < 900 else _encoded_words(text)


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes, with "…" when cut."""
    if len(text.encode("utf-8")) <= limit:
        return text
    while len((text + "…").encode("utf-8")) > limit:
        text = text[:-1]
    return text.rstrip() + "…"


def _display_name(name: str) -> str:
    """A display name as RFC 5322 phrase words: ASCII runs quoted, other runs one encoded word each.

    Whitespace between two encoded words is dropped by a decoder, so a run of non-ASCII words (with
    its spaces) is one encoded word, at most 45 bytes: a longer run needs several words, which some
    decoders (Python's address parser among them) join with a stray space. A display name is a
    courtesy and the notice itself carries the whole name, so such a run is cut with "…" there.
    """
    runs: list[tuple[bool, list[str]]] = []
    for token in name.split(" "):
        ascii_token = token.isascii()
        if runs and runs[-1][0] == ascii_token:
            runs[-1][1].append(token)
        else:
            runs.append((ascii_token, [token]))
    words = []
    for ascii_run, tokens in runs:
        text = " ".join(tokens)
        if ascii_run:
            text = _fit(text, 200).replace("…", "...")
            words.append(text if _ATOM.fullmatch(text) else f'"{quote(text)}"')
        else:
            cut = _fit(text, 45)
            words.append(_encoded_words(cut))
            if cut != text:
                break
    return " ".join(words)


def _mailbox(name: str, address: str) -> str:
    address = address.strip()
    if not _ADDR_SPEC.fullmatch(address) or not address.isascii():
        raise BadInput(f"invalid email address {address!r}")
    name = _one_line(name)
    return f"{_display_name(name)} <{address}>" if name else address


def _part(body: str, subtype: str) -> bytes:
    # Text is canonical with CRLF line ends before it is encoded (RFC 2045).
    encoded = base64.encodebytes(body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    return head.encode("ascii") + encoded.replace(b"\n", b"\r\n")


def email_bytes(
    *,
    sender: tuple[str, str],
    to: tuple[str, str],
    subject: str,
    text: str,
    html: str,
    date: datetime,
    message_id: str,
    in_reply_to: str | None = None,
) -> bytes:
    """The message as sent (CRLF, ASCII headers); the boundary comes from the Message-ID, so the same
    notice gives the same bytes. ``in_reply_to``: the Message-ID of the email this one answers (it
    goes in ``In-Reply-To`` and ``References``, RFC 5322 3.6.4)."""
    if not isinstance(date, datetime) or date.utcoffset() is None:
        raise BadInput("an email's date must be a timezone-aware datetime")
    try:
        sender_field, to_field = _mailbox(*sender), _mailbox(*to)
    except BadInput:
        raise BadInput(f"invalid email address: sender {sender[1]!r}, recipient {to[1]!r}") from None
    thread = ""
    if in_reply_to is not None:
        if not _MSG_ID.fullmatch(in_reply_to):
            raise BadInput(f"not a Message-ID to reply to: {in_reply_to!r}")
        thread = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n"
    boundary = "=_breach_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    head = (
        f"From: {sender_field}\r\nTo: {to_field}\r\nSubject: {_header_text(_one_line(subject))}\r\n"
        f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id}\r\n{thread}MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    )
    mark = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        [
            head.encode("ascii"),
            mark,
            _part(text, "plain"),
            b"\r\n",
            mark,
            _part(html, "html"),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
