"""China's working-day calendar: the State Council's yearly schedule of holidays and swapped working days.

The ``holidays`` package carries the notices it was built with; a file ``config/calendars/CN-<year>.toml``
replaces the package for its year, so a workspace can add a new year's notice without a release. A year
with neither is *unannounced*: the package still computes it from fixed rules (without the swapped
working days), and every deadline that looks at it is provisional.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from engine.clocks.calendar_base import CALENDARS_DIR, Calendar, is_weekend, parse_day
from engine.errors import BadInput

__all__ = ["ChinaCalendar", "Schedule"]

_CN_FILE = re.compile(r"^CN-(\d{4})\.toml$", re.IGNORECASE)
_FILE_KEYS = {"source", "verified", "holidays", "workdays"}


@dataclass(frozen=True)
class Schedule:
    """One year's official schedule: its rest days (with names) and its swapped weekend working days."""

    year: int
    rest: dict[date, str]
    workdays: frozenset[date]
    source: str
    verified: bool
    origin: str  # the file it was read from, or "holidays <version>"


def _reach(year: int) -> tuple[date, date]:
    """The days a year's notice may name: its own, and the neighbouring December and January."""
    return date(year - 1, 12, 1), date(year + 1, 1, 31)


@cache
def _package_schedule(year: int) -> Schedule:
    """The ``holidays`` package's China data for one year, cached: it never changes in a process."""
    from holidays.countries.china import China
    from holidays.version import __version__ as package_version

    if year < China.start_year:
        return Schedule(year, {}, frozenset(), "no data", False, "none")
    # One instance per year keeps each year's holidays apart from its neighbours'. Every instance also
    # carries all cross-year swapped days of the package (2005-12-31 from the 2006 notice...): keep
    # those in this year's reach only, as for a file.
    package = China(years=year, language="en_US")
    first, last = _reach(year)
    return Schedule(
        year=year,
        rest=dict(package.items()),
        workdays=frozenset(day for day in package.weekend_workdays if first <= day <= last),
        source="State Council notice as carried by the holidays package",
        verified=True,
        origin=f"holidays {package_version}",
    )


@cache
def _package_announced_years() -> frozenset[int]:
    """Years for which the package carries a State Council notice (its static table per year).

    Years outside that table are computed from fixed rules without the swapped working days. Should
    the table move in a later release, this returns nothing, which errs on the safe side: every year
    without a config file becomes provisional (and tests/test_calendars.py fails loudly).
    """
    from holidays.countries import china

    table = getattr(getattr(china, "ChinaStaticHolidays", None), "special_public_holidays", None)
    return frozenset(table) if isinstance(table, dict) else frozenset()


def _load_schedule(path: Path, year: int) -> Schedule:
    """Read and validate one ``CN-<year>.toml`` file; every error names the file."""
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadInput(f"{where}: cannot read calendar file: {error}") from error
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise BadInput(
            f"{where}: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(sorted(_FILE_KEYS))}"
        )
    source, verified = data.get("source"), data.get("verified")
    if not isinstance(source, str) or not source.strip():
        raise BadInput(
            f"{where}: 'source' must name the notice, e.g. \"State Council notice issued 2025-11-04\""
        )
    if not isinstance(verified, bool):
        raise BadInput(f"{where}: 'verified' must be true or false")
    first, last = _reach(year)

    def in_window(day: date) -> date:
        if not first <= day <= last:
            raise BadInput(f"{where}: {day} is outside the {year} schedule ({first} to {last})")
        return day

    rest: dict[date, str] = {}
    entries = data.get("holidays", [])
    if not isinstance(entries, list) or not entries:
        raise BadInput(
            f"{where}: 'holidays' must be a non-empty list of {{ date = ..., name = ... }} entries"
        )
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise BadInput(f"{where}: each holiday needs a name and a date (or from/to): got {entry!r}")
        if set(entry) == {"date", "name"}:
            start = end = in_window(parse_day(entry["date"], where))
        elif set(entry) == {"from", "to", "name"}:
            start = in_window(parse_day(entry["from"], where))
            end = in_window(parse_day(entry["to"], where))
            if end < start:
                raise BadInput(f"{where}: holiday '{entry['name']}' ends ({end}) before it starts ({start})")
        else:
            raise BadInput(f"{where}: a holiday has either date or from/to, and a name: got {entry!r}")
        day = start
        while day <= end:
            if day in rest:
                raise BadInput(f"{where}: {day} is listed twice as a holiday")
            rest[day] = entry["name"].strip()
            day += timedelta(days=1)

    raw_workdays = data.get("workdays", [])
    if not isinstance(raw_workdays, list):
        raise BadInput(f"{where}: 'workdays' must be a list of dates")
    workdays: set[date] = set()
    for value in raw_workdays:
        day = in_window(parse_day(value, where))
        if day in rest:
            raise BadInput(f"{where}: {day} is both a holiday and a working day")
        if not is_weekend(day):
            raise BadInput(
                f"{where}: working day {day} is not a Saturday or Sunday: list only swapped weekend days"
            )
        workdays.add(day)
    return Schedule(year, rest, frozenset(workdays), source.strip(), verified, where)


