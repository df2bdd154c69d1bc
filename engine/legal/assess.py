"""Grade an incident and measure its legal exposure: pure functions over facts and legal data.

:func:`assess` returns one :class:`Finding` per rule, in a fixed order: the CAC grade, the MIIT
grade, the CAC initial-report clock, and the two criminal interpretations. Every figure comes from
:class:`~engine.legal.data.LegalData`; the arithmetic is exact (fractions), so a count that equals a
threshold meets it ("以上" includes the number itself) and a pro-rata sum of exactly 1 meets it.
Each finding explains its arithmetic in English (``explain``) and Chinese (``explain_zh``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.errors import BadInput
from engine.legal.data import GroupThresholds, LegalData, Outcome, RuleInfo
from engine.legal.facts import GRADES, Facts

__all__ = ["GRADES", "Assessment", "Finding", "assess", "grade_rank"]

_GROUPS = ("A", "B", "C")


def grade_rank(grade: str) -> int:
    """Rank of a grade id, ``none`` lowest (0) and ``especially_major`` highest."""
    if grade not in GRADES:
        raise BadInput(f"unknown grade {grade!r}: expected one of {', '.join(GRADES)}")
    return GRADES.index(grade)


class Finding(BaseModel):
    """What one rule says about the incident, with the arithmetic that led there."""

    model_config = ConfigDict(frozen=True)

    rule: str
    title: str
    outcome: str
    outcome_label: str
    score: float | None
    items: list[int]
    explain: list[str]
    explain_zh: list[str]
    basis: str
    source: str
    verified: bool
    # Severity of the outcome within its own rule (0 = nothing applies); not part of the JSON.
    rank: int

    def to_json(self) -> dict[str, Any]:
        """The finding as the JSON of ``breach assess``."""
        return self.model_dump(exclude={"rank"})


class Assessment(BaseModel):
    """The incident's grade and every finding, in a fixed order."""

    model_config = ConfigDict(frozen=True)

    grade: str
    grade_label: str
    findings: list[Finding]

    def finding(self, rule_id: str) -> Finding:
        """The finding of one rule, e.g. ``CN-SPC-2017-5``."""
        for finding in self.findings:
            if finding.rule == rule_id:
                return finding
        raise KeyError(rule_id)

    def to_json(self) -> dict[str, Any]:
        """``{"grade", "grade_label", "findings": [...]}`` as ``breach assess --json`` prints it."""
        return {
            "grade": self.grade,
            "grade_label": self.grade_label,
            "findings": [f.to_json() for f in self.findings],
        }


class _Lines:
    """Explanation lines kept in two languages side by side, so the arithmetic is written once."""

    def __init__(self) -> None:
        self.en: list[str] = []
        self.zh: list[str] = []

    def add(self, en: str, zh: str) -> None:
        self.en.append(en)
        self.zh.append(zh)


def _n(value: int | Fraction | Decimal) -> str:
    """A figure for people: thousands separated, at most four decimals, no trailing zeros."""
    exact = Fraction(value)
    if exact.denominator == 1:
        return f"{exact.numerator:,}"
    return f"{float(exact):,.4f}".rstrip("0").rstrip(".")


def _finding(
    rule: RuleInfo,
    outcome: str,
    label: str,
    rank: int,
    lines: _Lines,
    *,
    score: Fraction | None = None,
    items: list[int] | None = None,
) -> Finding:
    return Finding(
        rule=rule.id,
        title=rule.title,
        outcome=outcome,
        outcome_label=label,
        rank=rank,
        score=None if score is None else float(score),
        items=sorted(set(items or [])),
        explain=lines.en,
        explain_zh=lines.zh,
        basis=rule.article,
        source=rule.source,
        verified=rule.verified,
    )


def _incident_established(facts: Facts) -> bool:
    """Whether the facts show anything leaked or harmed, i.e. there is an incident to grade."""
    return bool(
        (facts.people_affected or 0) > 0
        or any(facts.records.model_dump().values())
        or (facts.economic_loss_rmb or 0) > 0
        or facts.harms
    )


