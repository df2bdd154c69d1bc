"""Legal time arithmetic: durations, instants, due dates under calendars, countdowns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clocks.calendars import Calendar, get_calendar
from engine.clocks.durations import (
    DueResult,
    Duration,
    add_duration,
    format_countdown,
    format_instant,
    parse_duration,
    parse_instant,
    remaining,
    to_zone,
)
from engine.errors import BadInput
from engine.workspace import builtin_root

SHANGHAI = "Asia/Shanghai"
BUILTIN = [builtin_root() / "config"]
CN = get_calendar("CN", BUILTIN)
NONE = get_calendar("none")

FILE_2027 = """
source = "test copy of a 2027 notice"
verified = {verified}
holidays = [{{ from = 2027-01-01, to = 2027-01-03, name = "New Year's Day holiday" }}]
workdays = []
"""


def due(start: str, duration: str, calendar: Calendar = CN, zone: str = SHANGHAI) -> DueResult:
    return add_duration(parse_instant(start, zone), parse_duration(duration), calendar, zone)


def local(result: DueResult, zone: str = SHANGHAI) -> str:
    return format_instant(result.due_at, zone)


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "amount", "unit", "normalised"),
        [
            ("4h", 4, "hours", "4 hours"),
            ("72h", 72, "hours", "72 hours"),
            ("1 hour", 1, "hours", "1 hour"),
            ("90 min", 90, "minutes", "90 minutes"),
            ("30 days", 30, "days", "30 days"),
            ("30d", 30, "days", "30 days"),
            ("60 calendar days", 60, "days", "60 days"),
            ("2 weeks", 14, "days", "2 weeks"),
            ("3 working days", 3, "working_days", "3 working days"),
            ("4 Business Days", 4, "working_days", "4 working days"),
            ("  3   working   days ", 3, "working_days", "3 working days"),
            ("1 month", 1, "months", "1 month"),
            ("2 months", 2, "months", "2 months"),
            ("1 year", 12, "months", "1 year"),
            ("3个工作日", 3, "working_days", "3 working days"),
            ("30日", 30, "days", "30 days"),
            ("72小时", 72, "hours", "72 hours"),
        ],
    )
    def test_accepted(self, text: str, amount: int, unit: str, normalised: str) -> None:
        """Common spellings parse to an amount in one of five units and a normalised text."""
        assert parse_duration(text) == Duration(amount, unit, normalised)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "text", ["", "3", "-4h", "4 parsecs", "1.5h", "3 fortnights", "h", "4 h h", "four h"]
    )
    def test_malformed(self, text: str) -> None:
        """Anything else is bad input with the one-line hint."""
        with pytest.raises(BadInput) as caught:
            parse_duration(text)
        assert str(caught.value) == (
            f"malformed duration '{text}': use e.g. 4h, 72h, 30 days, 3 working days, 1 month"
        )

    def test_zero_and_huge(self) -> None:
        """A zero amount and an amount past a century are refused."""
        with pytest.raises(BadInput, match="zero"):
            parse_duration("0 days")
        with pytest.raises(BadInput, match="too long"):
            parse_duration("99999999 days")

    @given(
        st.integers(1, 100), st.sampled_from(["h", "min", "days", "weeks", "working days", "months", "years"])
    )
    def test_text_round_trips(self, amount: int, unit: str) -> None:
        """Parsing the normalised text gives the same duration."""
        parsed = parse_duration(f"{amount} {unit}")
        assert parse_duration(parsed.text) == parsed


class TestInstants:
    @pytest.mark.parametrize(
        ("text", "utc"),
        [
            ("2026-11-20T09:30:00+08:00", "2026-11-20T01:30:00+00:00"),
            ("2026-11-20T09:30", "2026-11-20T01:30:00+00:00"),
            ("2026-11-20 09:30", "2026-11-20T01:30:00+00:00"),
            ("2026-11-20", "2026-11-19T16:00:00+00:00"),
            ("2026-11-20T09:30:00Z", "2026-11-20T09:30:00+00:00"),
            ("2026-11-20T09:30:00-05:00", "2026-11-20T14:30:00+00:00"),
        ],
    )
    def test_parse(self, text: str, utc: str) -> None:
        """Offsets are honoured; times without one are read in the zone; a date means midnight."""
        parsed = parse_instant(text, SHANGHAI)
        assert parsed.tzinfo is UTC and parsed.isoformat() == utc

    @pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01", "2026-11-20 25:00", "20.11.2026"])
    def test_garbage(self, text: str) -> None:
        """Unparseable times are bad input."""
        with pytest.raises(BadInput, match="malformed time"):
            parse_instant(text, SHANGHAI)

    def test_out_of_range(self) -> None:
        """A time that cannot be held in UTC is bad input, not an overflow traceback."""
        with pytest.raises(BadInput, match="outside the supported dates"):
            parse_instant("0001-01-01T00:00:00+08:00", SHANGHAI)

    @pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "Asia/"])
    def test_unknown_zone(self, zone: str) -> None:
        """A zone that does not exist is bad input, even when the time carries an offset."""
        with pytest.raises(BadInput, match="unknown time zone"):
            parse_instant("2026-11-20T09:30:00+08:00", zone)

    def test_format_and_to_zone(self) -> None:
        """Formatting shows the zone's offset to the second."""
        instant = datetime(2026, 11, 20, 1, 30, 15, 999, tzinfo=UTC)
        assert format_instant(instant, SHANGHAI) == "2026-11-20T09:30:15+08:00"
        assert format_instant(instant, "UTC") == "2026-11-20T01:30:15+00:00"
        assert to_zone(instant, "Europe/Berlin").utcoffset() == timedelta(hours=1)

    def test_naive_datetime_is_a_bug(self) -> None:
        """Code passing a naive datetime fails loudly rather than guessing a zone."""
        with pytest.raises(ValueError, match="naive"):
            to_zone(datetime(2026, 1, 1), SHANGHAI)

    @given(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
        st.sampled_from([SHANGHAI, "UTC", "America/New_York", "Europe/Berlin", "America/Sao_Paulo"]),
    )
    def test_round_trip(self, instant: datetime, zone: str) -> None:
        """format_instant then parse_instant gives back the instant, to the second."""
        assert parse_instant(format_instant(instant, zone), zone) == instant.replace(microsecond=0)


