"""Working-day calendars: the official Chinese schedule, config files, other countries, ``none``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import holidays
import pytest

from engine.clocks.calendars import ChinaCalendar, get_calendar, last_announced_year
from engine.errors import BadInput
from engine.workspace import builtin_root

BUILTIN = [builtin_root() / "config"]

# docs/law/cn.md, State Council notice for 2026 (issued 2025-11-04).
REST_2026 = [
    ("2026-01-01", "2026-01-03"),
    ("2026-02-15", "2026-02-23"),
    ("2026-04-04", "2026-04-06"),
    ("2026-05-01", "2026-05-05"),
    ("2026-06-19", "2026-06-21"),
    ("2026-09-25", "2026-09-27"),
    ("2026-10-01", "2026-10-07"),
]
WORKDAYS_2026 = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]

# The 2006 notice (国办发明电〔2005〕35号) says "12月31日（星期六）上班": 2005-12-31 was a working
# Saturday. The holidays package has it; chinese_calendar files workdays by the notice's year only and
# misses this one day of 2005, so the cross-check pins our answer instead of following chinese_calendar.
CHINESE_CALENDAR_ERRATA = {date(2005, 12, 31): True}


def days_between(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def write_cn_file(config_dir: Path, year: int, body: str) -> Path:
    folder = config_dir / "calendars"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"CN-{year}.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD_2027 = """
source = "test notice for 2027"
verified = true
holidays = [
    { date = 2027-01-01, name = "New Year's Day holiday" },
    { from = "2027-02-06", to = "2027-02-12", name = "Spring Festival holiday" },
]
workdays = ["2027-02-14", 2027-02-20]
"""


HEAD = 'source = "x"\nverified = true\n'
ONE_DAY = '{ date = 2027-02-06, name = "b" }'
ONE_HOLIDAY = 'holidays = [{ date = 2027-02-06, name = "a" }]\n'


@pytest.fixture(scope="module")
def cn() -> ChinaCalendar:
    calendar = get_calendar("CN", BUILTIN)
    assert isinstance(calendar, ChinaCalendar)
    return calendar


class TestGetCalendar:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("CN", "CN"),
            ("cn", "CN"),
            ("CHN", "CN"),
            ("none", "none"),
            ("NONE", "none"),
            ("br", "BR"),
            ("BRA", "BR"),
            ("DE", "DE"),
            ("us", "US"),
        ],
    )
    def test_names(self, name: str, expected: str) -> None:
        """Names are case-insensitive, and alpha-3 codes resolve to the same calendar."""
        assert get_calendar(name).name == expected

    @pytest.mark.parametrize("name", ["XX", "", "  ", "CN-2026", "Mars"])
    def test_unknown(self, name: str) -> None:
        """An unknown calendar is bad input whose message lists what is allowed."""
        with pytest.raises(BadInput) as caught:
            get_calendar(name)
        assert str(caught.value) == (
            f"unknown calendar '{name}': use CN, none or a country code such as BR, DE, US"
        )

    def test_last_announced_year(self) -> None:
        """CN's last official year is 2026; BR and US are checked through 2027; other rule-based: none."""
        assert last_announced_year("CN", BUILTIN) == 2026
        assert last_announced_year("BR", BUILTIN) == last_announced_year("US", BUILTIN) == 2027
        assert last_announced_year("DE", BUILTIN) is None
        assert last_announced_year("none") is None


class TestHolidaysPackageFacts:
    def test_2027_not_announced_in_package(self) -> None:
        """holidays 0.109 carries State Council notices up to 2026; 2027 is only estimated from rules."""
        from holidays.countries.china import ChinaStaticHolidays

        years = set(ChinaStaticHolidays.special_public_holidays)
        assert 2026 in years and 2027 not in years
        estimate = holidays.China(years=2027)
        # Every instance carries the package's few cross-year swapped days (2001-12-29...); none is
        # near 2027, so the estimate has no swapped working day of its own.
        assert not {day for day in estimate.weekend_workdays if day.year >= 2026}
        assert not any("substituted" in name.lower() or "调休" in name for name in estimate.values())

    def test_announced_years(self, cn: ChinaCalendar) -> None:
        """Package years with a notice are announced, 2027 and pre-2001 years are not."""
        assert cn.is_announced(2001) and cn.is_announced(2025) and cn.is_announced(2026)
        assert not cn.is_announced(2027) and not cn.is_announced(2000)


