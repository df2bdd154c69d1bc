"""Jurisdiction rules as data: the files, each clock at its boundary, calendars, thresholds, the ENISA aid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.clocks.calendars import get_calendar
from engine.clocks.durations import format_instant, parse_duration, parse_instant
from engine.clocks.intl import load_rules, rule_clocks, why_not
from engine.clocks.plan import IncidentView, PlanContext
from engine.errors import BadInput, NotFound
from engine.legal.data import builtin_legal
from engine.legal.severity import load_enisa, parse_enisa, score
from engine.workspace import builtin_root

CONFIG = [builtin_root() / "config"]
RULES = load_rules(CONFIG)
REQUIRED = (
    "EU-GDPR-33",
    "EU-GDPR-34",
    "EU-NIS2-23",
    "EU-DORA-19",
    "US-HIPAA-404",
    "US-SEC-8K",
    "US-CA",
    "US-CO",
    "US-TX",
    "US-FL",
    "SG-PDPA-26D",
    "AU-NDB",
    "JP-APPI-26",
    "KR-PIPA-34",
    "IN-DPDP-7",
    "BR-LGPD-48",
)
# docs/law/intl.md: known from secondary sources only, so they must ship verified: false.
SECONDARY = {
    "EU-NIS2-23",
    "US-SEC-8K",
    "US-CA",
    "US-CO",
    "US-TX",
    "US-FL",
    "BR-LGPD-48",
    "UK-GDPR-33",
    "HK-PDPO",
}


def calendar(name: str):
    return get_calendar(name, CONFIG)


def clocks(rule_id: str, start: str, zone: str, **kwargs):
    jurisdiction, rule = RULES.rule(rule_id)
    return {
        c.clock: c for c in rule_clocks(jurisdiction, rule, parse_instant(start, zone), calendar, **kwargs)
    }


def local(item, zone: str) -> str:
    return format_instant(item.due.due_at, zone)


class TestRuleFiles:
    def test_every_required_rule_is_there(self):
        """Each rule the issue names is carried, with an article, a source and at least one clock."""
        ids = [r.id for _, r in RULES.rules()]
        assert set(REQUIRED) <= set(ids)
        for _, rule in RULES.rules():
            assert rule.article and rule.source and rule.clocks and rule.recipients

    def test_secondary_rules_ship_unverified(self):
        """Exactly the rules known from secondary sources are marked verified: false."""
        assert {r.id for _, r in RULES.rules() if not r.verified} == SECONDARY

    def test_unverified_clock_of_a_verified_rule(self):
        """DORA's intermediate and final clocks (anchor unverified) show unverified in their basis."""
        found = clocks("EU-DORA-19", "2026-11-25 10:00", "Europe/Brussels")
        assert [found[c].basis["verified"] for c in ("initial", "intermediate", "final")] == [
            True,
            False,
            False,
        ]

    def test_jurisdiction_filter_keeps_a_country_and_its_states(self):
        """--jurisdiction US lists the federal rules and every state; US-CA only California's."""
        assert {r.id for _, r in RULES.rules("US")} == {
            "US-HIPAA-404",
            "US-SEC-8K",
            "US-CA",
            "US-CO",
            "US-TX",
            "US-FL",
        }
        assert [r.id for _, r in RULES.rules("us-ca")] == ["US-CA"]
        with pytest.raises(NotFound, match="known are"):
            RULES.rules("ZZ")

    def test_workspace_file_replaces_the_builtin_one(self, tmp_path: Path):
        """A workspace's EU.yaml replaces the built-in file as a whole (here: 48 h instead of 72 h)."""
        folder = tmp_path / "legal" / "jurisdictions"
        folder.mkdir(parents=True)
        text = (builtin_root() / "config" / "legal" / "jurisdictions" / "EU.yaml").read_text(encoding="utf-8")
        (folder / "EU.yaml").write_text(
            text.replace(
                "duration: 72h\n        wording: without undue delay and, where feasible",
                "duration: 48h\n        wording: without undue delay and, where feasible",
            ),
            encoding="utf-8",
        )
        data = load_rules([tmp_path, *CONFIG])
        _jurisdiction, rule = data.rule("EU-GDPR-33")
        assert rule.clocks[0].duration == "48h" and data.paths["EU.yaml"].is_relative_to(tmp_path)

    @pytest.mark.parametrize(
        ("replace", "needle"),
        [
            ("duration: 72h", "duration: 72 parsecs"),
            ("starts: {anchor: [aware_at, discovered_at]}", "starts: {anchor: [noticed_at]}"),
            ("verified: true", "verified: maybe"),
        ],
    )
    def test_bad_workspace_file_is_refused_naming_it(self, tmp_path: Path, replace: str, needle: str):
        """A malformed duration, unknown anchor or bad flag is refused with the file named, never used."""
        folder = tmp_path / "legal" / "jurisdictions"
        folder.mkdir(parents=True)
        text = (builtin_root() / "config" / "legal" / "jurisdictions" / "EU.yaml").read_text(encoding="utf-8")
        (folder / "EU.yaml").write_text(text.replace(replace, needle, 1), encoding="utf-8")
        with pytest.raises(BadInput, match=r"EU\.yaml"):
            load_rules([tmp_path, *CONFIG])


