"""Jurisdiction clocks from the command line: rules list, clock add --rule, and a CN + EU + US-CA incident."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

from conftest import assert_one_line_error

FIRM = """
[firm]
name = "Example Tax Services Ltd"
address = "1 Example Road, Beijing"
contact_name = "Li Jing"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "Mon-Fri 9:00-18:00"
"""


class TestRulesList:
    def test_json_lists_every_rule_with_status(self, cli):
        """rules list --json names every rule with verified true or false and its clocks."""
        rules = {r["id"]: r for r in cli.json("rules", "list")}
        assert rules["EU-GDPR-33"]["verified"] is True and rules["US-SEC-8K"]["verified"] is False
        assert [c["id"] for c in rules["EU-NIS2-23"]["clocks"]] == [
            "early_warning",
            "notification",
            "final_report",
        ]
        assert rules["BR-LGPD-48"]["clocks"][0]["calendar"] == "BR"

    def test_text_marks_unverified_rules(self, cli):
        """The human listing marks each unverified rule UNVERIFIED and says how to start the clocks."""
        out = cli("rules", "list", "--jurisdiction", "US-CA", check=True).stdout
        assert "US-CA" in out and "UNVERIFIED" in out and "breach clock add --rule" in out

    def test_unknown_jurisdiction(self, cli):
        """An unknown jurisdiction is one line on stderr, exit 2, naming the known ones."""
        assert_one_line_error(cli("rules", "list", "--jurisdiction", "ZZ"), "known are", "EU")


class TestClockAddRule:
    def test_json_shape_per_clock(self, cli):
        """clock add --rule prints per clock rule, clock, due_at, basis, verified and provisional."""
        out = cli.json("clock", "add", "--rule", "EU-NIS2-23", "--from", "2026-03-27T10:00:00+01:00")
        assert [o["clock"] for o in out] == ["early_warning", "notification", "final_report"]
        for item in out:
            assert {"rule", "clock", "due_at", "basis", "verified", "provisional"} <= set(item)
            assert item["rule"] == "EU-NIS2-23" and item["verified"] is False
        assert out[1]["due_local"] == "2026-03-30T11:00:00+02:00"
        assert out[1]["due_at"] == "2026-03-30T17:00:00+08:00"  # the workspace zone, Asia/Shanghai

    def test_text_marks_unverified_and_provisional(self, cli):
        """A business-day clock reaching an unchecked year says provisional; an unverified rule says so."""
        out = cli("clock", "add", "--rule", "US-SEC-8K", "--from", "2027-12-29 10:00", check=True).stdout
        assert "UNVERIFIED" in out and "provisional" in out

    def test_bad_input_is_one_line(self, cli):
        """Unknown rule, both --rule and --duration, or a bad time: exit 2 with one line."""
        assert_one_line_error(cli("clock", "add", "--rule", "XX-1", "--from", "2026-01-01"), "unknown rule")
        assert_one_line_error(
            cli("clock", "add", "--rule", "EU-GDPR-33", "--duration", "4h", "--from", "2026-01-01"), "either"
        )
        assert_one_line_error(
            cli("clock", "add", "--rule", "EU-GDPR-33", "--from", "yesterday"), "malformed time"
        )


class TestMultiJurisdictionIncident:
    def test_cn_eu_us_ca_incident_end_to_end(self, cli, tmp_path):
        """A CN + EU + US-CA incident shows each clock with its own basis; they start, are met, documented."""
        with open(cli.home / "config" / "settings.toml", "a", encoding="utf-8") as handle:
            handle.write(FIRM)
        discovered = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        incident = cli.open_incident(
            "--set", "people_affected=8000", "--set", "records.property=8000", discovered_at=discovered
        )
        people = tmp_path / "people.csv"
        people.write_text(
            "customer_id,name,channel,categories,email,country\n"
            + "".join(f"P-{i},Person {i},email,name,p{i}@example.com,US-CA\n" for i in range(3))
            + "P-9,Hans,email,name,h@example.de,DE\n",
            encoding="utf-8",
        )
        cli("people", "import", incident, str(people), check=True)
        cli(
            "incident",
            "facts",
            incident,
            "--set",
            f"aware_at={discovered}",
            "--reason",
            "confirmed",
            check=True,
        )

        rows = cli.json("deadlines", "list", "--incident", incident)
        by_rule = {(r["rule"], r["subject"]): r for r in rows}
        assert ("POLICY-PIPL57-REGULATOR", None) in by_rule  # China's clocks run beside the others
        gdpr = by_rule[("EU-GDPR-33", "notification")]
        assert gdpr["basis"]["article"].startswith("GDPR Art 33") and gdpr["basis"]["verified"] is True
        california = by_rule[("US-CA", "residents")]
        assert california["basis"]["verified"] is False and california["basis"]["recipient"]
        assert ("US-CA", "attorney_general") not in by_rule  # 3 Californians, not over 500
        due = datetime.fromisoformat(gdpr["due_at"])
        assert due == datetime.fromisoformat(discovered) + timedelta(hours=72)

        shown = cli.json("incident", "show", incident)
        assert {("EU-GDPR-33", "notification"), ("US-CA", "residents")} <= {
            (d["rule"], d.get("subject")) for d in shown["deadlines"]
        }
        listing = cli("deadlines", "list", "--incident", incident, check=True).stdout
        assert "[unverified]" in listing

        refused = cli("incident", "determine", incident, "gdpr_high_risk", "yes")
        assert_one_line_error(refused, "--reason")
        cli(
            "incident",
            "determine",
            incident,
            "gdpr_high_risk",
            "yes",
            "--reason",
            "bank details",
            "--enisa",
            "DPC=3,EI=significant,CB=loss_of_confidentiality",
            check=True,
        )
        events = cli.json("incident", "show", incident)["events"]
        assert any(e.get("trigger") == "facts" or e.get("kind") == "facts" for e in events)
        rows = cli.json("deadlines", "list", "--incident", incident)
        assert ("EU-GDPR-34", "communication") in {(r["rule"], r["subject"]) for r in rows}

        written = cli.json("documents", "rule", incident, "EU-GDPR-33")
        text = open(written["path"], encoding="utf-8").read()
        assert "(a) Nature of the breach" in text and "8,000" in text and "Translation" in text
        assert stat.S_IMODE(os.stat(written["path"]).st_mode) == 0o600

        cli("incident", "filed", incident, "EU-GDPR-33", "notification", "--ref", "DPA-2026-1", check=True)
        settled = cli.json("deadlines", "list", "--incident", incident, "--all")
        met = next(r for r in settled if (r["rule"], r["subject"]) == ("EU-GDPR-33", "notification"))
        assert met["status"] == "met" and met["met_by"] == "filing:EU-GDPR-33:notification"
        assert cli("audit", "verify", incident).returncode == 0

    def test_bad_country_in_people_import_changes_nothing(self, cli, tmp_path):
        """A country that is not ISO 3166 is reported by line and nothing is imported or started."""
        incident = cli.open_incident()
        people = tmp_path / "people.csv"
        people.write_text("customer_id,name,channel,categories,email,country\nP-1,A,email,name,a@x.com,UK\n")
        result = cli("people", "import", incident, str(people))
        assert result.returncode == 2 and "line 2" in result.stderr and "GB" in result.stderr
        assert not [
            r for r in cli.json("deadlines", "list", "--incident", incident) if r["rule"].startswith("EU")
        ]
