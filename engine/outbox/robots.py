"""Chat-group robots: WeCom (企业微信) group robot, DingTalk (钉钉) custom robot, Feishu/Lark (飞书) bot.

Each is an HTTP POST of JSON to the webhook URL the group's admin copies from the app. What each vendor
expects (from its public documentation):

- **WeCom**: ``.../cgi-bin/webhook/send?key=KEY``; the key in the URL is the secret. Markdown message,
  or a text message when mobiles are to be @-mentioned (WeCom's markdown cannot mention by mobile).
- **DingTalk**: ``.../robot/send?access_token=TOKEN`` plus ``&timestamp=T&sign=S`` when the robot has a
  secret: T in milliseconds, S the URL-encoded base64 of HMAC-SHA256 keyed by the secret over
  ``T + "\\n" + secret``. The server refuses a T more than an hour off. Markdown with ``at.atMobiles``.
- **Feishu/Lark**: ``.../open-apis/bot/v2/hook/ID``; with a secret the body carries ``timestamp`` (seconds,
  as text) and ``sign``: base64 of HMAC-SHA256 whose *key* is ``T + "\\n" + secret``, over an empty
  message. Mentions are ``<at user_id="...">`` with Feishu user ids.

All three answer HTTP 200 with a non-zero code in the body when they refuse (bad signature, keyword
missing, rate limit): the body is read, and a refusal is a failed delivery that the outbox retries with
its backoff (``[escalation] retry_seconds``, doubling, at most ``max_attempts``); a rate-limit code asks
for at least a minute. A robot that may have received a message (a timeout) marks the retry in doubt.
Secrets (the URL's key or token, the signing secret) never appear in errors, logs or audit events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from engine.clocks.durations import format_countdown, format_instant
from engine.outbox.channels import DeliveryFailed, Handoff, Message, StrictSettings

__all__ = [
    "RATE_LIMIT_CODES",
    "RobotChannel",
    "RobotSettings",
    "alert_text",
    "dingtalk_sign",
    "feishu_sign",
    "robot_body",
]

RobotKind = Literal["wecom", "dingtalk", "feishu"]
# Each vendor's "too many messages" code: WeCom 45009, DingTalk 130101, Feishu 11232.
RATE_LIMIT_CODES = {"wecom": {45009}, "dingtalk": {130101}, "feishu": {11232}}
RATE_LIMIT_PAUSE = 60.0  # the vendors count about 20 messages a minute per robot


class RobotSettings(StrictSettings):
    """One robot in ``[alerts.robots.NAME]``: its kind, URL and secret (or the variables holding them)."""

    kind: RobotKind
    url: str = ""
    url_env: str = ""  # the URL (with its key or token) from this environment variable instead
    secret: str = ""  # DingTalk and Feishu signing secret, when the robot has one
    secret_env: str = ""  # the secret from this environment variable instead
    keyword: str = ""  # the robot's required keyword, if its group set one: every message carries it
    # Whom every message @-mentions: mobiles (WeCom, DingTalk) or user ids (Feishu).
    mention: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    attempts: int = Field(default=2, ge=1, le=5)  # per delivery, for network errors
    backoff_seconds: float = Field(default=0.5, ge=0, le=30)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """DingTalk's ``sign``: URL-encoded base64 of HMAC-SHA256 keyed by the secret over "T\\nsecret"."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(secret: str, timestamp_s: str) -> str:
    """Feishu's ``sign``: base64 of HMAC-SHA256 keyed by "T\\nsecret" over an empty message."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def alert_text(message: Message, zone: str, now: datetime) -> list[str]:
    """The alert as short lines that read well as plain text and in each vendor's markdown.

    Incident id and title, rule and legal basis, due time in the workspace zone with its offset, time
    left or overdue at ``now``, and the commands that settle it; nothing about the affected people.
    """
    p = message.payload
    basis = p.get("basis") or {}
    missed = message.kind.startswith("missed")
    level, repeat = int(p.get("level") or 1), int(p.get("repeat") or 0)
    head = "已逾期 MISSED" if missed else f"即将到期 due soon ({message.kind.split('@')[0]})"
    if missed and (level > 1 or p.get("level_name")):
        head += f" · level {level}" + (f" {p['level_name']}" if p.get("level_name") else "")
    if repeat:
        head += f" · repeat {repeat}"
    due = datetime.fromisoformat(p["due_at"])
    rule = f"{p['rule']} {p.get('subject') or ''}".rstrip()
    note = f" ({basis['note']})" if basis.get("note") else ""
    unverified = "" if basis.get("verified", True) else " [unverified figure]"
    lines = [
        ("[演练 DRILL] " if p.get("drill") else "") + f"[breach] {head}",
        f"事件 Incident: {p['incident_id']} {p.get('incident_title') or ''}".rstrip(),
        f"时限 Rule: {rule}",
        f"依据 Basis: {basis.get('article', '')} {basis.get('source', '')}{note}{unverified}".rstrip(),
        f"到期 Due: {format_instant(due, zone).replace('T', ' ')}"
        + (" (provisional 暂定)" if p.get("provisional") else ""),
        f"现在 Now: {format_countdown(due - now)}",
        f"处理 Next: breach incident show {p['incident_id']}",
    ]
    if missed:
        lines.append(f"确认 Acknowledge: breach deadlines ack {p['incident_id']} {p['rule']}")
    return lines


def robot_body(
    kind: RobotKind,
    lines: list[str],
    *,
    mention: list[str],
    keyword: str = "",
    signed: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON body each vendor expects; ``signed`` is Feishu's (timestamp, sign)."""
    if keyword and not any(keyword in line for line in lines):
        lines = [f"【{keyword}】", *lines]  # a robot set to a keyword drops messages without it
    if kind == "wecom":
        if mention:
            content = {"content": "\n".join(lines), "mentioned_mobile_list": mention}
            return {"msgtype": "text", "text": content}
        return {"msgtype": "markdown", "markdown": {"content": "\n".join(lines)}}
    if kind == "dingtalk":
        ats = " ".join(f"@{m}" for m in mention)  # DingTalk highlights a mention only if the text has it
        text = "\n\n".join([*lines, ats] if ats else lines)
        return {
            "msgtype": "markdown",
            "markdown": {"title": lines[0], "text": text},
            "at": {"atMobiles": mention, "isAtAll": False},
        }
    ats = "".join(f'<at user_id="{m}"></at>' for m in mention)
    body: dict[str, Any] = {"msg_type": "text", "content": {"text": "\n".join(lines) + ats}}
    if signed is not None:
        body = {"timestamp": signed[0], "sign": signed[1], **body}
    return body