class TestChinaCalendar:
    def test_agrees_with_chinese_calendar(self, cn: ChinaCalendar) -> None:
        """Every day chinese_calendar covers gets the same working-day answer, errata aside."""
        covered = sorted(chinese_calendar.holidays) + sorted(chinese_calendar.workdays)
        first, last = date(min(covered).year, 1, 1), date(max(covered).year, 12, 31)
        assert first.year <= 2004 and last.year >= 2026
        day, disagreements = first, []
        while day <= last:
            expected = CHINESE_CALENDAR_ERRATA.get(day, chinese_calendar.is_workday(day))
            if cn.is_working_day(day) != expected:
                disagreements.append(day)
            day += timedelta(days=1)
        assert disagreements == []

    def test_errata_day_is_in_package(self) -> None:
        """The day we differ from chinese_calendar on is the holidays package's working Saturday."""
        assert date(2005, 12, 31) in holidays.China(years=2006).weekend_workdays

    def test_2026_matches_law_cn(self, cn: ChinaCalendar) -> None:
        """2026 rest periods, swapped working days, and every other day by the weekday rule."""
        rest = {day for first, last in REST_2026 for day in days_between(first, last)}
        work = {date.fromisoformat(day) for day in WORKDAYS_2026}
        for day in days_between("2026-01-01", "2026-12-31"):
            expected = day in work or (day not in rest and day.weekday() < 5)
            assert cn.is_working_day(day) is expected, day

    def test_2026_file_and_package_agree(self, cn: ChinaCalendar) -> None:
        """The shipped 2026 file and the package's own 2026 data give the same working days."""
        package_only = get_calendar("CN", [])
        for day in days_between("2025-12-01", "2027-01-31"):
            assert cn.is_working_day(day) == package_only.is_working_day(day), day

    @pytest.mark.parametrize(
        ("day", "reason"),
        [
            ("2026-10-03", "National Day holiday"),
            ("2026-02-21", "Spring Festival holiday"),
            ("2026-03-07", "weekend"),
            ("2026-10-10", None),
            ("2026-03-09", None),
        ],
    )
    def test_rest_reason(self, cn: ChinaCalendar, day: str, reason: str | None) -> None:
        """A rest day says why; a working day (including a swapped Saturday) has no reason."""
        assert cn.rest_reason(date.fromisoformat(day)) == reason

    def test_package_years_name_the_holiday(self, cn: ChinaCalendar) -> None:
        """Years without a file take names from the package."""
        assert cn.rest_reason(date(2025, 10, 1)) == "National Day"

    def test_version_names_files(self, cn: ChinaCalendar) -> None:
        """The version records the package and a digest of each file in force."""
        assert cn.version.startswith(f"CN: holidays {holidays.__version__}; CN-2026.toml@")


