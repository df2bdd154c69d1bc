"""Legal data, the assessment of each rule at both sides of its boundaries, and the report.

Figures in these tests are the law's (docs/law/cn.md and the interpretations); the engine reads them
from config/legal/, so a test failing here means the data or the arithmetic drifted from the law.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import BadInput, NotFound
from engine.legal import assess as assess_module
from engine.legal.assess import GRADES, assess, grade_rank
from engine.legal.data import builtin_legal, load_legal
from engine.legal.facts import HARMS, RECORD_CATEGORIES, load_facts_file, merge_facts
from engine.legal.report import DISCLAIMER, render_assessment_markdown
from engine.workspace import Workspace, builtin_root

LEGAL = builtin_legal()
DATA = Path(__file__).parent / "data" / "facts"
BUILTIN_CONFIG = builtin_root() / "config"
GROUP_OF = {c: g.id for g in LEGAL.criminal.record_groups for c in g.categories}
STANDARD = {"A": 50, "B": 500, "C": 5000}  # 法释〔2017〕10号 Art 5 items 3–5


def run(**facts):
    return assess(merge_facts({}, facts), LEGAL)


def finding(rule_id, **facts):
    return run(**facts).finding(rule_id)


class TestLegalData:
    def test_rule_lookup(self):
        """Every rule id of docs/law/cn.md used by the assessment and the report is found."""
        for rule_id in (
            "CN-CAC-GRADE",
            "CN-MIIT-GRADE",
            "CN-CAC-RPT-4",
            "CN-SPC-2017-5",
            "CN-SPC-2019-4",
            "CN-PIPL-66",
            "CN-DSL-45",
            "CN-CSL-64",
            "CN-CSL-68",
        ):
            assert LEGAL.rule(rule_id).id == rule_id

    def test_unknown_rule(self):
        """An unknown rule id is refused, naming the known ones."""
        with pytest.raises(NotFound, match=r"unknown legal rule 'CN-X'.*CN-CAC-GRADE"):
            LEGAL.rule("CN-X")

    def test_verified_flags_follow_law_cn(self):
        """Only the CSL personal-information penalty is unverified in docs/law/cn.md."""
        assert [r.id for r in LEGAL.rules() if not r.verified] == ["CN-CSL-64"]

    @pytest.mark.parametrize(
        ("operator_type", "duration", "recipient"),
        [
            ("cii", "1h", "关键信息基础设施保护工作部门和公安机关"),
            ("state_organ", "2h", "本部门网信工作机构"),
            ("other", "4h", "属地省级网信部门"),
        ],
    )
    def test_initial_report_clock(self, operator_type, duration, recipient):
        """The CN-CAC-RPT-4 clock gives the duration and recipient for each operator type."""
        clock = LEGAL.initial_report_clock(operator_type)
        assert (clock.duration, clock.recipient, clock.rule.id) == (duration, recipient, "CN-CAC-RPT-4")
        assert clock.rule.min_grade == "relatively_major"

    def test_unknown_operator_type(self):
        """The clock of an unknown operator type is refused."""
        with pytest.raises(BadInput, match="unknown operator_type 'bank'"):
            LEGAL.initial_report_clock("bank")

    def test_grade_ladder(self):
        """Grades rank from none to especially_major with their Chinese labels."""
        assert [grade_rank(g) for g in GRADES] == [0, 1, 2, 3, 4]
        assert [LEGAL.grade_label(g) for g in GRADES] == ["无", "一般", "较大", "重大", "特别重大"]
        with pytest.raises(BadInput, match="unknown grade"):
            grade_rank("huge")

    def test_no_figures_in_assess_code(self):
        """assess.py holds no numeric literal beyond 0, 1, 2 (the outcome indices): figures are data."""
        tree = ast.parse(Path(assess_module.__file__).read_text(encoding="utf-8"))
        numbers = {
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) in (int, float)
        }
        assert numbers <= {0, 1, 2}


def _workspace_with(tmp_path, name, edit):
    """A workspace whose config/legal/<name> is the built-in file changed by ``edit``."""
    legal_dir = tmp_path / "config" / "legal"
    legal_dir.mkdir(parents=True)
    text = (BUILTIN_CONFIG / "legal" / name).read_text(encoding="utf-8")
    (legal_dir / name).write_text(edit(text), encoding="utf-8")
    return Workspace(home=tmp_path).search_path("config")


class TestLoadLegal:
    def test_workspace_override_changes_outcome(self, tmp_path):
        """A workspace copy of criminal.yaml with a lower standard shadows the built-in one."""
        dirs = _workspace_with(
            tmp_path, "criminal.yaml", lambda t: t.replace("thresholds: {A: 50,", "thresholds: {A: 20,")
        )
        legal = load_legal(dirs)
        facts = merge_facts({}, {"records": {"property": 30}})
        assert assess(facts, LEGAL).finding("CN-SPC-2017-5").outcome == "not_met"
        assert assess(facts, legal).finding("CN-SPC-2017-5").outcome == "serious"
        assert legal.files["criminal.yaml"] == tmp_path / "config" / "legal" / "criminal.yaml"
        assert legal.files["grading.yaml"] == BUILTIN_CONFIG / "legal" / "grading.yaml"

    def test_workspace_override_of_clock(self, tmp_path):
        """A workspace reporting.yaml changes the clock other modules read."""
        dirs = _workspace_with(
            tmp_path, "reporting.yaml", lambda t: t.replace("duration: 4h", "duration: 3h")
        )
        assert load_legal(dirs).initial_report_clock("other").duration == "3h"

    def test_malformed_yaml(self, tmp_path):
        """Malformed YAML in a legal file is refused naming the file and the line."""
        dirs = _workspace_with(tmp_path, "grading.yaml", lambda t: t + "\nbroken: [\n")
        with pytest.raises(BadInput, match=r"grading.yaml: line \d+: malformed YAML"):
            load_legal(dirs)

    def test_invalid_threshold(self, tmp_path):
        """A negative threshold is refused naming the file and the field path."""
        dirs = _workspace_with(
            tmp_path, "criminal.yaml", lambda t: t.replace("thresholds: {A: 500,", "thresholds: {A: -500,")
        )
        with pytest.raises(BadInput, match=r"criminal.yaml: invalid legal data: spc_2019.thresholds.A"):
            load_legal(dirs)

    def test_category_must_be_grouped(self, tmp_path):
        """A record category missing from the groups is refused, since its records would vanish."""
        dirs = _workspace_with(
            tmp_path, "criminal.yaml", lambda t: t.replace("categories: [other]", "categories: []")
        )
        with pytest.raises(BadInput, match="record_groups must be A, B, C"):
            load_legal(dirs)

    def test_grade_ids_are_contract(self, tmp_path):
        """Renaming a grade id is refused; only labels may change."""
        dirs = _workspace_with(tmp_path, "grading.yaml", lambda t: t.replace("{id: major,", "{id: big,"))
        with pytest.raises(BadInput, match=r"grading\.yaml: invalid legal data"):
            load_legal(dirs)

    def test_penalty_must_cite_known_rule(self, tmp_path):
        """A penalty applying to an unknown rule id is refused."""
        dirs = _workspace_with(
            tmp_path,
            "penalties.yaml",
            lambda t: t.replace("applies_to: [CN-SPC-2019-4]", "applies_to: [CN-NOPE]"),
        )
        with pytest.raises(BadInput, match="CN-CSL-68 applies_to unknown rules CN-NOPE"):
            load_legal(dirs)

    def test_missing_file(self, tmp_path):
        """A legal file found in no config folder is refused naming it and the folders searched."""
        with pytest.raises(BadInput, match=r"legal data file grading\.yaml not found"):
            load_legal([tmp_path])

    def test_list_file(self, tmp_path):
        """A legal file that is not a mapping is refused."""
        dirs = _workspace_with(tmp_path, "penalties.yaml", lambda t: "- 1\n- 2\n")
        with pytest.raises(BadInput, match=r"penalties\.yaml: legal data must be a mapping"):
            load_legal(dirs)


class TestCacGrade:
    @pytest.mark.parametrize(
        ("people", "grade"),
        [
            (999_999, "general"),
            (1_000_000, "relatively_major"),
            (9_999_999, "relatively_major"),
            (10_000_000, "major"),
            (99_999_999, "major"),
            (100_000_000, "especially_major"),
        ],
    )
    def test_people_boundaries(self, people, grade):
        """Each people threshold is met at n and not at n-1."""
        assert finding("CN-CAC-GRADE", people_affected=people).outcome == grade

    @pytest.mark.parametrize(
        ("loss", "grade"),
        [
            (4_999_999, "general"),
            (5_000_000, "relatively_major"),
            (19_999_999, "relatively_major"),
            (20_000_000, "major"),
            (99_999_999, "major"),
            (100_000_000, "especially_major"),
        ],
    )
    def test_economic_loss_boundaries(self, loss, grade):
        """Each direct-economic-loss threshold is met at n and not at n-1."""
        assert finding("CN-CAC-GRADE", economic_loss_rmb=loss).outcome == grade

    def test_fractional_loss_below_boundary(self):
        """A loss one fen below a threshold does not meet it."""
        assert finding("CN-CAC-GRADE", economic_loss_rmb="4999999.99").outcome == "general"

    def test_higher_criterion_wins(self):
        """When people and loss reach different grades, the higher grade stands."""
        found = finding("CN-CAC-GRADE", people_affected=1_000_000, economic_loss_rmb=20_000_000)
        assert found.outcome == "major"

    def test_nothing_leaked_is_none(self):
        """With no people, records, loss or harm recorded there is nothing to grade."""
        result = run()
        assert (result.grade, result.finding("CN-CAC-GRADE").outcome) == ("none", "none")
        assert run(people_affected=0).grade == "none"

    def test_any_leak_is_general(self):
        """Below 较大 any incident is 一般 under the Measures, even one known only by its records."""
        assert run(records={"other": 1}).grade == "general"
        assert run(people_affected=1).grade == "general"

    def test_recorded_grade_higher_wins(self):
        """A grade recorded by hand above the computed one wins, and explain gives the reason."""
        result = run(people_affected=5000, recorded_grade="major", recorded_grade_reason="海量个人信息被窃取")
        found = result.finding("CN-CAC-GRADE")
        assert (result.grade, found.outcome, found.outcome_label) == ("major", "major", "重大")
        assert any("recorded grade stands" in line and "海量个人信息被窃取" in line for line in found.explain)

    def test_recorded_grade_lower_ignored(self):
        """A grade recorded by hand below the computed one does not lower it."""
        found = finding(
            "CN-CAC-GRADE", people_affected=10_000_000, recorded_grade="general", recorded_grade_reason="估计"
        )
        assert found.outcome == "major"
        assert any("computed grade stands" in line for line in found.explain)


class TestMiitGrade:
    @pytest.mark.parametrize(("people", "outcome"), [(99_999, "not_met"), (100_000, "general")])
    def test_boundary(self, people, outcome):
        """The MIIT plan's 一般 grade starts at 100,000 people."""
        assert finding("CN-MIIT-GRADE", people_affected=people).outcome == outcome

    def test_unknown_people(self):
        """Without a people count the MIIT grade is not met."""
        assert finding("CN-MIIT-GRADE").outcome == "not_met"