class TestHours:
    def test_across_midnight(self) -> None:
        """Hours run from the exact moment, across midnight, with no calendar."""
        result = due("2026-09-30T22:00", "4h")
        assert local(result) == "2026-10-01T02:00:00+08:00"
        assert (result.provisional, result.calendar) == (False, "none")
        assert "from the exact moment (Civil Code Art 201 ¶2)" in result.explain[1]

    def test_minutes_into_a_holiday(self) -> None:
        """A holiday does not stop an hour clock."""
        assert local(due("2026-10-01T09:00", "90 min")) == "2026-10-01T10:30:00+08:00"

    def test_elapsed_time_across_dst(self) -> None:
        """Across a daylight-saving change, hours are elapsed time, not wall-clock time."""
        result = due("2026-03-08T01:30", "1h", NONE, "America/New_York")
        assert format_instant(result.due_at, "America/New_York") == "2026-03-08T03:30:00-04:00"


class TestDays:
    def test_last_day_in_national_day(self) -> None:
        """30 days ending on 1 Oct 2026 move to 8 Oct, after the National Day rest days."""
        result = due("2026-09-01T10:00", "30 days")
        assert local(result) == "2026-10-09T00:00:00+08:00"
        assert "2026-10-03 skipped: National Day holiday" in result.explain
        assert any(
            "moved from 2026-10-01 to 2026-10-08" in line and "Civil Code Art 203" in line
            for line in result.explain
        )
        assert not result.provisional and result.calendar == "CN"

    def test_last_day_on_weekend(self) -> None:
        """A last day on Saturday moves to Monday under CN, and stays under none."""
        assert local(due("2026-06-25T10:00", "30 days")) == "2026-07-28T00:00:00+08:00"
        assert local(due("2026-06-25T10:00", "30 days", NONE)) == "2026-07-26T00:00:00+08:00"

    def test_working_saturday_does_not_move(self) -> None:
        """10 Oct 2026 is a swapped working Saturday, so a last day there stays."""
        result = due("2026-09-10T10:00", "30 days")
        assert local(result) == "2026-10-11T00:00:00+08:00"
        assert not any("skipped" in line for line in result.explain)

    def test_weeks(self) -> None:
        """Weeks are seven days each."""
        assert due("2026-03-02T10:00", "2 weeks").due_at == due("2026-03-02T10:00", "14 days").due_at

    def test_trigger_at_midnight(self) -> None:
        """The trigger day never counts, even when the trigger is at 00:00."""
        assert local(due("2026-03-02T00:00", "1 day")) == "2026-03-04T00:00:00+08:00"


