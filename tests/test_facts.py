"""Facts: parsing key=value pairs and files, merging, validation messages, the audit diff."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import BadInput
from engine.legal.facts import (
    RECORD_CATEGORIES,
    Facts,
    changed_keys,
    facts_to_dict,
    known_keys,
    load_facts_file,
    merge_facts,
    parse_assignments,
)

DATA = Path(__file__).parent / "data" / "facts"


class TestParseAssignments:
    def test_nested_update(self):
        """Dotted record keys nest under records, counts become ints, lists split on commas."""
        update = parse_assignments(
            [
                "people_affected=8000",
                "records.property=16000",
                "insider=true",
                "harms=major_economic_loss,bad_social_impact",
            ]
        )
        assert update == {
            "people_affected": 8000,
            "records": {"property": 16000},
            "insider": True,
            "harms": ["major_economic_loss", "bad_social_impact"],
        }

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("true", True),
            ("TRUE", True),
            ("yes", True),
            ("1", True),
            ("false", False),
            ("No", False),
            ("0", False),
            (" yes ", True),
        ],
    )
    def test_booleans(self, text, value):
        """Booleans accept true/false, yes/no and 1/0 in any case, with surrounding blanks."""
        assert parse_assignments([f"insider={text}"]) == {"insider": value}

    def test_bad_boolean(self):
        """A boolean that is none of the accepted words names the key and the accepted forms."""
        with pytest.raises(BadInput, match=r"insider must be true/false, yes/no or 1/0, got 'maybe'"):
            parse_assignments(["insider=maybe"])

    def test_missing_equals(self):
        """A pair without '=' is refused with an example of the right form."""
        with pytest.raises(BadInput, match=r"expected key=value, got 'foo'"):
            parse_assignments(["foo"])

    def test_unknown_key_lists_known_keys(self):
        """An unknown key is named, the closest key suggested and every known key listed."""
        with pytest.raises(BadInput) as caught:
            parse_assignments(["peple_affected=1"])
        message = str(caught.value)
        assert message.startswith("unknown fact 'peple_affected' (did you mean 'people_affected'?)")
        assert "known keys are people_affected, records.whereabouts" in message
        assert "\n" not in message

    def test_unknown_record_category(self):
        """A misspelt record category is an unknown fact too."""
        with pytest.raises(BadInput, match=r"unknown fact 'records.propety' \(did you mean 'records.prop"):
            parse_assignments(["records.propety=1"])

    def test_group_key_alone(self):
        """Setting 'records' itself is refused with a hint to set one category."""
        with pytest.raises(BadInput, match="records is a group"):
            parse_assignments(["records=5"])

    @pytest.mark.parametrize("text", ["1.5", "-5", "1e3", "abc", "8,00", "１２", "+5", "0x10", "1_000"])
    def test_bad_counts(self, text):
        """A count that is not a plain whole number ≥ 0 is refused, naming the key and the text."""
        with pytest.raises(BadInput) as caught:
            parse_assignments([f"records.property={text}"])
        assert str(caught.value) == f"records.property must be a whole number ≥ 0, got {text!r}"

    @pytest.mark.parametrize(
        ("text", "value"), [("08", 8), (" 12 ", 12), ("8,000", 8000), ("1,000,000", 1000000)]
    )
    def test_lenient_counts(self, text, value):
        """Leading zeros, blanks and comma thousands separators are read as the obvious number."""
        assert parse_assignments([f"people_affected={text}"]) == {"people_affected": value}

    @pytest.mark.parametrize(("text", "value"), [("5000", 5000), ("4999.50", 4999.5), ("1,000.5", 1000.5)])
    def test_amounts(self, text, value):
        """Amounts in RMB take up to two decimals and come back JSON-safe (int when whole)."""
        update = parse_assignments([f"illegal_gains_rmb={text}"])
        assert update == {"illegal_gains_rmb": value}
        assert type(update["illegal_gains_rmb"]) is type(value)

    @pytest.mark.parametrize("text", ["1.234", "1e3", "-1", "nan"])
    def test_bad_amounts(self, text):
        """An amount with more than two decimals, an exponent, a sign or NaN is refused."""
        with pytest.raises(BadInput, match="illegal_gains_rmb must be an amount in RMB"):
            parse_assignments([f"illegal_gains_rmb={text}"])

    def test_empty_value_clears(self):
        """An empty value becomes None, which merging reads as back to the default."""
        assert parse_assignments(["people_affected=", "records.health="]) == {
            "people_affected": None,
            "records": {"health": None},
        }

    def test_key_given_twice(self):
        """The same key twice in one call is refused rather than silently taking the last."""
        with pytest.raises(BadInput, match="given twice"):
            parse_assignments(["records.property=1", "records.property=2"])

    def test_free_text_keeps_equals_sign(self):
        """Only the first '=' splits, so a reason may contain '='."""
        update = parse_assignments(["recorded_grade_reason=a=b"])
        assert update == {"recorded_grade_reason": "a=b"}

    def test_known_keys_cover_every_category(self):
        """Every record category is settable as records.<category>."""
        assert {f"records.{c}" for c in RECORD_CATEGORIES} <= set(known_keys())


class TestMergeFacts:
    def test_deep_merge_keeps_other_categories(self):
        """Updating one record category keeps the others already recorded."""
        current = facts_to_dict(merge_facts({}, {"records": {"health": 3}}))
        facts = merge_facts(current, {"records": {"property": 5}})
        assert (facts.records.health, facts.records.property) == (3, 5)

    def test_lists_replace(self):
        """A new list of harms replaces the old one instead of appending."""
        facts = merge_facts({"harms": ["kidnapping"]}, {"harms": ["bad_social_impact"]})
        assert facts.harms == ["bad_social_impact"]

    def test_none_clears_to_default(self):
        """A None in the update removes the key, so its default applies again."""
        facts = merge_facts(
            {"people_affected": 5, "records": {"other": 9}, "insider": True},
            {"people_affected": None, "records": {"other": None}, "insider": None},
        )
        assert facts.people_affected is None and facts.records.other == 0 and facts.insider is False

    def test_every_error_on_one_line(self):
        """Several problems are reported together, each with its field path and what was expected."""
        with pytest.raises(BadInput) as caught:
            merge_facts(
                {},
                {
                    "records": {"property": -5},
                    "operator_type": "bank",
                    "insider": "yes",
                    "harms": ["boredom"],
                },
            )
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("invalid facts: ")
        assert "records.property must be a whole number ≥ 0, got -5" in message
        assert "operator_type must be one of 'cii', 'state_organ' or 'other', got 'bank'" in message
        assert "insider must be true or false, got 'yes'" in message
        assert "harms must be one of 'death_or_serious_injury'" in message

    @pytest.mark.parametrize("value", ["8000", 8000.0, True])
    def test_counts_are_strict(self, value):
        """A count must be an integer: a string, a float or a boolean is refused."""
        with pytest.raises(BadInput, match="people_affected must be a whole number ≥ 0"):
            merge_facts({}, {"people_affected": value})

    def test_recorded_grade_needs_reason(self):
        """A grade recorded by hand without a reason is refused."""
        with pytest.raises(BadInput, match="recorded_grade needs recorded_grade_reason"):
            merge_facts({}, {"recorded_grade": "major"})

    def test_blank_reason_is_no_reason(self):
        """A reason of blanks does not count as a reason."""
        with pytest.raises(BadInput, match="recorded_grade needs recorded_grade_reason"):
            merge_facts({}, {"recorded_grade": "major", "recorded_grade_reason": "  "})

    def test_reason_without_grade(self):
        """A reason left behind after clearing the grade is refused, saying to clear both."""
        current = {"recorded_grade": "major", "recorded_grade_reason": "海量信息"}
        with pytest.raises(BadInput, match="set both or clear both"):
            merge_facts(current, {"recorded_grade": None})

    def test_recorded_grade_cannot_be_none(self):
        """Only a real grade can be recorded by hand; 'none' is not one."""
        with pytest.raises(BadInput, match="recorded_grade must be one of"):
            merge_facts({}, {"recorded_grade": "none", "recorded_grade_reason": "x"})

    def test_duplicate_harms_collapse(self):
        """A harm named twice is kept once, in first-mention order."""
        facts = merge_facts({}, {"harms": ["kidnapping", "mental_disorder", "kidnapping"]})
        assert facts.harms == ["kidnapping", "mental_disorder"]

    def test_amounts_from_files(self):
        """Amounts may come as int, float or quoted string and are kept exact."""
        facts = merge_facts({}, {"illegal_gains_rmb": 4999.99, "economic_loss_rmb": "12.5"})
        assert facts.illegal_gains_rmb == Decimal("4999.99")
        assert facts.economic_loss_rmb == Decimal("12.5")


class TestLoadFactsFile:
    def test_yaml(self):
        """A YAML mapping loads as the update it spells."""
        data = load_facts_file(DATA / "demo.yaml")
        assert data["people_affected"] == 8000 and data["records"]["property"] == 8000

    def test_json(self):
        """A JSON file loads the same way."""
        expected = {"records": {"whereabouts": 30, "health": 300}}
        assert load_facts_file(DATA / "worked_example.json") == expected

    def test_malformed_yaml_names_file_and_line(self):
        """Malformed YAML is refused naming the file and the line of the problem."""
        with pytest.raises(BadInput) as caught:
            load_facts_file(DATA / "bad_yaml.yaml")
        message = str(caught.value)
        assert "bad_yaml.yaml" in message and "line 4" in message and "malformed YAML" in message

    def test_malformed_json(self, tmp_path):
        """Malformed JSON is refused naming the file and the line."""
        path = tmp_path / "facts.json"
        path.write_text('{\n  "people_affected": 8000,\n}\n', encoding="utf-8")
        with pytest.raises(BadInput, match=r"facts.json: line 3: invalid JSON"):
            load_facts_file(path)

    def test_list_instead_of_mapping(self):
        """A list at the top of the file is refused, saying a mapping is needed."""
        expected = r"list\.yaml: facts must be a mapping of keys to values, got a list$"
        with pytest.raises(BadInput, match=expected):
            load_facts_file(DATA / "list.yaml")

    def test_unknown_key(self):
        """An unknown key is refused naming the file, the key and a suggestion."""
        with pytest.raises(BadInput, match=r"unknown_key.yaml: unknown fact 'peple_affected' \(did you mean"):
            load_facts_file(DATA / "unknown_key.yaml")

    def test_negative_count(self):
        """A negative count is refused naming the file and the field path."""
        expected = r"negative_count\.yaml: records\.property must be a whole number ≥ 0, got -5"
        with pytest.raises(BadInput, match=expected):
            load_facts_file(DATA / "negative_count.yaml")

    def test_missing_file(self, tmp_path):
        """A file that does not exist is refused naming it."""
        with pytest.raises(BadInput, match=r"facts file .*nope\.yaml does not exist"):
            load_facts_file(tmp_path / "nope.yaml")

    def test_empty_file_is_empty_update(self):
        """An empty file is an empty update, not an error."""
        assert load_facts_file(DATA / "empty.yaml") == {}

    def test_cross_field_rule_waits_for_merge(self):
        """A file may set a grade whose reason is already stored; merge_facts decides."""
        data = load_facts_file(DATA / "recorded_grade_only.yaml")
        facts = merge_facts({"recorded_grade_reason": "海量个人信息被窃取"}, data)
        assert facts.recorded_grade == "relatively_major"
        with pytest.raises(BadInput, match="needs recorded_grade_reason"):
            merge_facts({}, data)


class TestFactsToDict:
    def test_omits_unset_optionals(self):
        """Optional keys that are not set are left out; defaults of required keys stay."""
        result = facts_to_dict(Facts())
        assert "people_affected" not in result and "recorded_grade" not in result
        assert result["insider"] is False and result["records"]["property"] == 0

    def test_json_safe_and_round_trips(self):
        """The mapping serialises to JSON and merges back to equal facts."""
        facts = merge_facts(
            {},
            {
                "people_affected": 8000,
                "illegal_gains_rmb": Decimal("4999.50"),
                "economic_loss_rmb": 5000000,
                "harms": ["kidnapping"],
                "recorded_grade": "major",
                "recorded_grade_reason": "大量信息",
            },
        )
        result = facts_to_dict(facts)
        json.dumps(result)
        assert result["economic_loss_rmb"] == 5000000 and isinstance(result["economic_loss_rmb"], int)
        assert result["illegal_gains_rmb"] == 4999.5
        assert merge_facts({}, json.loads(json.dumps(result))) == facts


class TestChangedKeys:
    def test_dotted_differences(self):
        """Changed, added and removed keys are listed dotted and sorted."""
        before = {"people_affected": 1, "records": {"property": 1, "health": 2}, "insider": False}
        after = {"records": {"property": 5, "health": 2}, "insider": True, "harms": ["kidnapping"]}
        assert changed_keys(before, after) == ["harms", "insider", "people_affected", "records.property"]

    def test_no_change(self):
        """Equal mappings have no changed keys."""
        facts = facts_to_dict(merge_facts({}, {"records": {"other": 3}}))
        assert changed_keys(facts, dict(facts)) == []

    def test_after_merge(self):
        """The diff of stored facts before and after a merge names exactly the keys set."""
        before = facts_to_dict(merge_facts({}, {"people_affected": 10}))
        after = facts_to_dict(merge_facts(before, parse_assignments(["records.credit=4", "insider=yes"])))
        assert changed_keys(before, after) == ["insider", "records.credit"]