class TestInitialReport:
    def test_general_has_no_clock(self):
        """一般 incidents have no clock under the Measures, and explain says so."""
        found = finding("CN-CAC-RPT-4", people_affected=999_999)
        assert found.outcome == "not_applicable"
        assert any("一般 incidents have no clock under these Measures" in line for line in found.explain)

    @pytest.mark.parametrize(
        ("operator_type", "clock"), [("cii", "1h"), ("state_organ", "2h"), ("other", "4h")]
    )
    def test_clock_by_operator_type(self, operator_type, clock):
        """From 较大 upward the clock follows the operator type and names the recipient."""
        found = finding("CN-CAC-RPT-4", people_affected=1_000_000, operator_type=operator_type)
        assert found.outcome == clock
        assert LEGAL.initial_report_clock(operator_type).recipient in found.outcome_label

    def test_recorded_grade_starts_clock(self):
        """A grade recorded by hand at 较大 starts the clock like a computed one."""
        found = finding(
            "CN-CAC-RPT-4",
            people_affected=10,
            recorded_grade="relatively_major",
            recorded_grade_reason="较大量个人信息",
        )
        assert found.outcome == "4h"


class TestSpc2017:
    @pytest.mark.parametrize("category", RECORD_CATEGORIES)
    def test_serious_boundary_each_category(self, category):
        """Each category reaches 情节严重 at its group's standard and not one record below it."""
        standard = STANDARD[GROUP_OF[category]]
        item = {"A": 3, "B": 4, "C": 5}[GROUP_OF[category]]
        below = finding("CN-SPC-2017-5", records={category: standard - 1})
        at = finding("CN-SPC-2017-5", records={category: standard})
        assert (below.outcome, below.items) == ("not_met", [])
        assert (at.outcome, at.items) == ("serious", [item])

    @pytest.mark.parametrize("category", RECORD_CATEGORIES)
    def test_insider_boundary_each_category(self, category):
        """For an insider each standard is halved (item 8): met at half, not one below."""
        half = STANDARD[GROUP_OF[category]] // 2
        below = finding("CN-SPC-2017-5", records={category: half - 1}, insider=True)
        at = finding("CN-SPC-2017-5", records={category: half}, insider=True)
        assert below.outcome == "not_met"
        assert (at.outcome, at.items) == ("serious", [8])

    @pytest.mark.parametrize("category", RECORD_CATEGORIES)
    def test_ten_times_each_category(self, category):
        """Ten times the standard makes it 情节特别严重; one record fewer stays 情节严重."""
        ten = STANDARD[GROUP_OF[category]] * 10
        assert finding("CN-SPC-2017-5", records={category: ten - 1}).outcome == "serious"
        assert finding("CN-SPC-2017-5", records={category: ten}).outcome == "especially_serious"

    @pytest.mark.parametrize("category", RECORD_CATEGORIES)
    def test_ten_times_insider_each_category(self, category):
        """For an insider ten times the halved standard (250, 2,500, 25,000) is 情节特别严重."""
        ten_half = STANDARD[GROUP_OF[category]] * 5
        below = finding("CN-SPC-2017-5", records={category: ten_half - 1}, insider=True)
        at = finding("CN-SPC-2017-5", records={category: ten_half}, insider=True)
        assert (below.outcome, at.outcome) == ("serious", "especially_serious")

    def test_group_counts_add_up(self):
        """Categories of one group add up: 30 track + 20 credit records reach the 50 of group A."""
        assert finding("CN-SPC-2017-5", records={"whereabouts": 30, "credit": 20}).items == [3]

    def test_worked_example(self):
        """30 track and 300 health records: 30/50 + 300/500 = 1.2 ≥ 1 meets item 6."""
        found = finding("CN-SPC-2017-5", records={"whereabouts": 30, "health": 300})
        assert (found.outcome, found.items, found.score) == ("serious", [6], 1.2)
        assert any("30/50 + 300/500 = 1.2 ≥ 1" in line for line in found.explain)

    def test_pro_rata_exactly_one(self):
        """A pro-rata sum of exactly 1 meets the standard; just below does not."""
        assert finding("CN-SPC-2017-5", records={"property": 25, "health": 250}).items == [6]
        below = finding("CN-SPC-2017-5", records={"property": 24, "health": 250})
        assert below.outcome == "not_met" and below.score == pytest.approx(0.98)

    def test_pro_rata_three_groups(self):
        """The pro-rata sum runs over all three groups."""
        found = finding("CN-SPC-2017-5", records={"credit": 20, "transaction": 200, "other": 1000})
        assert found.items == [6] and found.score == pytest.approx(1.0)

    def test_pro_rata_not_item_when_group_met(self):
        """Item 6 applies only when no single group reaches its standard."""
        found = finding("CN-SPC-2017-5", records={"property": 50, "health": 300})
        assert found.items == [3]

    def test_insider_pro_rata(self):
        """For an insider the pro-rata sum runs against halved standards: 15/25 + 150/250 = 1.2."""
        found = finding("CN-SPC-2017-5", records={"whereabouts": 15, "health": 150}, insider=True)
        assert (found.outcome, found.items, found.score) == ("serious", [8], 1.2)

    def test_ten_times_pro_rata(self):
        """Ten times the pro-rata standard: 200/500 + 3,000/5,000 = 1 is 情节特别严重, 199 records are not."""
        at = finding("CN-SPC-2017-5", records={"property": 200, "health": 3000})
        below = finding("CN-SPC-2017-5", records={"property": 199, "health": 3000})
        assert (below.outcome, at.outcome) == ("serious", "especially_serious")

    @pytest.mark.parametrize(
        ("gains", "insider", "outcome", "items"),
        [
            (4_999, False, "not_met", []),
            (5_000, False, "serious", [7]),
            ("4999.99", False, "not_met", []),
            (2_499, True, "not_met", []),
            (2_500, True, "serious", [8]),
            (49_999, False, "serious", [7]),
            (50_000, False, "especially_serious", [7]),
            (24_999, True, "serious", [7, 8]),
            (25_000, True, "especially_serious", [7, 8]),
        ],
    )
    def test_gains(self, gains, insider, outcome, items):
        """Illegal gains meet item 7 at RMB 5,000 (insider 2,500) and ten times at 50,000 (insider 25,000)."""
        found = finding("CN-SPC-2017-5", illegal_gains_rmb=gains, insider=insider)
        assert (found.outcome, found.items) == (outcome, items)

    def test_insider_also_meets_full_items(self):
        """An insider over the full standard meets both item 3 and item 8."""
        assert finding("CN-SPC-2017-5", records={"property": 60}, insider=True).items == [3, 8]

    @pytest.mark.parametrize(
        ("flag", "item"),
        [
            ("sold_tracks_used_in_crime", 1),
            ("knew_buyer_criminal", 2),
            ("prior_penalty_within_2y", 9),
            ("prior_conviction", 9),
        ],
    )
    def test_flag_items(self, flag, item):
        """Items 1, 2 and 9 are met by their facts alone; item 9 by a conviction at any time too."""
        found = finding("CN-SPC-2017-5", **{flag: True})
        assert (found.outcome, found.items) == ("serious", [item])

    def test_conviction_and_penalty_meet_item_9_once(self):
        """A prior conviction and a recent administrative penalty together still meet item 9 once."""
        found = finding("CN-SPC-2017-5", prior_conviction=True, prior_penalty_within_2y=True)
        assert (found.outcome, found.items) == ("serious", [9])

    def test_especially_serious_cites_art_5_paragraph_2(self):
        """情节特别严重 is cited as Art 5 ¶2 of 法释〔2017〕10号, never as Art 6."""
        found = finding("CN-SPC-2017-5", harms=["major_economic_loss"])
        assert any("especially serious by itself (Art 5 ¶2)" in line for line in found.explain)
        assert "第六条" not in found.basis and not any("Art 6" in line for line in found.explain)
        assert "第五条第一款、第二款" in found.basis

    @pytest.mark.parametrize(
        "harm",
        [
            "death_or_serious_injury",
            "mental_disorder",
            "kidnapping",
            "major_economic_loss",
            "bad_social_impact",
        ],
    )
    def test_harms_especially_serious(self, harm):
        """The harms of Art 5 ¶2 items 1 and 2 alone make it 情节特别严重."""
        assert finding("CN-SPC-2017-5", harms=[harm]).outcome == "especially_serious"

    def test_social_disorder_not_a_2017_harm(self):
        """Serious social disorder is a 2019 consequence, not one of the 2017 interpretation."""
        assert finding("CN-SPC-2017-5", harms=["serious_social_disorder"]).outcome == "not_met"