def _expected_day_due(start: datetime, text: str, zone: str) -> datetime:
    """24:00 of the N-th calendar day after the start's local day (no calendar moves it)."""
    from zoneinfo import ZoneInfo

    period = parse_duration(text)
    day = start.astimezone(ZoneInfo(zone)).date()
    if period.unit == "days":
        last = day + timedelta(days=period.amount)
    else:
        from engine.clocks.durations import add_duration

        return add_duration(start, period, calendar("none"), zone).due_at
    return datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    )


class TestEveryClockAtItsBoundary:
    @pytest.mark.parametrize("rule_id", sorted(r.id for _, r in RULES.rules()))
    def test_clock_boundaries(self, rule_id: str):
        """Every clock is due exactly its period after its start: hours to the second, days at local 24:00."""
        jurisdiction, rule = RULES.rule(rule_id)
        start = parse_instant("2026-06-10 10:00", jurisdiction.zone)  # a Wednesday, no holiday anywhere here
        found = {c.clock: c for c in rule_clocks(jurisdiction, rule, start, calendar)}
        for clock in rule.clocks:
            begin = found[clock.starts.after].due.due_at if clock.starts.after else start
            if clock.starts.at_end_of:
                begin = parse_instant("2026-12-31 23:59:59", jurisdiction.zone)
            due = found[clock.id].due.due_at
            period = parse_duration(clock.duration)
            if period.unit in ("hours", "minutes"):
                expected = begin + timedelta(**{period.unit: period.amount})
                if clock.cap is not None:
                    expected = min(
                        expected, start + timedelta(hours=parse_duration(clock.cap.duration).amount)
                    )
                assert due == expected, (rule_id, clock.id)
            elif period.unit == "working_days":
                assert due > begin + timedelta(days=period.amount), (rule_id, clock.id)
            else:
                assert due == _expected_day_due(begin, clock.duration, jurisdiction.zone), (rule_id, clock.id)
            assert due - timedelta(seconds=1) < due and not found[clock.id].due.provisional


