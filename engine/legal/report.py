"""The legal-exposure assessment as a report for the legal team, through the document templates.

The report states facts and the figures of the law; it draws no conclusion beyond the arithmetic
and says so. This module only gathers what the report shows into the ``assessment_report`` context
(``templates/contexts.yaml``): every figure, label, sentence range and penalty comes from the
assessment and the legal data, every word around them from the templates
(``templates/<locale>/assessment_report.md.j2`` and ``.html.j2``, the HTML also laid out as PDF). A
workspace's ``templates/<locale>/`` copy of a template shadows the built-in one, so a legal team
can change the wording without a release.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.documents.render import DocumentRenderer, Rendered
from engine.legal.assess import Assessment, Finding
from engine.legal.data import LegalData, Penalty
from engine.legal.facts import Facts
from engine.workspace import builtin_root

__all__ = [
    "DISCLAIMER",
    "KIND",
    "assessment_context",
    "render_assessment",
    "render_assessment_markdown",
]

KIND = "assessment_report"
# The built-in zh-CN templates' words; a workspace template may word it differently.
DISCLAIMER = "本报告仅列明事实与法定标准，不构成法律意见。"
_FLAGS = (
    "insider",
    "sold_tracks_used_in_crime",
    "knew_buyer_criminal",
    "prior_penalty_within_2y",
    "refused_rectification_order",
)


def _amount(value: Decimal | None) -> str | None:
    """A sum of money for people: thousands separated, fen shown only when there are any."""
    if value is None:
        return None
    return f"{value:,}" if value == int(value) else f"{value:,.2f}"


def _explain(lines: list[str]) -> list[dict[str, Any]]:
    """Explanation lines; a line the assessment indents is a detail of the line above it."""
    return [{"text": line.strip(), "detail": line.startswith(" ")} for line in lines]


def _facts_block(facts: Facts, legal: LegalData) -> dict[str, Any]:
    """The facts assessed: codes and figures as recorded, labels from the legal data."""
    criminal = legal.criminal
    records = [
        {
            "category": category,
            "label": criminal.category_labels[category],
            "group": group.id,
            "group_label": group.label,
            "group_label_en": group.label_en,
            "count": getattr(facts.records, category),
        }
        for group in criminal.record_groups
        for category in group.categories
        if getattr(facts.records, category)
    ]
    recorded = facts.recorded_grade
    return {
        "people_affected": facts.people_affected,
        "records": records,
        "economic_loss_rmb": _amount(facts.economic_loss_rmb),
        "illegal_gains_rmb": _amount(facts.illegal_gains_rmb),
        "operator_type": facts.operator_type,
        **{flag: bool(getattr(facts, flag)) for flag in _FLAGS},
        "harms": [{"id": harm, "label": criminal.harm_labels[harm]} for harm in facts.harms],
        "recorded_grade": recorded,
        "recorded_grade_label": None if recorded is None else legal.grade_label(recorded),
        "recorded_grade_label_en": None if recorded is None else _grade_label_en(legal, recorded),
        "recorded_grade_reason": facts.recorded_grade_reason,
    }


def _grade_label_en(legal: LegalData, grade: str) -> str:
    return next(g.label_en for g in legal.grading.grades if g.id == grade)


def _citation(penalty: Penalty) -> dict[str, Any]:
    # Under a finding the article number is enough; its notes (numbering, version) stand in the
    # penalty section.
    return {"id": penalty.id, "source": penalty.source, "article": penalty.article.split("（")[0]}


def _finding_block(finding: Finding, legal: LegalData) -> dict[str, Any]:
    """One finding with its arithmetic, the items it met and what the data says follows from it."""
    item_labels: dict[int, str] = {}
    sentence = unit_crime = None
    duties: list[str] = []
    for rule in (legal.spc_2017, legal.spc_2019):
        if finding.rule == rule.id:
            item_labels = rule.item_labels
            outcome = next(o for o in rule.outcomes if o.id == finding.outcome)
            sentence = outcome.sentence
            unit_crime = rule.unit_crime if outcome.sentence else None
    if finding.rule == legal.initial_report.id:
        duties = list(legal.initial_report.consequences)
    return {
        "rule": finding.rule,
        "title": finding.title,
        "outcome": finding.outcome,
        "outcome_label": finding.outcome_label,
        "score": None if finding.score is None else f"{finding.score:.4g}",
        "items": [{"number": n, "label": item_labels.get(n, "")} for n in finding.items],
        "explain": _explain(finding.explain_zh),
        "explain_en": _explain(finding.explain),
        "basis": finding.basis,
        "source": finding.source,
        "verified": finding.verified,
        "sentence": sentence,
        "unit_crime": unit_crime,
        "duties": duties,
        "penalties": [_citation(p) for p in legal.penalties_for(finding.rule)],
    }


def assessment_context(
    assessment: Assessment,
    facts: Facts,
    legal: LegalData,
    *,
    incident_id: str | None,
    title: str | None,
    generated_at: datetime | None = None,
    drill: bool = False,
    firm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``assessment_report`` context, as ``templates/contexts.yaml`` declares it.

    ``incident_id`` None is a what-if (``breach assess --facts``): the report then names no incident.
    ``generated_at`` defaults to now; ``firm`` is the workspace's ``[firm]`` table when it is complete.
    """
    return {
        "drill": drill,
        # An assessment is never a draft: it is computed whole from the facts recorded so far.
        "draft": False,
        "generated_at": generated_at or datetime.now(UTC),
        "firm": firm,
        "incident": None if incident_id is None else {"id": incident_id, "title": title or None},
        "facts": _facts_block(facts, legal),
        "assessment": {
            "grade": assessment.grade,
            "grade_label": assessment.grade_label,
            "grade_label_en": _grade_label_en(legal, assessment.grade),
            "findings": [_finding_block(f, legal) for f in assessment.findings],
        },
        "penalties": [
            {
                "id": p.id,
                "source": p.source,
                "article": p.article,
                "verified": p.verified,
                "tiers": [{"when": t.when, "measures": t.measures} for t in p.tiers],
            }
            for p in legal.penalties.penalties
        ],
        "unverified_rules": [r.id for r in legal.rules() if not r.verified],
        "legal_files": sorted(legal.files),
    }