class TestSpc2019:
    def test_not_applicable_without_refusal(self):
        """Without a refused order to correct the rule does not apply, however many records leaked."""
        found = finding("CN-SPC-2019-4", records={"property": 10_000_000})
        assert (found.outcome, found.score, found.items) == ("not_applicable", None, [])
        assert any("if an order to correct were refused" in line for line in found.explain)

    @pytest.mark.parametrize("category", RECORD_CATEGORIES)
    def test_boundary_each_category(self, category):
        """After a refusal each category reaches 造成严重后果 at 500 / 5,000 / 50,000, not one below."""
        standard = STANDARD[GROUP_OF[category]] * 10
        item = {"A": 1, "B": 2, "C": 3}[GROUP_OF[category]]
        below = finding("CN-SPC-2019-4", records={category: standard - 1}, refused_rectification_order=True)
        at = finding("CN-SPC-2019-4", records={category: standard}, refused_rectification_order=True)
        assert below.outcome == "not_met"
        assert (at.outcome, at.items) == ("serious_consequences", [item])

    def test_pro_rata(self):
        """300 track and 3,000 health records: 300/500 + 3,000/5,000 = 1.2 meets item 4."""
        found = finding(
            "CN-SPC-2019-4", records={"whereabouts": 300, "health": 3000}, refused_rectification_order=True
        )
        assert (found.outcome, found.items, found.score) == ("serious_consequences", [4], 1.2)

    def test_insider_does_not_halve(self):
        """The 2019 standards have no insider factor."""
        found = finding(
            "CN-SPC-2019-4", records={"property": 250}, insider=True, refused_rectification_order=True
        )
        assert found.outcome == "not_met"

    @pytest.mark.parametrize(
        ("harm", "item"),
        [
            ("death_or_serious_injury", 5),
            ("mental_disorder", 5),
            ("kidnapping", 5),
            ("major_economic_loss", 6),
            ("serious_social_disorder", 7),
        ],
    )
    def test_harms(self, harm, item):
        """The listed harms meet items 5–7 after a refusal."""
        found = finding("CN-SPC-2019-4", harms=[harm], refused_rectification_order=True)
        assert (found.outcome, found.items) == ("serious_consequences", [item])

    def test_bad_social_impact_not_listed(self):
        """Bad social impact is a 2017 harm, not a 2019 consequence."""
        found = finding("CN-SPC-2019-4", harms=["bad_social_impact"], refused_rectification_order=True)
        assert found.outcome == "not_met"