class TestDaylightSaving:
    def test_gdpr_72h_across_eu_spring_forward(self):
        """72 h from Friday 10:00 CET before the EU clocks go forward end Monday 11:00 CEST (real hours)."""
        found = clocks("EU-GDPR-33", "2026-03-27 10:00+01:00", "Europe/Brussels")
        assert local(found["notification"], "Europe/Brussels") == "2026-03-30T11:00:00+02:00"

    def test_nis2_24h_across_eu_fall_back(self):
        """24 h from 10:00 CEST on the day before the clocks go back end at 09:00 CET the next day."""
        found = clocks("EU-NIS2-23", "2026-10-24 10:00+02:00", "Europe/Brussels")
        assert local(found["early_warning"], "Europe/Brussels") == "2026-10-25T09:00:00+01:00"

    def test_dora_cap_across_eu_spring_forward(self):
        """DORA's initial report: 4 h from classification, capped at 24 h from awareness, in real hours."""
        found = clocks("EU-DORA-19", "2026-03-29 01:30+01:00", "Europe/Brussels")
        assert local(found["initial"], "Europe/Brussels") == "2026-03-29T06:30:00+02:00"

    def test_california_30_days_across_us_fall_back(self):
        """30 days from a PDT morning end at 24:00 Pacific of the 30th day, which is in PST."""
        found = clocks("US-CA", "2026-10-15 09:00", "America/Los_Angeles")
        assert local(found["residents"], "America/Los_Angeles") == "2026-11-15T00:00:00-08:00"

    def test_hipaa_60_days_across_us_spring_forward(self):
        """60 calendar days from a February discovery end at local 24:00, after the US clocks went forward."""
        found = clocks("US-HIPAA-404", "2026-02-20 15:00", "America/New_York")
        assert local(found["individuals"], "America/New_York") == "2026-04-22T00:00:00-04:00"

    @pytest.mark.parametrize(
        ("discovered", "due"),
        [
            ("2026-03-10 09:00", "2027-03-02T00:00:00-05:00"),  # 2027 is not a leap year: 1 March
            ("2027-12-31 23:30", "2028-03-01T00:00:00-05:00"),  # leap year: 29 February is day 60
            ("2028-01-01 00:30", "2029-03-02T00:00:00-05:00"),  # a new year's breach waits a year
        ],
    )
    def test_hipaa_yearly_log_60_days_after_the_year_ends(self, discovered: str, due: str):
        """Small breaches go in the yearly log, due 60 days after the year of discovery ends (164.408(c))."""
        found = clocks("US-HIPAA-404", discovered, "America/New_York")["secretary_log"]
        assert local(found, "America/New_York") == due
        assert any("counted from the end of" in line for line in found.due.explain)
        assert found.basis["starts"] == "end of the calendar year of discovery"

    def test_hours_are_real_hours_in_us_zone(self):
        """Hours run in real time across the US change: KR's 72 h shown in New York gains the hour."""
        found = clocks("KR-PIPA-34", "2026-03-06 12:00-05:00", "Asia/Seoul")
        assert local(found["data_subjects"], "America/New_York") == "2026-03-09T13:00:00-04:00"