def _cac_grade(facts: Facts, legal: LegalData) -> Finding:
    rule, lines = legal.cac_grade, _Lines()
    label = legal.grade_label
    reached: list[str] = []
    criteria = (
        ("people affected", "个人信息泄露涉及人数", "people_affected", facts.people_affected, ""),
        ("direct economic loss", "直接经济损失", "economic_loss_rmb", facts.economic_loss_rmb, "RMB "),
    )
    for name_en, name_zh, attr, value, unit in criteria:
        unit_zh = "元" if unit else "人"
        if value is None:
            lines.add(f"{name_en}: not recorded", f"{name_zh}：未记录")
            continue
        hit = next((t for t in rule.thresholds if value >= getattr(t, attr)), None)
        if hit is None:
            lowest = rule.thresholds[-1]
            lines.add(
                f"{name_en}: {unit}{_n(value)} < {_n(getattr(lowest, attr))} needed for "
                f"{label(lowest.grade)} ({lowest.grade})",
                f"{name_zh}：{_n(value)}{unit_zh}，低于{label(lowest.grade)}标准 "
                f"{_n(getattr(lowest, attr))}{unit_zh}",
            )
        else:
            reached.append(hit.grade)
            lines.add(
                f"{name_en}: {unit}{_n(value)} ≥ {_n(getattr(hit, attr))}, "
                f"so {label(hit.grade)} ({hit.grade})",
                f"{name_zh}：{_n(value)}{unit_zh} ≥ {_n(getattr(hit, attr))}{unit_zh}，"
                f"达到{label(hit.grade)}",
            )
    if reached:
        computed = max(reached, key=grade_rank)
    elif _incident_established(facts):
        computed = rule.floor_grade
        lines.add(
            f"below every threshold: {label(computed)} ({computed}) under these Measures",
            f"未达到任何较高等级标准，按本办法为{label(computed)}事件",
        )
    else:
        computed = "none"
        lines.add(
            "no personal information is recorded as affected yet: nothing to grade",
            "尚无事实表明个人信息受到影响，暂不分级",
        )
    outcome = computed
    recorded, reason = facts.recorded_grade, facts.recorded_grade_reason
    if recorded is not None and grade_rank(recorded) > grade_rank(computed):
        outcome = recorded
        lines.add(
            f"recorded by hand as {label(recorded)} ({recorded}), above the computed "
            f"{label(computed)}, so the recorded grade stands; reason: {reason}",
            f"人工记录为{label(recorded)}，高于计算结果{label(computed)}，以人工记录为准；理由：{reason}",
        )
    elif recorded is not None:
        lines.add(
            f"recorded by hand as {label(recorded)} ({recorded}), not above the computed "
            f"{label(computed)}, so the computed grade stands",
            f"人工记录为{label(recorded)}，不高于计算结果{label(computed)}，以计算结果为准",
        )
    return _finding(rule, outcome, label(outcome), grade_rank(outcome), lines)


def _miit_grade(facts: Facts, legal: LegalData) -> Finding:
    rule, lines = legal.miit_grade, _Lines()
    people, needed, grade = facts.people_affected, rule.people_affected, rule.grade
    met = people is not None and people >= needed
    if people is None:
        lines.add("people affected: not recorded", "涉及人数：未记录")
    else:
        sign = "≥" if met else "<"
        lines.add(
            f"people affected: {_n(people)} {sign} {_n(needed)}",
            f"涉及人数：{_n(people)} {sign} {_n(needed)}",
        )
    if met:
        lines.add(
            f"so {legal.grade_label(grade)} ({grade}) under the MIIT plan",
            f"按工业和信息化部预案为{legal.grade_label(grade)}事件",
        )
        return _finding(rule, grade, legal.grade_label(grade), 1, lines)
    return _finding(rule, "not_met", "未达到", 0, lines)


