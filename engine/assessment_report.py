"""The legal-exposure assessment as a zh-CN Markdown report for the legal team.

The report states facts and the figures of the law; it draws no conclusion beyond the arithmetic
and says so. Wording is written here; every figure, label and penalty comes from the assessment
and the legal data. Plain string assembly for now: a Jinja template can replace it later without
changing the signature.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.assess import Assessment, Finding
from engine.facts import Facts
from engine.legal import LegalData

__all__ = ["DISCLAIMER", "render_assessment_markdown"]

DISCLAIMER = "本报告仅列明事实与法定标准，不构成法律意见。"

_FACT_LABELS = {
    "people_affected": "个人信息泄露涉及人数",
    "economic_loss_rmb": "直接经济损失（元）",
    "illegal_gains_rmb": "违法所得（元）",
    "insider": "由履职或提供服务中获取信息的人员所为",
    "operator_type": "运营者类型",
    "prior_penalty_within_2y": "二年内因侵犯个人信息受过处罚",
    "refused_rectification_order": "经监管部门责令改正而拒不改正",
    "sold_tracks_used_in_crime": "出售或提供的行踪轨迹信息被用于犯罪",
    "knew_buyer_criminal": "明知对方利用个人信息犯罪仍出售或提供",
    "harms": "已造成的后果",
    "recorded_grade": "人工记录的事件等级",
    "recorded_grade_reason": "人工记录等级的理由",
}
_OPERATOR_LABELS = {
    "cii": "涉及关键信息基础设施",
    "state_organ": "中央和国家机关及其直属单位",
    "other": "其他网络运营者",
}
_NUMERALS = "一二三四五六七八九十"


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell: operator input may hold pipes or line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _line(text: Any) -> str:
    """Operator text on one Markdown line, so it cannot open a heading or a list of its own."""
    return " ".join(str(text).split())


def _amount(value: int | Decimal) -> str:
    return f"{value:,}" if value == int(value) else f"{value:,.2f}"


def _fact_rows(facts: Facts, legal: LegalData) -> list[str]:
    rows = ["| 事实 | 取值 |", "|---|---|"]
    people = facts.people_affected
    rows.append(f"| {_FACT_LABELS['people_affected']} | {'未记录' if people is None else f'{people:,}'} |")
    labels = legal.criminal.category_labels
    for group in legal.criminal.record_groups:
        for category in group.categories:
            count = getattr(facts.records, category)
            if count:
                rows.append(f"| 泄露记录：{labels[category]}（{group.id}类） | {count:,} 条 |")
    for key in ("economic_loss_rmb", "illegal_gains_rmb"):
        value = getattr(facts, key)
        rows.append(f"| {_FACT_LABELS[key]} | {'未记录' if value is None else _amount(value)} |")
    rows.append(f"| {_FACT_LABELS['operator_type']} | {_OPERATOR_LABELS[facts.operator_type]} |")
    for key in ("insider", "sold_tracks_used_in_crime", "knew_buyer_criminal",
                "prior_penalty_within_2y", "refused_rectification_order"):
        rows.append(f"| {_FACT_LABELS[key]} | {'是' if getattr(facts, key) else '否'} |")
    harms = "、".join(legal.criminal.harm_labels[h] for h in facts.harms) or "未记录"
    rows.append(f"| {_FACT_LABELS['harms']} | {harms} |")
    if facts.recorded_grade is not None:
        rows.append(f"| {_FACT_LABELS['recorded_grade']} | {legal.grade_label(facts.recorded_grade)} |")
        rows.append(f"| {_FACT_LABELS['recorded_grade_reason']} | {_cell(facts.recorded_grade_reason)} |")
    if not any(facts.records.model_dump().values()):
        rows.append("| 泄露记录 | 未记录 |")
    return rows


def _item_lines(finding: Finding, legal: LegalData) -> list[str]:
    """The numbered items a criminal finding met, with what each item covers."""
    labels: dict[int, str] = {}
    if finding.rule == legal.spc_2017.id:
        labels = legal.spc_2017.item_labels
    elif finding.rule == legal.spc_2019.id:
        labels = legal.spc_2019.item_labels
    return [f"  - 第{n}项：{labels.get(n, '')}" for n in finding.items]


def _sentence_lines(finding: Finding, legal: LegalData) -> list[str]:
    """The sentence range and unit-crime rule of a criminal outcome, from the data."""
    for rule in (legal.spc_2017, legal.spc_2019):
        if finding.rule == rule.id:
            outcome = next(o for o in rule.outcomes if o.id == finding.outcome)
            lines = [f"- 法定刑：{outcome.sentence}"] if outcome.sentence else []
            if outcome.sentence:
                lines.append(f"- 单位犯罪：{rule.unit_crime}")
            return lines
    if finding.rule == legal.initial_report.id:
        return [f"- 报告责任：{text}" for text in legal.initial_report.consequences]
    return []


def _finding_section(number: int, finding: Finding, legal: LegalData) -> list[str]:
    verified = "已核实" if finding.verified else "未核实（数字仅见于二手资料，请法务核对官方文本）"
    lines = [
        f"### {number}. {finding.title}（{finding.rule}）",
        "",
        f"- 结论：**{finding.outcome_label}**（`{finding.outcome}`）",
    ]
    if finding.score is not None:
        lines.append(f"- 按比例折算合计（按适用于本案的数量标准）：{finding.score:.4g}")
    if finding.items:
        lines.append("- 符合的情形：")
        lines.extend(_item_lines(finding, legal))
    lines.append("- 计算过程：")
    # Lines indented in the assessment are details of the line above: nest them one level deeper.
    lines.extend(f"{'    ' if text.startswith(' ') else '  '}- {_line(text)}" for text in finding.explain_zh)
    lines.append(f"- 依据：{finding.source} {finding.basis}")
    lines.append(f"- 核实状态：{verified}")
    lines.extend(_sentence_lines(finding, legal))
    penalties = legal.penalties_for(finding.rule)
    if penalties:
        # Cite the article number only; its notes (numbering, version) stand in the penalty section.
        cited = "；".join(f"{p.source}{p.article.split('（')[0]}（{p.id}）" for p in penalties)
        lines.append(f"- 相关行政处罚：{cited}，详见“处罚规定”")
    lines.append("")
    return lines


def _penalty_section(legal: LegalData) -> list[str]:
    lines: list[str] = []
    for penalty in legal.penalties.penalties:
        flag = "" if penalty.verified else "（未核实）"
        lines += [f"### {penalty.id}：{penalty.source} {penalty.article}{flag}", ""]
        lines += [f"- {tier.when}：{tier.measures}" for tier in penalty.tiers]
        lines.append("")
    return lines


def render_assessment_markdown(assessment: Assessment, facts: Facts, legal: LegalData, *,
                               incident_id: str | None, title: str | None) -> str:
    """Render the assessment as a zh-CN Markdown report: facts, grade, findings, penalties.

    ``incident_id`` and ``title`` head the report when given; the disclaimer opens and closes it.
    """
    heading = "法律风险评估报告"
    subject = " ".join(_line(part) for part in (incident_id, title) if part)
    lines = [f"# {heading}" + (f"：{subject}" if subject else ""), "", f"> {DISCLAIMER}", ""]
    sections: list[tuple[str, list[str]]] = [
        ("所依据的事实", [*_fact_rows(facts, legal), ""]),
        ("事件分级", [
            f"本事件分级结果为 **{assessment.grade_label}**（`{assessment.grade}`），"
            "取网络安全事件分级、工业和信息化部预案分级及人工记录等级中的最高者。",
            "",
        ]),
        ("逐项评估", [
            line
            for number, finding in enumerate(assessment.findings, start=1)
            for line in _finding_section(number, finding, legal)
        ]),
        ("处罚规定", _penalty_section(legal)),
    ]
    for index, (name, body) in enumerate(sections):
        lines += [f"## {_NUMERALS[index]}、{name}", "", *body]
    unverified = [r.id for r in legal.rules() if not r.verified]
    lines += [f"## {_NUMERALS[len(sections)]}、说明", ""]
    lines.append("- 各项标准中的“以上”均包含本数；按比例折算合计达到 1 即视为达到标准。")
    if unverified:
        lines.append(f"- 以下条目的数字尚未与官方文本核对：{'、'.join(unverified)}。")
    files = "、".join(sorted(legal.files))
    lines.append(f"- 法律数据文件：{files}（工作区 config/legal/ 下的同名文件优先）。")
    lines += [f"- {DISCLAIMER}", ""]
    return "\n".join(lines)