def _reply_code(kind: RobotKind, raw: bytes) -> tuple[int, str]:
    """(code, message) of a vendor's reply; 0 is success. A reply that is not JSON is a failure."""
    try:
        reply = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return -1, "reply is not JSON"
    if not isinstance(reply, dict):
        return -1, "reply is not a JSON object"
    if kind == "feishu":
        code = reply.get("code", reply.get("StatusCode", -1))
        return (code if isinstance(code, int) else -1), str(reply.get("msg", reply.get("StatusMessage", "")))
    code = reply.get("errcode", -1)
    return (code if isinstance(code, int) else -1), str(reply.get("errmsg", ""))


class RobotChannel:
    """A chat-group robot as an outbox channel (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: RobotSettings,
        *,
        url: str,
        secret: str,
        zone: str,
        level_mentions: dict[int, list[str]] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.url = url
        self.secret = secret
        self.zone = zone
        self.level_mentions = level_mentions or {}
        backoffs = sum(settings.backoff_seconds * 2**i for i in range(settings.attempts - 1))
        self.budget_seconds = settings.attempts * settings.timeout_seconds + backoffs

    def _request(self, lines: list[str], mention: list[str]) -> urllib.request.Request:
        """The signed request, signed afresh for each attempt (DingTalk refuses old timestamps)."""
        s, url, signed = self.settings, self.url, None
        if s.kind == "dingtalk" and self.secret:
            stamp = str(int(time.time() * 1000))
            joiner = "&" if urllib.parse.urlsplit(url).query else "?"
            url = f"{url}{joiner}timestamp={stamp}&sign={dingtalk_sign(self.secret, stamp)}"
        elif s.kind == "feishu" and self.secret:
            stamp = str(int(time.time()))
            signed = (stamp, feishu_sign(self.secret, stamp))
        body = robot_body(s.kind, lines, mention=mention, keyword=s.keyword, signed=signed)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "breach-alerts"}
        return urllib.request.Request(url, data=data, headers=headers, method="POST")

    def send(self, message: Message, handoff: Handoff) -> None:
        """Post the alert; network errors are retried here, refusals in the body by the outbox."""
        s = self.settings
        level = int(message.payload.get("level") or 1)
        mention = list(dict.fromkeys([*s.mention, *self.level_mentions.get(level, [])]))
        lines = alert_text(message, self.zone, datetime.now(UTC))
        handoff()
        maybe, problem = message.in_doubt, ""
        for attempt in range(s.attempts):
            if attempt:
                time.sleep(s.backoff_seconds * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(self._request(lines, mention), timeout=s.timeout_seconds) as r:
                    raw = r.read(65536)
            except urllib.error.HTTPError as exc:
                # The vendors answer 200 even to refusals; another status is a proxy or an outage.
                problem = f"HTTP {exc.code}"
                continue
            except TimeoutError:
                problem, maybe = "timeout", True  # it may have arrived and only the answer got lost
                continue
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem, maybe = type(reason).__name__, maybe or isinstance(reason, TimeoutError)
                continue
            code, text = _reply_code(s.kind, raw)
            if code == 0:
                return
            # A refusal in the body: the robot did not post it. Retried later by the outbox's backoff.
            limited = code in RATE_LIMIT_CODES[s.kind]
            raise DeliveryFailed(
                f"{self.name} ({s.kind}) refused: code {code} {text[:120]}".rstrip(),
                transient=True,
                maybe_delivered=maybe,
                retry_after=timedelta(seconds=RATE_LIMIT_PAUSE) if limited else None,
            )
        raise DeliveryFailed(
            f"{self.name} ({s.kind}): {problem} after {s.attempts} attempts",
            transient=True,
            maybe_delivered=maybe,
        )
