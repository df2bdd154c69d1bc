"""Sending a signed anchor to a witness: a copy of the record's heads that leaves the machine at once.

An anchor in the workspace's own file catches a rewritten database, not someone who rewrites the
database and the file together. A witness (``[audit] witness_url``: a notary service, a mailbox
gateway, another firm's server) receives each anchor ``breach audit anchor`` writes, as an HTTP POST of
JSON, and answers with a receipt. The receipt, or the failure to get one, is appended to the
hash-chained workspace log, so the record itself shows which anchors left and when. What the witness
keeps is what ``breach audit verify --against`` compares with later.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from engine.errors import BadInput
from engine.incidents.audit import canonical_json
from engine.incidents.worklog import append_log
from engine.store.db import Store
from engine.workspace import Workspace

__all__ = ["WITNESS_FORMAT", "Receipt", "send_to_witness", "witness_url"]

WITNESS_FORMAT = "breach-anchor-witness/1"
# A receipt is a short acknowledgement; what a witness sends beyond this is not read.
_RECEIPT_BYTES = 65536
# How much of the receipt the workspace log keeps in full (its hash covers all of it).
_RECEIPT_KEPT = 2000


@dataclass(frozen=True)
class Receipt:
    """What the witness answered: its HTTP status and the receipt's text and hash."""

    url: str
    status: int
    text: str
    sha256: str


def witness_url(workspace: Workspace) -> str | None:
    """The configured witness (``[audit] witness_url``), or None when anchors are not sent anywhere.

    :raises BadInput: when it is not an http(s) URL.
    """
    raw = str((workspace.settings.get("audit") or {}).get("witness_url") or "").strip()
    if not raw:
        return None
    parsed = urllib.parse.urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise BadInput(f"settings.toml [audit] witness_url {raw!r} is not an http:// or https:// URL")
    return raw


def _shown(url: str) -> str:
    """The URL as the log and the terminal show it: a password in it is hidden."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def _timeout(workspace: Workspace) -> float:
    raw = (workspace.settings.get("audit") or {}).get("witness_timeout_seconds", 10)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 600:
        raise BadInput(
            "settings.toml [audit] witness_timeout_seconds must be a number of seconds from 1 to 600"
        )
    return float(raw)


def _post(url: str, body: bytes, anchor_sha256: str, timeout: float) -> tuple[int, bytes]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": anchor_sha256,  # the same anchor sent twice is one anchor to the witness
        "User-Agent": "breach-witness",
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status), bytes(response.read(_RECEIPT_BYTES))


def send_to_witness(store: Store, workspace: Workspace, line: str, *, actor: str) -> Receipt | None:
    """POST the signed anchor ``line`` to the configured witness and log its receipt; None when no
    witness is configured.

    :raises BadInput: when the witness cannot be reached or refuses the anchor (the failure is logged;
        the anchor stays in the workspace's file, and running ``breach audit anchor`` again resends it).
    """
    url = witness_url(workspace)
    if url is None:
        return None
    anchor_sha256 = hashlib.sha256(line.encode("utf-8")).hexdigest()
    anchor: Any = json.loads(line)
    body = json.dumps(
        {"format": WITNESS_FORMAT, "anchor_sha256": anchor_sha256, "anchor": anchor, "line": line},
        ensure_ascii=False,
        sort_keys=True,
    ).encode("utf-8")
    shown = _shown(url)
    try:
        status, reply = _post(url, body, anchor_sha256, _timeout(workspace))
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    else:
        receipt = Receipt(shown, status, reply.decode("utf-8", "replace"), hashlib.sha256(reply).hexdigest())
        detail = {
            "witness": shown,
            "anchor_sha256": anchor_sha256,
            "status": status,
            "receipt_sha256": receipt.sha256,
            "receipt": receipt.text[:_RECEIPT_KEPT],
        }
        with store.write() as session:
            append_log(session, actor=actor, kind="witnessed", incident_id="", detail=canonical_json(detail))
        return receipt
    with store.write() as session:
        failure = {"witness": shown, "anchor_sha256": anchor_sha256, "problem": problem}
        append_log(
            session, actor=actor, kind="witness_failed", incident_id="", detail=canonical_json(failure)
        )
    raise BadInput(
        f"the anchor was written but not received by the witness {shown} ({problem}); "
        "run breach audit anchor again to resend it"
    )
