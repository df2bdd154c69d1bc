"""Legal time arithmetic: durations, instants in time zones, and due dates under a calendar.

Pure functions: no database, no CLI. Instants are aware datetimes in UTC; a ``zone`` (IANA name)
decides which local day a trigger falls on and how results are shown.

The rules (Civil Code Art 201-203, docs/law/cn.md):

- hours and minutes run from the exact moment of the trigger; no calendar applies;
- days, weeks, months and years start on the day after the trigger (local date) and end at 24:00 of
  the last day, i.e. at 00:00 of the following local day. A month period ends on the corresponding day
  of the last month, or that month's last day when it has no such day. Under any calendar but
  ``none``, a last day that is a rest day moves to the next working day;
- working days count only the calendar's working days, from the day after the trigger, and end at
  24:00 of the N-th one.

A result that looked at a day in a year the calendar has no official schedule for is provisional.
"""

from __future__ import annotations

import calendar as gregorian
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import BadInput

if TYPE_CHECKING:
    from engine.clocks.calendars import Calendar

__all__ = [
    "DueResult",
    "Duration",
    "add_duration",
    "format_countdown",
    "format_instant",
    "parse_duration",
    "parse_instant",
    "remaining",
    "to_zone",
]

Unit = Literal["minutes", "hours", "days", "working_days", "months"]

_MALFORMED = "malformed duration '{text}': use e.g. 4h, 72h, 30 days, 3 working days, 1 month"


def _spellings() -> dict[str, tuple[Unit, int, str, str]]:
    """Spelling -> (unit, multiplier, singular, plural).

    Weeks are 7 days and years 12 months, so the arithmetic knows only five units; the normalised
    text keeps the operator's word.
    """
    table: list[tuple[tuple[str, ...], tuple[Unit, int, str, str]]] = [
        (("min", "mins", "minute", "minutes", "分钟"), ("minutes", 1, "minute", "minutes")),
        (("h", "hr", "hrs", "hour", "hours", "小时", "个小时"), ("hours", 1, "hour", "hours")),
        (
            ("d", "day", "days", "calendar day", "calendar days", "日", "天", "自然日"),
            ("days", 1, "day", "days"),
        ),
        (("w", "wk", "wks", "week", "weeks", "周", "星期", "个星期"), ("days", 7, "week", "weeks")),
        (
            (
                "working day",
                "working days",
                "business day",
                "business days",
                "workday",
                "workdays",
                "work day",
                "work days",
                "工作日",
                "个工作日",
            ),
            ("working_days", 1, "working day", "working days"),
        ),
        (("mo", "month", "months", "个月", "月"), ("months", 1, "month", "months")),
        (("y", "yr", "yrs", "year", "years", "年"), ("months", 12, "year", "years")),
    ]
    return {word: meaning for words, meaning in table for word in words}


_SPELLINGS = _spellings()
# Upper bounds keep dates inside what datetime can hold; about a century in each unit.
_MAX_AMOUNT: dict[Unit, int] = {
    "minutes": 60_000_000,
    "hours": 1_000_000,
    "days": 40_000,
    "working_days": 30_000,
    "months": 1_200,
}
_DURATION = re.compile(r"^(\d+)\s*([^\d\s].*)$")
# Longest run of rest days tolerated before a calendar is declared broken (a year and a bit).
_MAX_REST_RUN = 400


@dataclass(frozen=True)
class Duration:
    """A period of a legal rule, e.g. 72 hours or 3 working days; ``text`` is its normalised spelling."""

    amount: int
    unit: Unit
    text: str

    def __str__(self) -> str:
        return self.text


_MAX_TEXT = 100