class TestDemoScenario:
    def test_demo(self):
        """~8,000 people's payroll copied by an insider: 一般, no clock, but 情节特别严重 for the insider."""
        facts = merge_facts({}, load_facts_file(DATA / "demo.yaml"))
        result = assess(facts, LEGAL)
        outcomes = {f.rule: f.outcome for f in result.findings}
        assert (result.grade, result.grade_label) == ("general", "一般")
        assert outcomes == {
            "CN-CAC-GRADE": "general",
            "CN-MIIT-GRADE": "not_met",
            "CN-CAC-RPT-4": "not_applicable",
            "CN-SPC-2017-5": "especially_serious",
            "CN-SPC-2019-4": "not_applicable",
        }
        assert result.finding("CN-SPC-2017-5").items == [3, 8]

    def test_json_shape(self):
        """to_json gives grade, label and findings in fixed order with the documented keys."""
        data = assess(merge_facts({}, load_facts_file(DATA / "demo.yaml")), LEGAL).to_json()
        json.dumps(data, ensure_ascii=False)
        assert [f["rule"] for f in data["findings"]] == [
            "CN-CAC-GRADE",
            "CN-MIIT-GRADE",
            "CN-CAC-RPT-4",
            "CN-SPC-2017-5",
            "CN-SPC-2019-4",
        ]
        for item in data["findings"]:
            keys = {"rule", "outcome", "score", "items", "explain", "basis", "source", "verified"}
            assert keys <= set(item)
            assert "rank" not in item


