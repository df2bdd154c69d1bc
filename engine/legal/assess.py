"""Grade an incident and measure its legal exposure: pure functions over facts and legal data.

:func:`assess` returns one :class:`Finding` per rule, in a fixed order: the CAC grade, the MIIT
grade, the CAC initial-report clock, and the two criminal interpretations (measured in
:mod:`engine.legal.criminal`). Every figure comes from :class:`~engine.legal.data.LegalData`; the
arithmetic is exact (fractions), so a count that equals a threshold meets it ("以上" includes the
number itself) and a pro-rata sum of exactly 1 meets it. Each finding explains its arithmetic in
English (``explain``) and Chinese (``explain_zh``).
"""

from __future__ import annotations

from engine.errors import BadInput
from engine.legal.criminal import spc_2017, spc_2019
from engine.legal.data import LegalData
from engine.legal.facts import GRADES, Facts
from engine.legal.findings import Assessment, Finding, Lines, figure, make_finding

__all__ = ["GRADES", "Assessment", "Finding", "assess", "grade_rank"]


def grade_rank(grade: str) -> int:
    """Rank of a grade id, ``none`` lowest (0) and ``especially_major`` highest."""
    if grade not in GRADES:
        raise BadInput(f"unknown grade {grade!r}: expected one of {', '.join(GRADES)}")
    return GRADES.index(grade)


def _incident_established(facts: Facts) -> bool:
    """Whether the facts show anything leaked or harmed, i.e. there is an incident to grade."""
    return bool(
        (facts.people_affected or 0) > 0
        or any(facts.records.model_dump().values())
        or (facts.economic_loss_rmb or 0) > 0
        or facts.harms
    )


def _cac_grade(facts: Facts, legal: LegalData) -> Finding:
    rule, lines = legal.cac_grade, Lines()
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
                f"{name_en}: {unit}{figure(value)} < {figure(getattr(lowest, attr))} needed for "
                f"{label(lowest.grade)} ({lowest.grade})",
                f"{name_zh}：{figure(value)}{unit_zh}，低于{label(lowest.grade)}标准 "
                f"{figure(getattr(lowest, attr))}{unit_zh}",
            )
        else:
            reached.append(hit.grade)
            lines.add(
                f"{name_en}: {unit}{figure(value)} ≥ {figure(getattr(hit, attr))}, "
                f"so {label(hit.grade)} ({hit.grade})",
                f"{name_zh}：{figure(value)}{unit_zh} ≥ {figure(getattr(hit, attr))}{unit_zh}，"
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
    return make_finding(rule, outcome, label(outcome), grade_rank(outcome), lines)


def _miit_grade(facts: Facts, legal: LegalData) -> Finding:
    rule, lines = legal.miit_grade, Lines()
    people, needed, grade = facts.people_affected, rule.people_affected, rule.grade
    met = people is not None and people >= needed
    if people is None:
        lines.add("people affected: not recorded", "涉及人数：未记录")
    else:
        sign = "≥" if met else "<"
        lines.add(
            f"people affected: {figure(people)} {sign} {figure(needed)}",
            f"涉及人数：{figure(people)} {sign} {figure(needed)}",
        )
    if met:
        lines.add(
            f"so {legal.grade_label(grade)} ({grade}) under the MIIT plan",
            f"按工业和信息化部预案为{legal.grade_label(grade)}事件",
        )
        return make_finding(rule, grade, legal.grade_label(grade), 1, lines)
    return make_finding(rule, "not_met", "未达到", 0, lines)


def _initial_report(facts: Facts, legal: LegalData, grade: str) -> Finding:
    rule, lines = legal.initial_report, Lines()
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
        return make_finding(rule, "not_applicable", "不适用", 0, lines)
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
    return make_finding(rule, clock.duration, f"{clock.wording}，报送{clock.recipient}", 1, lines)


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
        spc_2017(facts, legal, counts),
        spc_2019(facts, legal, counts),
    ]
    return Assessment(grade=grade, grade_label=legal.grade_label(grade), findings=findings)