class TestMonths:
    def test_jan_31_plus_one_month(self) -> None:
        """Jan 31 + 1 month ends on Feb 28, which in 2026 is a working Saturday in China."""
        result = due("2026-01-31T10:00", "1 month")
        assert local(result) == "2026-03-01T00:00:00+08:00"
        assert any("has no day 31" in line for line in result.explain)

    def test_month_end_moves_under_a_country_calendar(self) -> None:
        """Under BR, Feb 28 2026 is a plain Saturday, so the last day moves to Monday Mar 2."""
        zone = "America/Sao_Paulo"
        result = due("2026-01-31T10:00", "1 month", get_calendar("BR"), zone)
        assert format_instant(result.due_at, zone) == "2026-03-03T00:00:00-03:00"

    @pytest.mark.parametrize(
        ("start", "duration", "due_local"),
        [
            ("2028-01-31", "1 month", "2028-03-01T00:00:00+08:00"),  # leap year: Feb 29
            ("2026-03-31", "1 month", "2026-05-01T00:00:00+08:00"),
            ("2026-01-15", "13 months", "2027-02-16T00:00:00+08:00"),
            ("2028-02-29", "1 year", "2029-03-01T00:00:00+08:00"),
        ],
    )
    def test_corresponding_day(self, start: str, duration: str, due_local: str) -> None:
        """The last day is the corresponding day of the last month, else that month's last day."""
        assert local(due(start, duration, NONE)) == due_local


class TestWorkingDays:
    def test_spring_festival(self) -> None:
        """3 working days from 12 Feb 2026: 13 Feb, Saturday 14 Feb (swapped), then 24 Feb."""
        result = due("2026-02-12T15:00", "3 working days")
        assert local(result) == "2026-02-25T00:00:00+08:00"
        skipped = [line for line in result.explain if "skipped" in line]
        assert skipped[0] == "2026-02-15 skipped: Spring Festival holiday" and len(skipped) == 9

    def test_swapped_saturday_counts(self) -> None:
        """28 Feb 2026 is a working Saturday: the third working day after 25 Feb."""
        assert local(due("2026-02-25T09:00", "3 working days")) == "2026-03-01T00:00:00+08:00"

    def test_none_counts_monday_to_friday(self) -> None:
        """Under none, holidays count as working days and weekends do not."""
        assert local(due("2026-10-01T09:00", "3 working days", NONE)) == "2026-10-07T00:00:00+08:00"

    def test_brazil(self) -> None:
        """BR: 3 working days from Friday 17 Apr 2026 skip the weekend and Tiradentes (21 Apr)."""
        zone = "America/Sao_Paulo"
        result = due("2026-04-17T10:00", "3 working days", get_calendar("BR"), zone)
        assert format_instant(result.due_at, zone) == "2026-04-24T00:00:00-03:00"
        assert "2026-04-21 skipped: Tiradentes' Day" in result.explain
        assert not result.provisional and result.calendar == "BR"