_counts = st.integers(min_value=0, max_value=120_000)
_facts = st.fixed_dictionaries(
    {
        "people_affected": st.one_of(st.none(), st.integers(min_value=0, max_value=150_000_000)),
        "records": st.fixed_dictionaries({c: _counts for c in RECORD_CATEGORIES}),
        "insider": st.booleans(),
        "refused_rectification_order": st.booleans(),
        "operator_type": st.sampled_from(["cii", "state_organ", "other"]),
        "harms": st.lists(st.sampled_from(HARMS), unique=True, max_size=2),
        "illegal_gains_rmb": st.one_of(st.none(), st.integers(min_value=0, max_value=80_000)),
    }
)


class TestMonotonic:
    @settings(max_examples=300, deadline=None)
    @given(
        base=_facts,
        more_people=st.integers(min_value=0, max_value=150_000_000),
        more=st.fixed_dictionaries({c: _counts for c in RECORD_CATEGORIES}),
    )
    def test_more_never_lowers(self, base, more_people, more):
        """More records or more people never lower the grade or any finding's outcome."""
        bigger = dict(
            base,
            records={c: base["records"][c] + more[c] for c in RECORD_CATEGORIES},
            people_affected=(base["people_affected"] or 0) + more_people,
        )
        before, after = run(**base), run(**bigger)
        assert grade_rank(after.grade) >= grade_rank(before.grade)
        for old, new in zip(before.findings, after.findings, strict=True):
            assert new.rank >= old.rank, (old.rule, old.outcome, new.outcome)


