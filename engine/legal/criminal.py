"""The two criminal interpretations measured against the facts: SPC 2017 (情节严重 / 特别严重) and
SPC 2019 (the aiding offence). Counts are weighed pro rata against each group's standard, in exact
fractions, so a count equal to a threshold meets it ("以上" includes the number itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from engine.legal.data import GroupThresholds, LegalData, Outcome
from engine.legal.facts import Facts
from engine.legal.findings import Finding, Lines, figure, make_finding

__all__ = ["spc_2017", "spc_2019"]

_GROUPS = ("A", "B", "C")


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
    formula = (
        " + ".join(f"{figure(c)}/{figure(s)}" for c, s in terms) + f" = {figure(ratio)}" if terms else "0"
    )
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
    lines: Lines, heading: tuple[str, str], vol: _Volume, counts: dict[str, int], gains: Fraction | None
) -> None:
    """Explain one level: each group against its standard, the pro-rata sum, the gains."""
    standards = ", ".join(f"{g} {figure(vol.standards[g])}" for g in _GROUPS)
    gains_text = "" if vol.gains_standard is None else f", gains RMB {figure(vol.gains_standard)}"
    gains_zh = "" if vol.gains_standard is None else f"，违法所得 {figure(vol.gains_standard)} 元"
    lines.add(f"{heading[0]}: standards {standards}{gains_text}", f"{heading[1]}：标准 {standards}{gains_zh}")
    for g in _GROUPS:
        if counts[g]:
            met = g in vol.groups_met
            sign, verdict = ("≥", ("met", "达到")) if met else ("<", ("not met", "未达到"))
            lines.add(
                f"  group {g}: {figure(counts[g])} {sign} {figure(vol.standards[g])}, {verdict[0]}",
                f"  {g}类：{figure(counts[g])} {sign} {figure(vol.standards[g])}，{verdict[1]}",
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
            f"  illegal gains RMB {figure(gains)} {sign} {figure(vol.gains_standard)}",
            f"  违法所得 {figure(gains)} 元 {sign} {figure(vol.gains_standard)} 元",
        )


def _conclude(lines: Lines, outcome: Outcome) -> Outcome:
    """Add the closing line naming the outcome and, when there is one, its sentence range."""
    sentence = outcome.sentence
    lines.add(
        f"outcome: {outcome.id}" + (f"; sentence range: {sentence}" if sentence else ""),
        f"结论：{outcome.label}" + (f"（{sentence}）" if sentence else ""),
    )
    return outcome


def spc_2017(facts: Facts, legal: LegalData, counts: dict[str, int]) -> Finding:
    rule, lines, numbers = legal.spc_2017, Lines(), legal.spc_2017.items
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
                f"insider, item {numbers.insider} (× {figure(half)})",
                f"履职或服务中获取（第{numbers.insider}项，× {figure(half)}）",
            ),
        )
        items += [numbers.insider] * insider.met
        score = insider.ratio
    top_met = level(
        ten,
        (
            f"especially serious, items {first}–{last} × {figure(ten)}",
            f"情节特别严重（第{first}至{last}项 × {figure(ten)}）",
        ),
    ).met
    if facts.insider:
        top_insider = level(
            ten * half,
            (
                f"especially serious, item {numbers.insider} × {figure(ten)} (× {figure(ten * half)})",
                f"情节特别严重（第{numbers.insider}项 × {figure(ten)}，即 × {figure(ten * half)}）",
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
    return make_finding(rule, outcome.id, outcome.label, outcome_index, lines, score=score, items=items)


def spc_2019(facts: Facts, legal: LegalData, counts: dict[str, int]) -> Finding:
    rule, lines, numbers = legal.spc_2019, Lines(), legal.spc_2019.items
    vol = _volume(counts, None, rule.thresholds, None, Fraction(1))
    if not facts.refused_rectification_order:
        lines.add(
            f"applies only to: {rule.subject}; refused_rectification_order is false",
            f"仅适用于：{rule.subject}；目前未记录拒不改正",
        )
        if any(counts.values()):
            lines.add(
                f"if an order to correct were refused, the leaked records would count {vol.formula} "
                f"against standards A {figure(vol.standards['A'])}, B {figure(vol.standards['B'])}, "
                f"C {figure(vol.standards['C'])}",
                f"如拒不改正，泄露记录按本条标准折算为 {vol.formula}",
            )
        outcome = rule.outcomes[0]
        return make_finding(rule, outcome.id, outcome.label, 0, lines)
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
    return make_finding(rule, outcome.id, outcome.label, outcome_index, lines, score=vol.ratio, items=items)
