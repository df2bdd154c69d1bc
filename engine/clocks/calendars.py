"""Working-day calendars: which days count, why a day is a rest day, and which years are official.

Three kinds of calendar:

- ``none``: Monday to Friday are working days and no holiday exists; day periods under it are pure
  calendar days (the last day never moves).
- ``CN``: the State Council's yearly schedule, with the files that add a new year's notice and the
  provisional unannounced years: :mod:`engine.clocks.china`.
- any other country the ``holidays`` package knows (``BR``, ``DE``, ``US``...): its public holidays and
  its weekend, derived by the package from fixed rules. With a file ``config/calendars/<CODE>.toml``
  (shipped for US and BR) they count as official only through the year that file was checked
  through; later years make a deadline provisional, the same guard as CN's unannounced years.
  Without a file every year is treated as announced.

The ``holidays`` import costs about 100 ms, so it happens inside the functions that need it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.clocks.calendar_base import CALENDARS_DIR, Calendar, NoCalendar, parse_day
from engine.clocks.china import ChinaCalendar
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
        closures[parse_day(entry["date"], where)] = str(entry["name"]).strip()
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return CountryFile(source.strip(), verified, through, closures, where, digest)


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