def render_assessment(
    fmt: str,
    assessment: Assessment,
    facts: Facts,
    legal: LegalData,
    *,
    incident_id: str | None,
    title: str | None,
    generated_at: datetime | None = None,
    drill: bool = False,
    firm: dict[str, Any] | None = None,
    search_paths: list[Path] | None = None,
    locale: str | None = None,
) -> Rendered:
    """Render the assessment report as ``fmt`` (``md``, ``html`` or ``pdf``).

    ``search_paths`` are the template folders, workspace first (``Workspace.search_path("templates")``);
    by default the built-in templates only. ``locale`` defaults to zh-CN, the legal team's language.

    :raises BadInput: for a format the kind lacks, or a template that fails to render.
    """
    renderer = DocumentRenderer(search_paths or [builtin_root() / "templates"])
    context = assessment_context(
        assessment,
        facts,
        legal,
        incident_id=incident_id,
        title=title,
        generated_at=generated_at,
        drill=drill,
        firm=firm,
    )
    return renderer.render(KIND, fmt, context, locale=locale)


def render_assessment_markdown(
    assessment: Assessment,
    facts: Facts,
    legal: LegalData,
    *,
    incident_id: str | None,
    title: str | None,
    search_paths: list[Path] | None = None,
) -> str:
    """Render the assessment as a zh-CN Markdown report: facts, grade, findings, penalties.

    ``incident_id`` and ``title`` head the report when given; the disclaimer opens and closes it.
    """
    rendered = render_assessment(
        "md", assessment, facts, legal, incident_id=incident_id, title=title, search_paths=search_paths
    )
    return rendered.content.decode("utf-8")