class TestRestDayRelief:
    """DORA: a report due on a rest day of the entity's member state may be given by 12:00 of the next
    working day there (2025/301 Art 5), unless the entity is of a type left out of the relief."""

    def relief(self, due_local: str, zone: str, **facts):
        from engine.clocks.durations import DueResult
        from engine.clocks.intl import relieve

        jurisdiction, rule = RULES.rule("EU-DORA-19")
        clock = next(c for c in rule.clocks if c.id == "final")
        due = DueResult(parse_instant(due_local, zone), False, "none", ["due"])
        return relieve(due, clock.relief, jurisdiction, facts, calendar)

    def test_christmas_day_moves_to_monday_noon_in_germany(self):
        """Due Friday 25 December (a German holiday, Saturday after it): Monday 28 at 12:00 Berlin."""
        moved = self.relief("2026-12-25 10:00", "Europe/Berlin", established_in="DE")
        assert format_instant(moved.due_at, "Europe/Berlin") == "2026-12-28T12:00:00+01:00"
        assert "rest day in DE" in moved.explain[-1] and "unverified" in moved.explain[-1]

    def test_period_ending_at_saturday_midnight_counts_as_saturday(self):
        """A month ending at 24:00 of Saturday (stored as Sunday 00:00) is a Saturday due: Monday noon."""
        moved = self.relief("2026-11-29 00:00", "Europe/Brussels", established_in="BE")
        assert format_instant(moved.due_at, "Europe/Brussels") == "2026-11-30T12:00:00+01:00"

    def test_noon_is_the_member_states_own_noon(self):
        """Portugal keeps its own clock: 12:00 in Lisbon, an hour after Brussels noon."""
        moved = self.relief("2026-12-26 15:00", "Europe/Lisbon", established_in="PT")
        assert format_instant(moved.due_at, "Europe/Lisbon") == "2026-12-28T12:00:00+00:00"

    def test_working_day_keeps_its_due_time(self):
        """Due on a Wednesday: nothing moves, and the trail says why."""
        kept = self.relief("2026-12-02 17:00", "Europe/Berlin", established_in="DE")
        assert format_instant(kept.due_at, "Europe/Berlin") == "2026-12-02T17:00:00+01:00"
        assert "working day in DE" in kept.explain[-1]

    def test_excluded_entity_type_and_unknown_state_keep_the_due_time(self):
        """An entity type left out, or no member state recorded: the law's time stands, and says how."""
        left_out = self.relief(
            "2026-12-26 15:00", "Europe/Berlin", established_in="DE", entity_types=["dora_no_relief"]
        )
        assert format_instant(left_out.due_at, "Europe/Berlin") == "2026-12-26T15:00:00+01:00"
        unknown = self.relief("2026-12-26 15:00", "Europe/Berlin")
        assert format_instant(unknown.due_at, "Europe/Berlin") == "2026-12-26T15:00:00+01:00"
        assert "--set established_in=" in unknown.explain[-1]

    def test_incident_plan_moves_and_marks_the_basis(self):
        """An incident established in FI whose initial notification falls on a Sunday: Monday 12:00
        Helsinki time, and the deadline's basis is marked unverified as the relief is."""
        from engine.clocks.intl import plan_jurisdictions

        facts = {
            "countries": ["FI"],
            "entity_types": ["financial_entity"],
            "established_in": "FI",
            "aware_at": "2026-12-06T08:00:00+00:00",
            "determinations": {"dora_major": {"value": True, "at": "2026-12-06T09:00:00+00:00"}},
        }
        ctx = PlanContext(legal=builtin_legal(), zone="UTC", calendar=calendar, jurisdictions=RULES)
        plans = {(p.rule.id, p.subject): p for p in plan_jurisdictions(RULES, view(**facts), ctx)}
        initial = plans[("EU-DORA-19", "initial")]
        assert format_instant(initial.due.due_at, "Europe/Helsinki") == "2026-12-07T12:00:00+02:00"
        assert initial.basis["verified"] is False and "2025/301" in initial.basis["relief"]