class TestReport:
    def _render(self, **facts):
        parsed = merge_facts({}, facts)
        return render_assessment_markdown(
            assess(parsed, LEGAL), parsed, LEGAL, incident_id="INC-1", title="客户账套 | 泄露"
        )

    def test_demo_report(self):
        """The report shows facts, grade, every finding with its arithmetic, basis and penalties."""
        text = self._render(**load_facts_file(DATA / "demo.yaml"))
        assert text.startswith("# 法律风险评估报告：INC-1 客户账套 | 泄露")
        assert text.count(DISCLAIMER) == 2
        assert "本报告仅列明事实与法定标准，不构成法律意见" in text
        for rule_id in (
            "CN-CAC-GRADE",
            "CN-MIIT-GRADE",
            "CN-CAC-RPT-4",
            "CN-SPC-2017-5",
            "CN-SPC-2019-4",
            "CN-PIPL-66",
            "CN-DSL-45",
            "CN-CSL-64",
            "CN-CSL-68",
        ):
            assert rule_id in text
        assert "| 泄露记录：财产信息（A类） | 8,000 条 |" in text
        assert "**一般**（`general`）" in text and "**情节特别严重**" in text
        assert "A类：8,000 ≥ 50，达到" in text
        assert "三年以上七年以下有期徒刑" in text
        assert "五千万元以下或者上一年度营业额百分之五以下罚款" in text
        assert "未核实" in text

    def test_worked_example_arithmetic(self):
        """The pro-rata arithmetic appears in the report in full."""
        assert "30/50 + 300/500 = 1.2 ≥ 1" in self._render(records={"whereabouts": 30, "health": 300})

    def test_operator_text_is_contained(self):
        """A reason with pipes and line breaks stays inside its table cell."""
        text = self._render(people_affected=1, recorded_grade="major", recorded_grade_reason="a | b\n# c")
        assert "| 人工记录等级的理由 | a \\| b # c |" in text

    def test_without_incident(self):
        """Without an id or title the heading stands alone."""
        parsed = merge_facts({}, {})
        text = render_assessment_markdown(assess(parsed, LEGAL), parsed, LEGAL, incident_id=None, title=None)
        assert text.startswith("# 法律风险评估报告\n") and "| 泄露记录 | 未记录 |" in text
