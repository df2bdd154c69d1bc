"""What an assessment says: one finding per rule with its arithmetic in two languages, and the whole.

Shared by the grading (:mod:`engine.legal.assess`) and the criminal-threshold measures
(:mod:`engine.legal.criminal`).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.legal.data import RuleInfo

__all__ = ["Assessment", "Finding", "Lines", "figure", "make_finding"]


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


class Lines:
    """Explanation lines kept in two languages side by side, so the arithmetic is written once."""

    def __init__(self) -> None:
        self.en: list[str] = []
        self.zh: list[str] = []

    def add(self, en: str, zh: str) -> None:
        self.en.append(en)
        self.zh.append(zh)


def figure(value: int | Fraction | Decimal) -> str:
    """A figure for people: thousands separated, at most four decimals, no trailing zeros."""
    exact = Fraction(value)
    if exact.denominator == 1:
        return f"{exact.numerator:,}"
    return f"{float(exact):,.4f}".rstrip("0").rstrip(".")


def make_finding(
    rule: RuleInfo,
    outcome: str,
    label: str,
    rank: int,
    lines: Lines,
    *,
    score: Fraction | None = None,
    items: list[int] | None = None,
) -> Finding:
    """The finding of ``rule`` with its outcome, the lines that explain it and the items it rests on."""
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
