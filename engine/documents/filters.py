"""The filters templates use: masking identifiers, document numbers, dates and moments in the
reader's language and zone, and the words for a fact not known yet.

Moments must be timezone-aware: guessing the zone of a legal timestamp would misstate it by hours.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from jinja2.runtime import Context

from engine.errors import BadInput

__all__ = [
    "DEFAULT_TIMEZONE",
    "FALLBACK_LOCALE",
    "FILTERS",
    "cn_doc_number",
    "date_local",
    "datetime_local",
    "mask_account",
    "mask_id",
    "mask_phone",
    "to_follow",
]

FALLBACK_LOCALE = "zh-CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Control characters can hide text from a reader, rewrite a terminal (ESC) or make Word XML invalid
# (NUL, lone surrogates): data never needs them, so printed values lose them; tab and newline stay.


def to_follow(locale: str) -> str:
    """The words for a fact not known yet: 待补报 in Chinese, "to follow" otherwise (never invented)."""
    return "待补报" if locale.startswith("zh") else "to follow"


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def mask_id(value: object) -> str:
    """An ID number as ``1101********1234``: eight stars hide the middle and the length."""
    text = _text(value)
    return f"{text[:4]}********{text[-4:]}" if len(text) > 8 else "*" * 8 if text else ""


def mask_phone(value: object) -> str:
    """A phone number as ``138****0001``; a ``+86`` prefix is kept in front."""
    text = re.sub(r"[\s\-()]", "", _text(value))
    prefix = ""
    if text.startswith("+86"):
        prefix, text = "+86 ", text[3:]
    masked = f"{text[:3]}****{text[-4:]}" if len(text) >= 8 else "****" if text else ""
    return prefix + masked


def mask_account(value: object) -> str:
    """A bank account or card as ``****1234``: only the last four characters are shown."""
    text = re.sub(r"\s", "", _text(value))
    return f"****{text[-4:]}" if text else ""


def cn_doc_number(sequence: int | str, year: int | str, prefix: str = "") -> str:
    """A Chinese document number (文号) such as ``某司安〔2026〕3号``."""
    return f"{prefix}〔{year}〕{sequence}号"


def _as_aware(value: object, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise BadInput(f"{what}: {value!r} is not an ISO-8601 date-time") from None
    if not isinstance(value, datetime):
        raise BadInput(f"{what}: expected a date-time, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # Guessing the zone of a legal timestamp would misstate it by hours: the caller must say.
        raise BadInput(f"{what}: {value.isoformat()} has no time zone; give a timezone-aware value")
    return value


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None


def _day(value: date, locale: str) -> str:
    if locale.startswith("zh"):
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def date_local(value: object, locale: str = FALLBACK_LOCALE, zone: str = DEFAULT_TIMEZONE) -> str:
    """A date in the reader's language: ``2026年11月20日`` or ``20 November 2026``; None is 待补报."""
    if value is None:
        return to_follow(locale)
    if isinstance(value, str):
        value = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value.strip()
            else date.fromisoformat(value)
        )
    if isinstance(value, datetime):
        value = _as_aware(value, "date_local").astimezone(_zone(zone)).date()
    if not isinstance(value, date):
        raise BadInput(f"date_local: expected a date, got {type(value).__name__}")
    return _day(value, locale)


_BEIJING = frozenset({"Asia/Shanghai", "Asia/Chongqing", "PRC"})


def datetime_local(value: object, zone: str = DEFAULT_TIMEZONE, locale: str = FALLBACK_LOCALE) -> str:
    """A moment shown in ``zone`` with the zone named: ``2026年11月20日 14:30（北京时间，UTC+08:00）``."""
    if value is None:
        return to_follow(locale)
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return _moment_text(value, zone, locale)  # every notice of a batch prints the same few moments
    return _moment_text(_as_aware(value, "datetime_local"), zone, locale)


@functools.lru_cache(maxsize=256)
def _moment_text(value: datetime, zone: str, locale: str) -> str:
    moment = value.astimezone(_zone(zone))
    minutes = int(moment.utcoffset().total_seconds()) // 60  # type: ignore[union-attr]
    sign = "-" if minutes < 0 else "+"
    utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    if locale.startswith("zh"):
        return f"{_day(moment, locale)} {clock}（{'北京时间' if zone in _BEIJING else zone}，{utc}）"
    name = "China Standard Time" if zone in _BEIJING else zone
    return f"{_day(moment, locale)}, {clock} ({name}, {utc})"


# Jinja wrappers read the reader's locale and the workspace zone from the context the renderer sets,
# so a template writes `incident.discovered_at|datetime_local` and still gets the right language.
@pass_context
def _date_filter(ctx: Context, value: object, locale: str | None = None, zone: str | None = None) -> str:
    return date_local(
        value, locale or ctx.get("locale", FALLBACK_LOCALE), zone or ctx.get("timezone", DEFAULT_TIMEZONE)
    )


@pass_context
def _datetime_filter(ctx: Context, value: object, zone: str | None = None, locale: str | None = None) -> str:
    return datetime_local(
        value, zone or ctx.get("timezone", DEFAULT_TIMEZONE), locale or ctx.get("locale", FALLBACK_LOCALE)
    )


@pass_context
def _tbd_filter(ctx: Context, value: object, text: str | None = None) -> object:
    if value is None or value == "" or value == [] or value == {}:
        return text if text is not None else to_follow(ctx.get("locale", FALLBACK_LOCALE))
    return value


@pass_context
def _thousands_filter(ctx: Context, value: object, unit: str = "") -> str:
    if value is None:  # the unit would read oddly after 待补报
        return to_follow(ctx.get("locale", FALLBACK_LOCALE))
    return (f"{value:,}" if isinstance(value, int) else str(value)) + unit


FILTERS: dict[str, Callable[..., Any]] = {
    "mask_id": mask_id,
    "mask_phone": mask_phone,
    "mask_account": mask_account,
    "cn_doc_number": cn_doc_number,
    "date_local": _date_filter,
    "datetime_local": _datetime_filter,
    "tbd": _tbd_filter,
    "thousands": _thousands_filter,
}