class TestBusinessDays:
    def test_sec_four_business_days_skip_thanksgiving(self):
        """Four business days from the day before Thanksgiving skip it and the weekend."""
        found = clocks("US-SEC-8K", "2026-11-25 10:00", "America/New_York")
        assert local(found["filing"], "America/New_York") == "2026-12-03T00:00:00-05:00"
        assert any("Thanksgiving" in line for line in found["filing"].due.explain)

    def test_sec_skips_observed_independence_day(self):
        """2026-07-04 is a Saturday: Friday 3 is the federal holiday, so day 4 is Wednesday 8 (24:00)."""
        found = clocks("US-SEC-8K", "2026-07-01 10:00", "America/New_York")
        assert local(found["filing"], "America/New_York") == "2026-07-09T00:00:00-04:00"

    def test_lgpd_three_working_days_skip_tiradentes(self):
        """Three working days from Friday 2026-04-17 skip the weekend and Tiradentes (Tuesday 21)."""
        found = clocks("BR-LGPD-48", "2026-04-17 10:00", "America/Sao_Paulo")
        assert local(found["anpd"], "America/Sao_Paulo") == "2026-04-24T00:00:00-03:00"

    def test_lgpd_small_agents_get_double(self):
        """A small processing agent has six working days instead of three."""
        found = clocks(
            "BR-LGPD-48", "2026-04-17 10:00", "America/Sao_Paulo", entity_types=["small_processing_agent"]
        )
        assert local(found["anpd"], "America/Sao_Paulo") == "2026-04-29T00:00:00-03:00"

    def test_lgpd_supplement_counts_from_the_communication(self):
        """The 20-working-day supplement counts from the ANPD communication's due time."""
        found = clocks("BR-LGPD-48", "2026-04-17 10:00", "America/Sao_Paulo")
        assert found["supplement"].due.due_at > found["anpd"].due.due_at + timedelta(days=27)
        assert any("counted from its due time" in line for line in found["supplement"].due.explain)

    @pytest.mark.parametrize(
        ("rule_id", "clock", "zone"),
        [("US-SEC-8K", "filing", "America/New_York"), ("BR-LGPD-48", "anpd", "America/Sao_Paulo")],
    )
    def test_past_the_checked_year_is_provisional(self, rule_id: str, clock: str, zone: str):
        """Business days reaching past the year the calendar file is checked through are provisional."""
        assert not clocks(rule_id, "2027-06-10 10:00", zone)[clock].due.provisional
        late = clocks(rule_id, "2027-12-29 10:00", zone)[clock]
        assert late.due.provisional and any("not checked beyond 2027" in line for line in late.due.explain)

    def test_workspace_calendar_file_extends_the_checked_years(self, tmp_path: Path):
        """A workspace US.toml checked through 2028 makes the same clock final, and adds a closure."""
        (tmp_path / "calendars").mkdir()
        (tmp_path / "calendars" / "US.toml").write_text(
            'source = "OPM 2028"\nverified = true\nchecked_through = 2028\n'
            'closures = [{ date = 2027-12-30, name = "Executive order closure" }]\n',
            encoding="utf-8",
        )
        cal = get_calendar("US", [tmp_path, *CONFIG])
        jurisdiction, rule = RULES.rule("US-SEC-8K")
        item = rule_clocks(
            jurisdiction, rule, parse_instant("2027-12-29 10:00", "America/New_York"), lambda _: cal
        )[0]
        assert not item.due.provisional
        assert any("Executive order closure" in line for line in item.due.explain)


def view(**facts) -> IncidentView:
    return IncidentView(anchors={}, flags={}, facts=facts, records={}, assessment={})


class TestThresholds:
    @pytest.mark.parametrize(
        ("rule_id", "clock", "facts_below", "facts_at"),
        [
            ("SG-PDPA-26D", "commission", {"people_affected": 499}, {"people_affected": 500}),
            ("JP-APPI-26", None, {"people_affected": 1000}, {"people_affected": 1001}),
            ("KR-PIPA-34", "commission", {"people_affected": 999}, {"people_affected": 1000}),
            ("US-HIPAA-404", "media", {"residents": {"US-TX": 500}}, {"residents": {"US-TX": 501}}),
            ("US-HIPAA-404", "secretary", {"people_affected": 499}, {"people_affected": 500}),
            ("US-HIPAA-404", "secretary_log", {"people_affected": 500}, {"people_affected": 499}),
            ("US-CA", "attorney_general", {"residents": {"US-CA": 500}}, {"residents": {"US-CA": 501}}),
            ("US-TX", "attorney_general", {"residents": {"US-TX": 249}}, {"residents": {"US-TX": 250}}),
        ],
    )
    def test_count_thresholds_breach_decides(self, rule_id, clock, facts_below, facts_at):
        """Counts decide these thresholds exactly at their boundary, with the count named when not met."""
        jurisdiction, rule = RULES.rule(rule_id)
        condition = rule.when if clock is None else next(c.when for c in rule.clocks if c.id == clock)
        base = {"entity_types": ["hipaa_covered_entity"]}
        assert "not met" in str(why_not(condition, list(jurisdiction.covers), {**base, **facts_below}))
        assert why_not(condition, list(jurisdiction.covers), {**base, **facts_at}) is None

    def test_unknown_count_is_not_guessed(self):
        """Without a count the threshold says it cannot be decided, and a recorded determination decides."""
        _jurisdiction, rule = RULES.rule("SG-PDPA-26D")
        condition = next(c.when for c in rule.clocks if c.id == "commission")
        assert "cannot be decided" in str(why_not(condition, ["SG"], {}))
        decided = {"determinations": {"sg_significant_harm": {"value": True}}}
        assert why_not(condition, ["SG"], decided) is None

    def test_gdpr_33_lapses_only_on_a_recorded_no_risk(self):
        """GDPR Art 33 runs unless the operator recorded gdpr_risk = no."""
        _, rule = RULES.rule("EU-GDPR-33")
        assert why_not(rule.when, ["DE"], {}) is None
        assert (
            why_not(rule.when, ["DE"], {"determinations": {"gdpr_risk": {"value": False}}})
            == "gdpr_risk determined no"
        )