def _initial_report(facts: Facts, legal: LegalData, grade: str) -> Finding:
    rule, lines = legal.initial_report, _Lines()
    clock = rule.clocks[facts.operator_type]  # facts validate operator_type; legal data covers each
    floor = rule.min_grade
    if grade_rank(grade) < grade_rank(floor):
        if grade == "none":
            lines.add(
                "no graded incident yet: no clock under these Measures", "尚未分级，本办法的报告时限暂不适用"
            )
        else:
            lines.add(
                f"grade {legal.grade_label(grade)} ({grade}) is below {legal.grade_label(floor)}: "
                f"{legal.grade_label(grade)} incidents have no clock under these Measures",
                f"事件等级为{legal.grade_label(grade)}，低于{legal.grade_label(floor)}，本办法未规定报告时限",
            )
        # No clock here is easily misread as no duty at all; the data names the duties that remain.
        lines.add(rule.other_duties_en, rule.other_duties)
        return _finding(rule, "not_applicable", "不适用", 0, lines)
    lines.add(
        f"grade {legal.grade_label(grade)} ({grade}) reaches {legal.grade_label(floor)}: "
        f"the initial report is due",
        f"事件等级为{legal.grade_label(grade)}，达到{legal.grade_label(floor)}，应当报告",
    )
    lines.add(
        f"operator_type {facts.operator_type}: at the latest {clock.duration} after the operator "
        f"discovered or learned of the incident, to {clock.recipient}",
        f"运营者类型 {facts.operator_type}：{clock.wording}，报送{clock.recipient}；{rule.starts_at}",
    )
    for extra in rule.also_report:
        lines.add(f"also: {extra}", f"另：{extra}")
    return _finding(rule, clock.duration, f"{clock.wording}，报送{clock.recipient}", 1, lines)


@dataclass(frozen=True)
class _Volume:
    """Record counts and gains measured against one level of standards."""

    standards: dict[str, Fraction]
    groups_met: list[str]
    ratio: Fraction
    formula: str
    gains_standard: Fraction | None
    gains_met: bool

    @property
    def pro_rata_met(self) -> bool:
        # The pro-rata item counts only when no single group reaches its own standard.
        return not self.groups_met and self.ratio >= 1

    @property
    def met(self) -> bool:
        return bool(self.groups_met) or self.pro_rata_met or self.gains_met


def _volume(
    counts: dict[str, int],
    gains: Fraction | None,
    thresholds: GroupThresholds,
    gains_rmb: Decimal | None,
    factor: Fraction,
) -> _Volume:
    standards = {g: Fraction(getattr(thresholds, g)) * factor for g in _GROUPS}
    terms = [(counts[g], standards[g]) for g in _GROUPS if counts[g]]
    ratio = sum((Fraction(c) / s for c, s in terms), Fraction(0))
    formula = " + ".join(f"{_n(c)}/{_n(s)}" for c, s in terms) + f" = {_n(ratio)}" if terms else "0"
    gains_standard = None if gains_rmb is None else Fraction(gains_rmb) * factor
    gains_met = gains is not None and gains_standard is not None and gains >= gains_standard
    return _Volume(
        standards,
        [g for g in _GROUPS if counts[g] >= standards[g]],
        ratio,
        formula,
        gains_standard,
        gains_met,
    )