def parse_duration(text: str) -> Duration:
    """Parse "4h", "72 hours", "30 days", "2 weeks", "3 working days", "1 month", "90 min", "1 year"."""
    raw = text if isinstance(text, str) else ""
    if len(raw) > _MAX_TEXT:  # no real duration is this long; its digits would not even convert
        raise BadInput(f"duration of {len(raw):,} characters refused: at most {_MAX_TEXT} (e.g. 72h)")
    match = _DURATION.match(raw.strip())
    meaning = _SPELLINGS.get(re.sub(r"\s+", " ", match.group(2)).lower()) if match else None
    if match is None or meaning is None:
        raise BadInput(_MALFORMED.format(text=raw))
    count = int(match.group(1))
    unit, multiplier, singular, plural = meaning
    if count == 0:
        raise BadInput(f"duration '{raw}' is zero: use a positive amount, e.g. 4h or 30 days")
    amount = count * multiplier
    if amount > _MAX_AMOUNT[unit]:
        raise BadInput(f"duration '{raw}' is too long: at most {_MAX_AMOUNT[unit]} {unit.replace('_', ' ')}")
    return Duration(amount=amount, unit=unit, text=f"{count} {singular if count == 1 else plural}")


def _zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as error:
        raise BadInput(
            f"unknown time zone '{zone}': use an IANA name such as Asia/Shanghai or UTC"
        ) from error


def _require_aware(instant: datetime) -> None:
    # A naive datetime here is a programming error, not operator input.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: pass an aware datetime")


def parse_instant(text: str, zone: str) -> datetime:
    """Parse an ISO-8601 time ("2026-11-20T09:30:00+08:00", "2026-11-20 09:30", "2026-11-20") to UTC.

    A time without an offset is read in ``zone``; a date alone means its midnight. A local time
    skipped by a daylight-saving change is read with the offset in force before the change (PEP 495).
    """
    tz = _zone(zone)
    raw = text.strip() if isinstance(text, str) else ""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as error:
        raise BadInput(
            f"malformed time '{text}': use ISO-8601, e.g. "
            "2026-11-20T09:30:00+08:00, 2026-11-20 09:30 or 2026-11-20"
        ) from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:
        raise BadInput(f"time '{text}' is outside the supported dates") from error


def to_zone(instant: datetime, zone: str) -> datetime:
    """The same instant, shown in ``zone``."""
    _require_aware(instant)
    return instant.astimezone(_zone(zone))


def format_instant(instant: datetime, zone: str) -> str:
    """ISO-8601 with the offset of ``zone``, to the second: "2026-11-20T09:30:00+08:00"."""
    return to_zone(instant, zone).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DueResult:
    """A computed due time, whether it is provisional, the calendar used and how it was reached."""

    due_at: datetime
    provisional: bool
    calendar: str
    explain: list[str] = field(default_factory=list)


class _Trail:
    """Collects explain lines and the years a computation looked at in its calendar."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.lines: list[str] = []
        self.years: set[int] = set()

    def working(self, day: date) -> bool:
        self.years.add(day.year)
        return self.calendar.is_working_day(day)

    def skip(self, day: date) -> None:
        self.lines.append(f"{day} skipped: {self.calendar.rest_reason(day) or 'rest day'}")

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first working day after it (each skip noted)."""
        run = 0
        while not self.working(day):
            self.skip(day)
            run += 1
            if run > _MAX_REST_RUN:
                raise BadInput(f"calendar {self.calendar.name} has no working day for {run} days after {day}")
            day += timedelta(days=1)
        return day

    def close(self) -> bool:
        """Add a line per year's data source; return whether any year was unannounced."""
        provisional = False
        for year in sorted(self.years):
            self.lines.append(f"calendar {self.calendar.name} {year}: {self.calendar.describe_year(year)}")
        for year in sorted(self.years):
            if not self.calendar.is_announced(year):
                self.lines.append(f"{year} schedule not announced: provisional")
                provisional = True
        return provisional


