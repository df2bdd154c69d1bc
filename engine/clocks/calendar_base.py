"""What every working-day calendar answers, and the calendar without holidays (``none``).

The calendars themselves: :mod:`engine.clocks.calendars` (countries of the ``holidays`` package, and
:func:`~engine.clocks.calendars.get_calendar`), :mod:`engine.clocks.china` (the State Council's schedule).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from typing import Any

from engine.errors import BadInput

__all__ = ["CALENDARS_DIR", "SATURDAY", "Calendar", "NoCalendar", "is_weekend", "parse_day"]

CALENDARS_DIR = "calendars"
SATURDAY = 5


def is_weekend(day: date) -> bool:
    """Saturday or Sunday."""
    return day.weekday() >= SATURDAY


class Calendar(ABC):
    """What a deadline needs to know about days: working or not, why not, and whether the year is official."""

    name: str = ""
    #: Whether a day period whose last day is a rest day moves to the next working day.
    moves_rest_days: bool = True
    #: The legal basis of each counting step ("start", "hours", "months", "rest_day"), cited in the
    #: explain trail; only calendars tied to one legal system carry it.
    citations: dict[str, str] = {}  # noqa: RUF012 - read-only class data

    @abstractmethod
    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` counts as a working day."""

    @abstractmethod
    def rest_reason(self, day: date) -> str | None:
        """Why ``day`` is a rest day ("weekend", "National Day holiday"...), or None for a working day."""

    def is_announced(self, year: int) -> bool:
        """Whether ``year``'s schedule is official, so that results using it are final."""
        return True

    def last_announced_year(self) -> int | None:
        """The last official year, or None when every year is computed from fixed rules."""
        return None

    def describe_year(self, year: int) -> str:
        """Where ``year``'s data comes from, in words for the explain trail."""
        return "Monday to Friday, no holidays"

    @property
    def version(self) -> str:
        """Identifies the data in force, so a stored deadline records what it was computed with."""
        return self.name


class NoCalendar(Calendar):
    """No holidays: working days are Monday to Friday, and day periods are pure calendar days."""

    name = "none"
    moves_rest_days = False

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday."""
        return not is_weekend(day)

    def rest_reason(self, day: date) -> str | None:
        """Saturday and Sunday are "weekend"."""
        return "weekend" if is_weekend(day) else None


def parse_day(value: Any, where: str) -> date:
    """A day from a calendar file: a TOML date, or a quoted "YYYY-MM-DD" string."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise BadInput(f"{where}: {value!r} is not a date: write YYYY-MM-DD")