def _volume_lines(
    lines: _Lines, heading: tuple[str, str], vol: _Volume, counts: dict[str, int], gains: Fraction | None
) -> None:
    """Explain one level: each group against its standard, the pro-rata sum, the gains."""
    standards = ", ".join(f"{g} {_n(vol.standards[g])}" for g in _GROUPS)
    gains_text = "" if vol.gains_standard is None else f", gains RMB {_n(vol.gains_standard)}"
    gains_zh = "" if vol.gains_standard is None else f"，违法所得 {_n(vol.gains_standard)} 元"
    lines.add(f"{heading[0]}: standards {standards}{gains_text}", f"{heading[1]}：标准 {standards}{gains_zh}")
    for g in _GROUPS:
        if counts[g]:
            met = g in vol.groups_met
            sign, verdict = ("≥", ("met", "达到")) if met else ("<", ("not met", "未达到"))
            lines.add(
                f"  group {g}: {_n(counts[g])} {sign} {_n(vol.standards[g])}, {verdict[0]}",
                f"  {g}类：{_n(counts[g])} {sign} {_n(vol.standards[g])}，{verdict[1]}",
            )
    if vol.groups_met:
        lines.add(
            f"  pro-rata {vol.formula} (not needed: a group already reaches its standard)",
            f"  折算 {vol.formula}（已有单类达标，无需折算）",
        )
    elif any(counts.values()):
        sign = "≥" if vol.ratio >= 1 else "<"
        verdict = ("met", "达到") if vol.pro_rata_met else ("not met", "未达到")
        lines.add(
            f"  pro-rata {vol.formula} {sign} 1, {verdict[0]}",
            f"  按比例折算 {vol.formula} {sign} 1，{verdict[1]}",
        )
    if vol.gains_standard is not None and gains is not None:
        sign = "≥" if vol.gains_met else "<"
        lines.add(
            f"  illegal gains RMB {_n(gains)} {sign} {_n(vol.gains_standard)}",
            f"  违法所得 {_n(gains)} 元 {sign} {_n(vol.gains_standard)} 元",
        )


def _conclude(lines: _Lines, outcome: Outcome) -> Outcome:
    """Add the closing line naming the outcome and, when there is one, its sentence range."""
    sentence = outcome.sentence
    lines.add(
        f"outcome: {outcome.id}" + (f"; sentence range: {sentence}" if sentence else ""),
        f"结论：{outcome.label}" + (f"（{sentence}）" if sentence else ""),
    )
    return outcome


def _spc_2017(facts: Facts, legal: LegalData, counts: dict[str, int]) -> Finding:
    rule, lines, numbers = legal.spc_2017, _Lines(), legal.spc_2017.items
    gains = None if facts.illegal_gains_rmb is None else Fraction(facts.illegal_gains_rmb)
    half, ten = Fraction(rule.insider_factor), Fraction(rule.especially_serious_factor)
    lines.add(f"measures the conduct of: {rule.subject}", f"评价对象：{rule.subject}")

    def level(factor: Fraction, heading: tuple[str, str]) -> _Volume:
        vol = _volume(counts, gains, rule.thresholds, rule.gains_rmb, factor)
        _volume_lines(lines, heading, vol, counts, gains)
        return vol

    first, last = numbers.A, numbers.gains  # the volume items, 3–7 in the interpretation
    full = level(Fraction(1), (f"serious, items {first}–{last}", f"情节严重（第{first}至{last}项）"))
    items = [getattr(numbers, g) for g in full.groups_met]
    items += [numbers.pro_rata] * full.pro_rata_met + [numbers.gains] * full.gains_met
    flags = (
        (facts.sold_tracks_used_in_crime, numbers.sold_tracks_used_in_crime),
        (facts.knew_buyer_criminal, numbers.knew_buyer_criminal),
        # Item 9: a conviction for this crime at any time, or an administrative penalty within two years.
        (facts.prior_conviction or facts.prior_penalty_within_2y, numbers.prior_penalty),
    )
    for present, number in flags:
        if present:
            lines.add(
                f"item {number}: {rule.item_labels.get(number, '')}",
                f"第{number}项：{rule.item_labels.get(number, '')}",
            )
            items.append(number)
    # The score is the pro-rata sum against the standards this person is held to (halved for insiders).
    score = full.ratio
    if facts.insider:
        insider = level(
            half,
            (
                f"insider, item {numbers.insider} (× {_n(half)})",
                f"履职或服务中获取（第{numbers.insider}项，× {_n(half)}）",
            ),
        )
        items += [numbers.insider] * insider.met
        score = insider.ratio
    top_met = level(
        ten,
        (
            f"especially serious, items {first}–{last} × {_n(ten)}",
            f"情节特别严重（第{first}至{last}项 × {_n(ten)}）",
        ),
    ).met
    if facts.insider:
        top_insider = level(
            ten * half,
            (
                f"especially serious, item {numbers.insider} × {_n(ten)} (× {_n(ten * half)})",
                f"情节特别严重（第{numbers.insider}项 × {_n(ten)}，即 × {_n(ten * half)}）",
            ),
        )
        top_met = top_met or top_insider.met
    harms = [h for h in facts.harms if h in rule.especially_serious_harms]
    for harm in harms:
        lines.add(
            f"harm {harm}: especially serious by itself (Art 5 ¶2)",
            f"{legal.criminal.harm_labels[harm]}：本身即属情节特别严重（第五条第二款）",
        )
    outcome_index = 2 if top_met or harms else 1 if items else 0
    outcome = _conclude(lines, rule.outcomes[outcome_index])
    return _finding(rule, outcome.id, outcome.label, outcome_index, lines, score=score, items=items)