def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """24:00 of ``day`` in ``tz``, i.e. the first instant of the next local day, in UTC."""
    # A midnight skipped by a daylight-saving change is read with the earlier offset (fold=0), which
    # lands exactly on the change: still the first instant of that day.
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    """The corresponding day ``months`` later, or that month's last day when it has none."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, gregorian.monthrange(year, month + 1)[1]))


def _cite(calendar: Calendar, step: str) -> str:
    """The calendar's legal basis for ``step`` in parentheses, or "" when it names none."""
    basis = calendar.citations.get(step)
    return f" ({basis})" if basis else ""


def add_duration(start: datetime, duration: Duration, calendar: Calendar, zone: str) -> DueResult:
    """When a period of ``duration`` from ``start`` ends under ``calendar``, with the steps taken.

    ``zone`` decides the local day of the trigger and of midnight. ``due_at`` is aware, in UTC.
    """
    _require_aware(start)
    tz = _zone(zone)
    start = start.astimezone(UTC)
    opening = f"start {format_instant(start, zone)}"
    try:
        if duration.unit in ("minutes", "hours"):
            due_at = start + timedelta(**{duration.unit: duration.amount})
            return DueResult(
                due_at=due_at,
                provisional=False,
                calendar="none",
                explain=[
                    opening,
                    f"{duration.text} from the exact moment{_cite(calendar, 'hours')}: no calendar applies",
                    f"due {format_instant(due_at, zone)}",
                ],
            )
        trail = _Trail(calendar)
        trigger_day = start.astimezone(tz).date()
        first_day = trigger_day + timedelta(days=1)
        trail.lines.append(
            f"{opening}: the trigger day {trigger_day} is not counted; counting starts {first_day}"
            + _cite(calendar, "start")
        )
        if duration.unit == "working_days":
            last_day = _count_working_days(trail, first_day, duration)
        else:
            if duration.unit == "days":
                last_day = trigger_day + timedelta(days=duration.amount)
                trail.lines.append(f"{duration.text}: last day {last_day}")
            else:
                last_day = _add_months(trigger_day, duration.amount)
                clamped = last_day.day != trigger_day.day
                trail.lines.append(
                    f"{duration.text}: last day {last_day}"
                    + (f", the month's last day as it has no day {trigger_day.day}" if clamped else "")
                    + _cite(calendar, "months")
                )
            if calendar.moves_rest_days:
                moved_to = trail.next_working_day(last_day)
                if moved_to != last_day:
                    trail.lines.append(
                        f"last day moved from {last_day} to {moved_to} because {last_day} is a rest day"
                        + _cite(calendar, "rest_day")
                    )
                last_day = moved_to
        due_at = _end_of_day(last_day, tz)
        trail.lines.append(f"due at 24:00 of {last_day}: {format_instant(due_at, zone)}")
    except OverflowError as error:
        raise BadInput(f"{duration.text} from {start.date()} falls outside the supported dates") from error
    provisional = trail.close()
    return DueResult(due_at=due_at, provisional=provisional, calendar=calendar.name, explain=trail.lines)


def _count_working_days(trail: _Trail, first_day: date, duration: Duration) -> date:
    """The N-th working day from ``first_day`` on, noting each rest day passed."""
    trail.lines.append(f"counting {duration.text} of calendar {trail.calendar.name}")
    day = first_day - timedelta(days=1)
    for _ in range(duration.amount):
        day = trail.next_working_day(day + timedelta(days=1))
    trail.lines.append(f"working day {duration.amount}: {day}")
    return day


def remaining(due_at: datetime, now: datetime) -> timedelta:
    """Time left until ``due_at``; negative when overdue."""
    _require_aware(due_at)
    _require_aware(now)
    return due_at - now


def format_countdown(delta: timedelta) -> str:
    """A compact countdown: "3h 20m left", "2d 4h left", "overdue by 1d 2h", "due now".

    Only the two largest units are shown and the rest is cut off, so the time left is never overstated.
    """
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "due now"
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h {minutes}m" if minutes else f"{hours}h"
    else:
        text = f"{minutes}m" if minutes else "<1m"
    return f"{text} left" if seconds > 0 else f"overdue by {text}"
