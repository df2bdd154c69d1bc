"""Working-day calendars: which days count, why a day is a rest day, and which years are official.

Three kinds of calendar:

- ``none``: Monday to Friday are working days and no holiday exists; day periods under it are pure
  calendar days (the last day never moves).
- ``CN``: the State Council's yearly schedule. The ``holidays`` package carries the notices it was
  built with; a file ``config/calendars/CN-<year>.toml`` replaces the package for its year, so a
  workspace can add a new year's notice without a release. A year with neither is *unannounced*: the
  package still computes it from fixed rules (without the swapped working days), and every deadline
  that looks at it is provisional.
- any other country the ``holidays`` package knows (``BR``, ``DE``, ``US``...): its public holidays and
  its weekend, derived by the package from fixed rules. With a file ``config/calendars/<CODE>.toml``
  (shipped for US and BR) they count as official only through the year that file was checked
  through; later years make a deadline provisional, the same guard as CN's unannounced years.
  Without a file every year is treated as announced.

The ``holidays`` import costs about 100 ms, so it happens inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import BadInput
from engine.workspace import builtin_root

__all__ = [
    "Calendar",
    "ChinaCalendar",
    "CountryCalendar",
    "CountryFile",
    "NoCalendar",
    "get_calendar",
    "last_announced_year",
]

CALENDARS_DIR = "calendars"
_CN_FILE = re.compile(r"^CN-(\d{4})\.toml$", re.IGNORECASE)
_FILE_KEYS = {"source", "verified", "holidays", "workdays"}
SATURDAY = 5


def _is_weekend(day: date) -> bool:
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
        return not _is_weekend(day)

    def rest_reason(self, day: date) -> str | None:
        """Saturday and Sunday are "weekend"."""
        return "weekend" if _is_weekend(day) else None


class CountryCalendar(Calendar):
    """A country's public holidays and weekend, as the ``holidays`` package computes them.

    With a file ``config/calendars/<CODE>.toml`` (``source``, ``verified``, ``checked_through`` and
    optional ``closures``), the package's dates count as official only through ``checked_through``,
    the last year someone compared them with the official list (e.g. OPM's federal holidays); a day in
    a later year makes a deadline provisional, as an unannounced year does for CN. ``closures`` adds
    rest days the package cannot know (a federal closure by executive order). A workspace file of the
    same name replaces the built-in one, so a new year is added without a release.
    """

    def __init__(self, code: str, config_dirs: list[Path] | None = None) -> None:
        import holidays
        from holidays.version import __version__ as package_version

        probe = holidays.country_holidays(code)
        # English names keep the explain trail in one language when the package has them.
        language = "en_US" if "en_US" in probe.supported_languages else None
        self._holidays = holidays.country_holidays(code, language=language)
        self.name = str(self._holidays.country)
        self._package_version = package_version
        self._file = _load_country_file(self.name, config_dirs or [])

    def _prepare(self, day: date) -> None:
        # The package fills a year on first lookup; a swapped working day can come from the next
        # year's data, so both years are filled before asking about the weekend.
        for year in (day.year, day.year + 1):
            _ = date(year, 1, 1) in self._holidays

    def is_working_day(self, day: date) -> bool:
        """Not a public holiday or a listed closure, and not a weekend day unless swapped to a working day."""
        if self._file is not None and day in self._file.closures:
            return False
        self._prepare(day)
        return bool(self._holidays.is_working_day(day))

    def rest_reason(self, day: date) -> str | None:
        """The holiday's or closure's name, or "weekend"."""
        if self.is_working_day(day):
            return None
        if self._file is not None and day in self._file.closures:
            return self._file.closures[day]
        return self._holidays.get(day) or "weekend"

    def is_announced(self, year: int) -> bool:
        """Every year without a calendar file; with one, the years through ``checked_through``."""
        return self._file is None or year <= self._file.checked_through

    def last_announced_year(self) -> int | None:
        """``checked_through`` of the calendar file, or None when every year is rule-based."""
        return self._file.checked_through if self._file is not None else None

    def describe_year(self, year: int) -> str:
        """Computed by the package; with a file, whether the year was checked against the official list."""
        computed = f"holidays {self._package_version}, computed from fixed rules"
        if self._file is None:
            return f"{computed} (treated as announced)"
        check = "verified" if self._file.verified else "UNVERIFIED"
        if self.is_announced(year):
            return f"{computed}, checked through {self._file.checked_through}: {self._file.source} ({check})"
        return f"{computed}; not checked beyond {self._file.checked_through} ({Path(self._file.origin).name})"

    @property
    def version(self) -> str:
        """Country code, package version and the calendar file's digest when there is one."""
        base = f"{self.name}: holidays {self._package_version}"
        return f"{base}; {self.name}.toml@{self._file.digest}" if self._file is not None else base


@dataclass(frozen=True)
class CountryFile:
    """``config/calendars/<CODE>.toml``: through which year the package's dates are checked, and closures."""

    source: str
    verified: bool
    checked_through: int
    closures: dict[date, str]
    origin: str
    digest: str


_COUNTRY_KEYS = {"source", "verified", "checked_through", "closures"}


def _load_country_file(code: str, config_dirs: list[Path]) -> CountryFile | None:
    """The first ``calendars/<CODE>.toml`` in the config folders, validated; None when there is none."""
    found = [Path(d) / CALENDARS_DIR / f"{code}.toml" for d in config_dirs]
    path = next((p for p in found if p.is_file()), None)
    if path is None:
        return None
    where = str(path)
    from engine.files import load_toml, read_bytes

    raw = read_bytes(path, what="calendar file", limit_key="data_file_bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{where}: cannot read calendar file: {error}") from error
    data = load_toml(text, where)
    unknown = sorted(set(data) - _COUNTRY_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_COUNTRY_KEYS))
        raise BadInput(f"{where}: unknown key(s) {', '.join(unknown)}: allowed are {allowed}")
    source, verified, through = data.get("source"), data.get("verified"), data.get("checked_through")
    if not isinstance(source, str) or not source.strip():
        raise BadInput(f"{where}: 'source' must name the official list the dates were checked against")
    if not isinstance(verified, bool):
        raise BadInput(f"{where}: 'verified' must be true or false")
    if not isinstance(through, int) or isinstance(through, bool) or not 1900 <= through <= 2200:
        raise BadInput(f"{where}: 'checked_through' must be a year such as 2027")
    closures: dict[date, str] = {}
    entries = data.get("closures", [])
    if not isinstance(entries, list):
        raise BadInput(f"{where}: 'closures' must be a list of {{ date = ..., name = ... }} entries")
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"date", "name"} or not str(entry["name"]).strip():
            raise BadInput(f"{where}: each closure has a date and a name: got {entry!r}")
        closures[_parse_day(entry["date"], where)] = str(entry["name"]).strip()
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return CountryFile(source.strip(), verified, through, closures, where, digest)


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


