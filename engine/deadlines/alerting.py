"""Reading the alert settings: ``[escalation]``, ``[alerts]`` (levels, repeats, robots), ``[smtp]``,
``[webhook]``.

``[escalation]`` keeps what it always held: how the outbox delivers (lease, retries, in-doubt policy) and,
for a workspace that names no levels, the channels of every alert. ``[alerts]`` adds who hears of a
missed deadline and when: levels after delays, each with its channels and recipients, repeats every N
minutes until the deadline is met or acknowledged, and the chat-group robots (``[alerts.robots.NAME]``)
that levels may name as channels. Without levels, level 1 is ``[escalation] channels``.

Secrets may come from environment variables (``url_env``, ``secret_env``), so that settings.toml need not
hold them; they are never put in an error, a log line or an audit event.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from engine.deadlines.policy import AlertPolicy, Level
from engine.errors import BadInput
from engine.outbox.channels import (
    Channel,
    LogChannel,
    SmtpChannel,
    SmtpSettings,
    StrictSettings,
    WebhookChannel,
    WebhookSettings,
)
from engine.outbox.robots import RobotChannel, RobotSettings
from engine.workspace import Workspace

__all__ = [
    "AlertLevelSettings",
    "AlertSettings",
    "Alerting",
    "EscalationSettings",
    "load_alerting",
    "load_settings",
    "parse_section",
]

EscalationChannel = Literal["log", "smtp", "webhook"]
BUILT_IN_CHANNELS = ("log", "smtp", "webhook")
# A robot's name is its delivery channel's name (16 characters in the outbox).
ROBOT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,15}")


def _log_only() -> list[EscalationChannel]:
    return ["log"]


class EscalationSettings(StrictSettings):
    """``[escalation]`` in settings.toml."""

    channels: list[EscalationChannel] = Field(default_factory=_log_only)
    log_file: str = ""
    lease_seconds: float = Field(default=120, gt=0, le=3600)
    in_doubt: Literal["resend", "hold"] = "resend"
    retry_seconds: float = Field(default=30, ge=0, le=3600)
    max_attempts: int = Field(default=8, ge=1, le=100)


class AlertLevelSettings(StrictSettings):
    """One ``[[alerts.levels]]`` entry."""

    name: str = Field(default="", max_length=40)
    after_minutes: float = Field(default=0, ge=0, le=60 * 24 * 60)
    channels: list[str] = Field(min_length=1)
    # Recipients of this level's emails (else [smtp] recipients), and whom its robots @: mobiles for
    # WeCom and DingTalk, user ids for Feishu.
    email: list[str] = Field(default_factory=list)
    mention: list[str] = Field(default_factory=list)


class AlertSettings(StrictSettings):
    """``[alerts]`` in settings.toml."""

    repeat_minutes: float = Field(default=60, ge=0, le=60 * 24 * 7)
    max_repeats: int = Field(default=0, ge=0, le=10_000)
    levels: list[AlertLevelSettings] = Field(default_factory=list)
    robots: dict[str, RobotSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _order(self) -> AlertSettings:
        afters = [lv.after_minutes for lv in self.levels]
        if afters and afters[0] != 0:
            raise ValueError("levels: the first level starts at the due time (after_minutes = 0)")
        if any(b <= a for a, b in pairwise(afters)):
            raise ValueError("levels: after_minutes must rise from each level to the next")
        for name in self.robots:
            if name in BUILT_IN_CHANNELS or not ROBOT_NAME.fullmatch(name):
                raise ValueError(
                    f"robots.{name}: a robot's name is 1-16 lowercase letters, digits, - or _, "
                    "and not log, smtp or webhook"
                )
        return self


@dataclass(frozen=True)
class Alerting:
    """The outbox settings, the channels built from them, and the policy of missed deadlines."""

    settings: EscalationSettings
    channels: dict[str, Channel]
    policy: AlertPolicy


def parse_section(raw: dict[str, Any], section: str, model: type[StrictSettings]) -> Any:
    """``[section]`` of the settings read by ``model``; a bad value is refused naming the key, never
    the value (which may be a secret)."""
    value = raw
    for part in section.split("."):
        value = value.get(part, {}) if isinstance(value, dict) else {}
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        # Only the location and pydantic's message: never the value, which may be a secret.
        raise BadInput(f"settings.toml [{section}] {where}: {err['msg']}".replace(" : ", ": ")) from None


def _from_env(name: str, robot: str, value: str, variable: str) -> str:
    """A robot's URL or secret: from its environment variable when one is named, else the file's value."""
    if not variable:
        return value
    found = os.environ.get(variable, "")
    if not found:
        raise BadInput(f"settings.toml [alerts.robots.{robot}] {name}_env: the variable {variable} is empty")
    if name == "url" and not found.startswith(("http://", "https://")):
        raise BadInput(f"[alerts.robots.{robot}] the URL in {variable} must start with http:// or https://")
    return found


def _robot(name: str, robot: RobotSettings, zone: str, mentions: dict[int, list[str]]) -> RobotChannel:
    url = _from_env("url", name, robot.url, robot.url_env)
    if not url:
        raise BadInput(
            f"settings.toml [alerts.robots.{name}] has no url (or url_env): copy it from the group"
        )
    secret = _from_env("secret", name, robot.secret, robot.secret_env)
    if robot.kind == "wecom" and secret:
        raise BadInput(f"[alerts.robots.{name}] a WeCom robot has no secret: its key is in the URL")
    return RobotChannel(name, robot, url=url, secret=secret, zone=zone, level_mentions=mentions)


def load_alerting(workspace: Workspace) -> Alerting:
    """Read the alert settings and build the channels every level needs.

    :raises BadInput: naming the section and the problem, e.g. a lease shorter than a send can take.
    """
    raw = workspace.settings
    settings: EscalationSettings = parse_section(raw, "escalation", EscalationSettings)
    alerts: AlertSettings = parse_section(raw, "alerts", AlertSettings)
    # Without levels, level 1 is [escalation] channels (which may be empty: alerts are then only recorded).
    levels = alerts.levels or [AlertLevelSettings.model_construct(channels=list(settings.channels))]
    for number, level in enumerate(levels, 1):
        for name in level.channels:
            if name not in BUILT_IN_CHANNELS and name not in alerts.robots:
                robots = ", ".join(alerts.robots) or "none yet"
                raise BadInput(
                    f"settings.toml [alerts] levels[{number}] channels: unknown channel {name!r} "
                    f"(log, smtp, webhook, or a robot of [alerts.robots]: {robots})"
                )
    by_level = {n: lv for n, lv in enumerate(levels, 1)}
    channels: dict[str, Channel] = {}
    for name in dict.fromkeys(c for lv in levels for c in lv.channels):
        if name == "log":
            log_file = Path(settings.log_file) if settings.log_file else None
            if log_file is not None and not log_file.is_absolute():
                log_file = workspace.home / log_file
            if log_file is not None:
                from engine.files import refuse_link

                refuse_link(log_file, root=workspace.home)  # a planted link stops the scheduler at once
            channels[name] = LogChannel(log_file, root=workspace.home)
        elif name == "smtp":
            smtp: SmtpSettings = parse_section(raw, "smtp", SmtpSettings)
            emails = {n: list(lv.email) for n, lv in by_level.items()}
            bare = [n for n, lv in by_level.items() if "smtp" in lv.channels and not lv.email]
            if bare and not smtp.recipients:
                raise BadInput(
                    f"settings.toml [smtp] recipients is empty: name who receives escalations "
                    f"(or give level {bare[0]} of [alerts] its own email list)"
                )
            channels[name] = SmtpChannel(smtp, emails)
        elif name == "webhook":
            channels[name] = WebhookChannel(parse_section(raw, "webhook", WebhookSettings))
        else:
            mentions = {n: list(lv.mention) for n, lv in by_level.items() if name in lv.channels}
            channels[name] = _robot(name, alerts.robots[name], workspace.timezone, mentions)
        if channels[name].budget_seconds >= settings.lease_seconds:
            raise BadInput(
                f"settings.toml [escalation] lease_seconds = {settings.lease_seconds:g} is not longer than a "
                f"{name} send may take ({channels[name].budget_seconds:g} s): raise it or lower the timeouts"
            )
    policy = AlertPolicy(
        tuple(
            Level(n, lv.name, timedelta(minutes=lv.after_minutes), tuple(lv.channels))
            for n, lv in by_level.items()
        ),
        timedelta(minutes=alerts.repeat_minutes) if alerts.repeat_minutes else None,
        alerts.max_repeats,
    )
    return Alerting(settings, channels, policy)


def load_settings(workspace: Workspace) -> tuple[EscalationSettings, dict[str, Channel]]:
    """The outbox settings and the enabled channels (see :func:`load_alerting` for the policy too)."""
    alerting = load_alerting(workspace)
    return alerting.settings, alerting.channels