def _spc_2019(facts: Facts, legal: LegalData, counts: dict[str, int]) -> Finding:
    rule, lines, numbers = legal.spc_2019, _Lines(), legal.spc_2019.items
    vol = _volume(counts, None, rule.thresholds, None, Fraction(1))
    if not facts.refused_rectification_order:
        lines.add(
            f"applies only to: {rule.subject}; refused_rectification_order is false",
            f"仅适用于：{rule.subject}；目前未记录拒不改正",
        )
        if any(counts.values()):
            lines.add(
                f"if an order to correct were refused, the leaked records would count {vol.formula} "
                f"against standards A {_n(vol.standards['A'])}, B {_n(vol.standards['B'])}, "
                f"C {_n(vol.standards['C'])}",
                f"如拒不改正，泄露记录按本条标准折算为 {vol.formula}",
            )
        outcome = rule.outcomes[0]
        return _finding(rule, outcome.id, outcome.label, 0, lines)
    lines.add(
        f"applies: {rule.subject}; the order to correct was refused", f"适用：{rule.subject}；已记录拒不改正"
    )
    first, last = numbers.A, numbers.pro_rata  # the volume items, 1–4 in the interpretation
    heading = (f"serious consequences, items {first}–{last}", f"造成严重后果（第{first}至{last}项）")
    _volume_lines(lines, heading, vol, counts, None)
    items = [getattr(numbers, g) for g in vol.groups_met] + [numbers.pro_rata] * vol.pro_rata_met
    for harm in facts.harms:
        if harm in rule.harm_items:
            number = rule.harm_items[harm]
            items.append(number)
            lines.add(f"harm {harm}: item {number}", f"{legal.criminal.harm_labels[harm]}：第{number}项")
    outcome_index = 2 if items else 1
    outcome = _conclude(lines, rule.outcomes[outcome_index])
    return _finding(rule, outcome.id, outcome.label, outcome_index, lines, score=vol.ratio, items=items)


def assess(facts: Facts, legal: LegalData) -> Assessment:
    """Grade the incident and evaluate every rule of the legal data against its facts.

    The grade is the higher of the CAC grade (with a hand-recorded grade when higher) and the MIIT
    grade; the initial-report clock follows that grade. The criminal findings count records per
    group (A, B, C) as the legal data defines the groups.
    """
    cac = _cac_grade(facts, legal)
    miit = _miit_grade(facts, legal)
    grade = max((cac.outcome, miit.outcome if miit.rank else "none"), key=grade_rank)
    counts = legal.group_counts(facts.records.model_dump())
    findings = [
        cac,
        miit,
        _initial_report(facts, legal, grade),
        _spc_2017(facts, legal, counts),
        _spc_2019(facts, legal, counts),
    ]
    return Assessment(grade=grade, grade_label=legal.grade_label(grade), findings=findings)