def _parse_day(value: Any, where: str) -> date:
    # TOML has native dates; quoted "YYYY-MM-DD" strings are accepted too.
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise BadInput(f"{where}: {value!r} is not a date: write YYYY-MM-DD")


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
            start = end = in_window(_parse_day(entry["date"], where))
        elif set(entry) == {"from", "to", "name"}:
            start = in_window(_parse_day(entry["from"], where))
            end = in_window(_parse_day(entry["to"], where))
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
        day = in_window(_parse_day(value, where))
        if day in rest:
            raise BadInput(f"{where}: {day} is both a holiday and a working day")
        if not _is_weekend(day):
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
        return explicit[0] if explicit else not _is_weekend(day)

    def rest_reason(self, day: date) -> str | None:
        """The holiday's name from the schedule, or "weekend"."""
        explicit = self._explicit(day)
        if explicit:
            return explicit[1]
        return "weekend" if _is_weekend(day) else None

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


def get_calendar(name: str, config_dirs: list[Path] | None = None) -> Calendar:
    """The calendar called ``name``: "CN", "none" or a country code the ``holidays`` package knows.

    ``config_dirs`` is the config search path, workspace first (``Workspace.search_path("config")``);
    by default only the built-in config. Nothing is cached, so a file added to a running workspace
    counts from the next call.
    """
    wanted = name.strip().upper() if isinstance(name, str) else ""
    if wanted == "NONE":
        return NoCalendar()
    if wanted:
        import holidays

        if wanted in holidays.list_supported_countries():
            dirs = config_dirs if config_dirs is not None else [builtin_root() / "config"]
            if holidays.country_holidays(wanted).country == ChinaCalendar.name:
                return ChinaCalendar(dirs)
            return CountryCalendar(wanted, dirs)
    raise BadInput(f"unknown calendar '{name}': use CN, none or a country code such as BR, DE, US")


def last_announced_year(name: str, config_dirs: list[Path] | None = None) -> int | None:
    """The last year whose official schedule ``name`` carries; None when every year is rule-based."""
    return get_calendar(name, config_dirs).last_announced_year()