def _find_cn_files(config_dirs: list[Path]) -> dict[int, Path]:
    """The ``CN-<year>.toml`` file in force per year: the first folder in ``config_dirs`` wins."""
    found: dict[int, Path] = {}
    for folder in config_dirs:
        calendars = Path(folder) / CALENDARS_DIR
        if not calendars.is_dir():
            continue
        for path in sorted(calendars.iterdir()):
            match = _CN_FILE.match(path.name)
            if match and path.is_file():
                found.setdefault(int(match.group(1)), path)
    return found


class ChinaCalendar(Calendar):
    """The official Chinese calendar: holidays, rest days of holiday periods and swapped working days.

    Limitation: a weekend in late December of an announced year can still become a working day by
    the next year's notice (the 2007 notice did so for 2006-12-30 and 31). Such a day is not flagged
    provisional: only days in unannounced years are.
    """

    name = "CN"
    citations = {  # noqa: RUF012 - read-only class data
        "start": "Civil Code Art 201",
        "hours": "Civil Code Art 201 ¶2",
        "months": "Civil Code Art 202",
        "rest_day": "Civil Code Art 203",
    }

    def __init__(self, config_dirs: list[Path]) -> None:
        from holidays.version import __version__ as package_version

        self._package_version = package_version
        # Files are read and validated up front so a bad file is reported at once, naming it.
        self._files = {year: _load_schedule(path, year) for year, path in _find_cn_files(config_dirs).items()}
        self._digests = {
            year: hashlib.sha256(Path(schedule.origin).read_bytes()).hexdigest()[:12]
            for year, schedule in self._files.items()
        }

    def _schedule(self, year: int) -> Schedule:
        return self._files.get(year) or _package_schedule(year)

    def _explicit(self, day: date) -> tuple[bool, str | None] | None:
        # A notice can reach into the neighbouring year (the 2006 notice made 2005-12-31 a working
        # day), so the schedules of the year before and after are consulted after the day's own.
        for year in (day.year, day.year + 1, day.year - 1):
            schedule = self._schedule(year)
            if day in schedule.workdays:
                return True, None
            if day in schedule.rest:
                return False, schedule.rest[day]
        return None

    def is_working_day(self, day: date) -> bool:
        """A swapped weekend working day counts; holidays and rest days of holiday periods do not."""
        explicit = self._explicit(day)
        return explicit[0] if explicit else not is_weekend(day)

    def rest_reason(self, day: date) -> str | None:
        """The holiday's name from the schedule, or "weekend"."""
        explicit = self._explicit(day)
        if explicit:
            return explicit[1]
        return "weekend" if is_weekend(day) else None

    def is_announced(self, year: int) -> bool:
        """A config file covers the year, or the package carries its State Council notice."""
        return year in self._files or year in _package_announced_years()

    def last_announced_year(self) -> int | None:
        """The latest year with an official schedule (file or package)."""
        years = set(self._files) | _package_announced_years()
        return max(years) if years else None

    def describe_year(self, year: int) -> str:
        """The file or package the year's schedule comes from, and whether it is verified or official."""
        if year in self._files:
            schedule = self._files[year]
            check = "verified" if schedule.verified else "UNVERIFIED"
            return f"{schedule.source} ({Path(schedule.origin).name}, {check})"
        if self.is_announced(year):
            return f"State Council notice as carried by holidays {self._package_version}"
        return f"not announced: holidays {self._package_version} estimate without swapped working days"

    @property
    def version(self) -> str:
        """Package version plus each file in force with a digest of its content."""
        files = [f"CN-{year}.toml@{digest}" for year, digest in sorted(self._digests.items())]
        return "; ".join([f"CN: holidays {self._package_version}", *files])