class TestTimeZones:
    def test_local_day_decides(self) -> None:
        """16:30 UTC on 20 Nov is 00:30 on 21 Nov in Shanghai: counting starts on 22 Nov there."""
        start = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
        in_shanghai = add_duration(start, parse_duration("1 day"), NONE, SHANGHAI)
        in_utc = add_duration(start, parse_duration("1 day"), NONE, "UTC")
        assert local(in_shanghai) == "2026-11-23T00:00:00+08:00"
        assert in_shanghai.due_at == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
        assert in_utc.due_at == datetime(2026, 11, 22, 0, 0, tzinfo=UTC)

    def test_late_evening_trigger(self) -> None:
        """A trigger at 23:30 in Shanghai belongs to that local day, though UTC is 15:30."""
        result = due("2026-11-20T23:30", "1 day", NONE)
        assert result.due_at == datetime(2026, 11, 21, 16, 0, tzinfo=UTC)

    def test_midnight_skipped_by_dst(self) -> None:
        """Where DST skips midnight, 24:00 is the first instant of the next day."""
        zone = "America/Havana"  # clocks jump from 00:00 to 01:00 on 8 Mar 2026
        result = due("2026-03-06T12:00", "1 day", NONE, zone)
        assert result.due_at == datetime(2026, 3, 8, 0, 0, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        assert format_instant(result.due_at, zone) == "2026-03-08T01:00:00-04:00"


class TestProvisional:
    def test_reaching_into_2027(self) -> None:
        """A period whose last day is in 2027 is provisional, and says so."""
        result = due("2026-12-20T10:00", "30 days")
        assert result.provisional
        assert "2027 schedule not announced: provisional" in result.explain

    def test_working_days_into_2027(self) -> None:
        """Working days that cross into 2027 are provisional too."""
        assert due("2026-12-28T10:00", "5 working days").provisional

    def test_within_2026_is_final(self) -> None:
        """A period that stays in 2026 is not provisional."""
        assert not due("2026-11-20T10:00", "30 days").provisional

    def test_none_and_hours_never_provisional(self) -> None:
        """Calendar days and hours need no schedule."""
        assert not due("2026-12-20T10:00", "30 days", NONE).provisional
        assert not due("2027-12-20T10:00", "72h").provisional

    @pytest.mark.parametrize("verified", ["true", "false"])
    def test_workspace_file_announces_2027(self, tmp_path: Path, verified: str) -> None:
        """A workspace CN-2027.toml makes 2027 final, and an unverified one is flagged in the trail."""
        folder = tmp_path / "config" / "calendars"
        folder.mkdir(parents=True)
        (folder / "CN-2027.toml").write_text(FILE_2027.format(verified=verified), encoding="utf-8")
        calendar = get_calendar("CN", [tmp_path / "config", *BUILTIN])
        result = due("2026-12-20T10:00", "13 days", calendar)
        assert not result.provisional
        assert local(result) == "2027-01-05T00:00:00+08:00"  # last day 2 Jan is a file holiday
        assert "2027-01-02 skipped: New Year's Day holiday" in result.explain
        assert any("UNVERIFIED" in line for line in result.explain) is (verified == "false")


class TestCountdown:
    @pytest.mark.parametrize(
        ("delta", "text"),
        [
            (timedelta(hours=3, minutes=20, seconds=59), "3h 20m left"),
            (timedelta(days=2, hours=4, minutes=5), "2d 4h left"),
            (timedelta(days=1), "1d left"),
            (timedelta(hours=5), "5h left"),
            (timedelta(minutes=7), "7m left"),
            (timedelta(seconds=30), "<1m left"),
            (timedelta(0), "due now"),
            (-timedelta(days=1, hours=2, minutes=30), "overdue by 1d 2h"),
            (-timedelta(minutes=45), "overdue by 45m"),
        ],
    )
    def test_format(self, delta: timedelta, text: str) -> None:
        """Two largest units, cut off (never rounded up), with left / overdue wording."""
        assert format_countdown(delta) == text

    def test_remaining(self) -> None:
        """remaining is due minus now, negative when overdue."""
        due_at = datetime(2026, 1, 1, tzinfo=UTC)
        assert remaining(due_at, due_at - timedelta(hours=2)) == timedelta(hours=2)
        assert remaining(due_at, due_at + timedelta(minutes=1)) == -timedelta(minutes=1)


# Properties, over triggers in the years every calendar here has official data for.
TRIGGERS = st.datetimes(
    min_value=datetime(2004, 1, 1), max_value=datetime(2026, 6, 30), timezones=st.just(UTC)
)
ZONES = st.sampled_from([SHANGHAI, "UTC", "America/New_York", "Europe/Berlin"])
CALENDARS = st.sampled_from([CN, NONE, get_calendar("BR")])
UNITS = st.sampled_from(["minutes", "hours", "days", "working_days", "months"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestProperties:
    @FAST
    @given(TRIGGERS, st.integers(1, 120), UNITS, CALENDARS, ZONES)
    def test_due_after_start(
        self, start: datetime, amount: int, unit: str, calendar: Calendar, zone: str
    ) -> None:
        """Every due time is after the trigger."""
        result = add_duration(start, Duration(amount, unit, f"{amount} {unit}"), calendar, zone)  # type: ignore[arg-type]
        assert result.due_at > start and result.due_at.tzinfo is UTC

    @FAST
    @given(TRIGGERS, st.integers(1, 60), st.integers(1, 30), UNITS, CALENDARS, ZONES)
    def test_longer_is_never_earlier(
        self, start: datetime, amount: int, extra: int, unit: str, calendar: Calendar, zone: str
    ) -> None:
        """A longer period never ends earlier."""

        def at(n: int) -> datetime:
            return add_duration(start, Duration(n, unit, f"{n} {unit}"), calendar, zone).due_at  # type: ignore[arg-type]

        assert at(amount + extra) >= at(amount)

    @FAST
    @given(TRIGGERS, st.integers(1, 40), CALENDARS, ZONES)
    def test_working_days_end_at_midnight_after_a_working_day(
        self, start: datetime, amount: int, calendar: Calendar, zone: str
    ) -> None:
        """A working-day period ends at local midnight after a working day; one more day is later."""
        result = add_duration(start, Duration(amount, "working_days", ""), calendar, zone)
        end = to_zone(result.due_at, zone)
        assert (end.hour, end.minute, end.second) == (0, 0, 0)
        assert calendar.is_working_day(end.date() - timedelta(days=1))
        longer = add_duration(start, Duration(amount + 1, "working_days", ""), calendar, zone)
        assert longer.due_at > result.due_at

    @FAST
    @given(TRIGGERS, st.integers(1, 400), ZONES)
    def test_calendar_days_are_exact(self, start: datetime, amount: int, zone: str) -> None:
        """Under none, N days end at 00:00 local of trigger day + N + 1."""
        result = add_duration(start, Duration(amount, "days", ""), NONE, zone)
        expected_day = to_zone(start, zone).date() + timedelta(days=amount + 1)
        end = to_zone(result.due_at, zone)
        assert end.date() == expected_day and end.hour == 0

    @FAST
    @given(TRIGGERS, st.integers(1, 400), ZONES)
    def test_rest_day_rule_only_postpones(self, start: datetime, amount: int, zone: str) -> None:
        """Under CN a day period ends no earlier than under none, and after a working day."""
        plain = add_duration(start, Duration(amount, "days", ""), NONE, zone).due_at
        official = add_duration(start, Duration(amount, "days", ""), CN, zone)
        assert official.due_at >= plain
        assert CN.is_working_day(to_zone(official.due_at, zone).date() - timedelta(days=1))