class TestIncidentPlans:
    def ctx(self):
        return PlanContext(
            legal=builtin_legal(), zone="Asia/Shanghai", calendar=calendar, jurisdictions=RULES
        )

    def test_places_pick_their_rules(self):
        """An incident in DE and US-CA gets EU and California clocks, and federal ones it qualifies for."""
        from engine.clocks.intl import plan_jurisdictions

        plans = plan_jurisdictions(
            RULES, view(countries=["DE", "US-CA"], aware_at="2026-11-20T02:00:00+00:00"), self.ctx()
        )
        running = {(p.rule.id, p.subject) for p in plans if p.applies}
        assert ("EU-GDPR-33", "notification") in running
        idle = {(p.rule.id, p.subject): p.why_not for p in plans if not p.applies}
        assert idle[("US-CA", "residents")] == "discovered_at not recorded"
        assert idle[("US-HIPAA-404", "individuals")] == "entity_types lacks hipaa_covered_entity"
        assert idle[("EU-GDPR-34", "communication")] == "gdpr_high_risk not determined yes"

    def test_target_clock_duration_from_settings(self):
        """A target clock (the law says 'without undue delay') takes its duration from [deadlines.policy]."""
        from engine.clocks.intl import plan_jurisdictions

        ctx = PlanContext(
            legal=builtin_legal(),
            zone="UTC",
            calendar=calendar,
            jurisdictions=RULES,
            policy_durations={"EU-GDPR-34:communication": "24h"},
        )
        facts = {
            "countries": ["FR"],
            "determinations": {"gdpr_high_risk": {"value": True, "at": "2026-11-20T00:00:00+00:00"}},
        }
        plan = next(p for p in plan_jurisdictions(RULES, view(**facts), ctx) if p.subject == "communication")
        assert plan.due is not None and plan.due.due_at == datetime(2026, 11, 21, tzinfo=UTC)
        assert plan.basis["kind"] == "policy" and "not law" in plan.basis["note"]


class TestEnisaAid:
    def test_arithmetic_is_shown(self):
        """SE = DPC × EI + CB with every figure and the level it reaches."""
        method = load_enisa(CONFIG)
        result = score(
            *parse_enisa("DPC=3,EI=significant,CB=loss_of_confidentiality+malicious_intent", method), method
        )
        assert result.score == Decimal("3.25") and result.level == "high"
        assert (
            result.arithmetic == "SE = DPC × EI + CB = 3 × 0.75 (significant) + 0.5 (loss_of_confidentiality)"
            " + 0.5 (malicious_intent) = 3.25 → high"
        )

    @pytest.mark.parametrize(
        ("dpc", "ei", "level"),
        [("1", "maximum", "low"), ("2", "maximum", "medium"), ("4", "maximum", "very_high")],
    )
    def test_level_boundaries(self, dpc, ei, level):
        """Levels start at SE 2 (medium), 3 (high) and 4 (very high)."""
        method = load_enisa(CONFIG)
        assert score(*parse_enisa(f"DPC={dpc},EI={ei}", method), method).level == level

    @pytest.mark.parametrize(
        "text", ["DPC=5,EI=limited", "DPC=2,EI=huge", "DPC=2", "DPC=2,EI=limited,CB=fire", "XYZ"]
    )
    def test_bad_aid_input(self, text):
        """Out-of-range or unknown figures are refused, saying what is allowed."""
        with pytest.raises(BadInput):
            parse_enisa(text, load_enisa(CONFIG))