class TestConfigFiles:
    def test_workspace_adds_2027(self, tmp_path: Path) -> None:
        """A workspace file announces a new year and its days replace the package's estimate."""
        write_cn_file(tmp_path, 2027, GOOD_2027)
        calendar = get_calendar("CN", [tmp_path, *BUILTIN])
        assert calendar.is_announced(2027) and calendar.last_announced_year() == 2027
        assert not calendar.is_working_day(date(2027, 2, 12))  # Friday in the file's holiday
        assert calendar.is_working_day(date(2027, 2, 20))  # Saturday swapped to a working day
        assert calendar.is_working_day(date(2027, 10, 4))  # the package estimate's holiday is gone
        assert calendar.rest_reason(date(2027, 2, 8)) == "Spring Festival holiday"

    def test_workspace_shadows_builtin(self, tmp_path: Path) -> None:
        """A workspace CN-2026.toml replaces the built-in one for 2026."""
        write_cn_file(
            tmp_path,
            2026,
            'source = "own"\nverified = false\nholidays = [{ date = 2026-03-10, name = "Test rest day" }]\n',
        )
        calendar = get_calendar("CN", [tmp_path, *BUILTIN])
        assert not calendar.is_working_day(date(2026, 3, 10))
        assert calendar.is_working_day(date(2026, 10, 8))
        assert not calendar.is_working_day(date(2026, 10, 10))  # no longer swapped
        assert "UNVERIFIED" in calendar.describe_year(2026)

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (f'{HEAD}holidays = [{{ date = "2027-13-01", name = "a" }}]', "is not a date"),
            (f"{HEAD}{ONE_HOLIDAY}workdays = [2027-02-06]", "both a holiday and a working day"),
            (f"{HEAD}{ONE_HOLIDAY}workdays = [2027-02-08]", "not a Saturday or Sunday"),
            (f"{HEAD}holiday = []", "unknown key(s) holiday"),
            (f"verified = true\n{ONE_HOLIDAY}", "'source'"),
            (f'source = "x"\nverified = "yes"\n{ONE_HOLIDAY}', "'verified'"),
            (f"{HEAD}holidays = [{{ date = 2027-02-06 }}]", "needs a name"),
            (
                f'{HEAD}holidays = [{{ from = 2027-02-06, to = 2027-02-01, name = "a" }}]',
                "ends (2027-02-01) before it starts",
            ),
            (f'{HEAD}holidays = [{{ date = 2028-06-01, name = "a" }}]', "outside the 2027"),
            (
                f'{HEAD}holidays = [{{ from = 2027-02-05, to = 2027-02-07, name = "a" }}, {ONE_DAY}]',
                "listed twice",
            ),
            (f"{HEAD}holidays = []", "non-empty list"),
            ("source = [unclosed\n", "cannot read calendar file"),
        ],
    )
    def test_bad_file(self, tmp_path: Path, body: str, problem: str) -> None:
        """A malformed file is bad input naming the file and the problem."""
        path = write_cn_file(tmp_path, 2027, body)
        with pytest.raises(BadInput) as caught:
            get_calendar("CN", [tmp_path, *BUILTIN])
        assert str(path) in str(caught.value) and problem in str(caught.value)

    def test_other_files_ignored(self, tmp_path: Path) -> None:
        """Only CN-<year>.toml files are read from config/calendars."""
        (tmp_path / "calendars").mkdir()
        (tmp_path / "calendars" / "notes.toml").write_text("not = [toml", encoding="utf-8")
        assert get_calendar("CN", [tmp_path, *BUILTIN]).last_announced_year() == 2026


class TestOtherCalendars:
    def test_brazil(self) -> None:
        """BR: Tiradentes is a holiday, weekends rest, years past calendars/BR.toml are provisional."""
        br = get_calendar("BR")
        assert not br.is_working_day(date(2026, 4, 21))
        assert br.rest_reason(date(2026, 4, 21)) == "Tiradentes' Day"
        assert br.rest_reason(date(2026, 4, 25)) == "weekend"
        assert br.is_working_day(date(2026, 4, 22))
        assert br.is_announced(2027) and not br.is_announced(2028) and br.moves_rest_days
        assert get_calendar("DE").is_announced(2040)  # no calendar file: rule-based years all count

    def test_none(self) -> None:
        """none: Monday to Friday, no holidays, day periods never move."""
        none = get_calendar("none")
        assert none.is_working_day(date(2026, 10, 1)) and not none.is_working_day(date(2026, 10, 10))
        assert none.rest_reason(date(2026, 10, 10)) == "weekend" and not none.moves_rest_days
        assert none.is_announced(2099)
