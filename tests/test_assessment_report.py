"""The assessment report through the document templates: Markdown, HTML and PDF, workspace wording,
the declared context, hostile operator text, and ``breach assess --report`` by file extension."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, Cli, assert_one_line_error
from markdown_it import MarkdownIt

from engine.documents.render import KINDS
from engine.documents.templating import check_templates, context_problems
from engine.errors import BadInput
from engine.legal.assess import assess
from engine.legal.data import LegalData, builtin_legal, load_legal
from engine.legal.facts import load_facts_file, merge_facts
from engine.legal.report import (
    DISCLAIMER,
    assessment_context,
    render_assessment,
    render_assessment_markdown,
)
from engine.workspace import Workspace, builtin_root

LEGAL = builtin_legal()
BUILTIN = builtin_root() / "templates"
FACTS = REPO / "tests" / "data" / "facts"
DEMO = load_facts_file(FACTS / "demo.yaml")
AT = datetime(2026, 11, 20, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
HOSTILE = "<script>alert(1)</script> {{ 7*7 }} a | b\n# c\r\n[x](javascript:alert(1)) \\<b>"
# One million people: 较大 under the CAC guide, and 一般 under the MIIT plan.
RELATIVELY_MAJOR = {"people_affected": 1_000_000, "records": {"property": 8000}, "insider": True}


def _report(fmt: str = "md", facts: dict | None = None, *, legal: LegalData = LEGAL, **kwargs: Any) -> Any:
    """The report of ``facts`` (default: the demo) as text, or as bytes for a PDF."""
    parsed = merge_facts({}, DEMO if facts is None else facts)
    options = {"incident_id": "INC-2026-0007", "title": "客户账套泄露", "generated_at": AT, **kwargs}
    rendered = render_assessment(fmt, assess(parsed, legal), parsed, legal, **options)
    return rendered.content.decode("utf-8") if fmt != "pdf" else rendered.content


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    """The text pdftotext extracts from ``data``."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed, so PDF text cannot be checked")
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True)
    return out.stdout.decode("utf-8")


def _squash(text: str) -> str:
    """Text without whitespace: PDF extraction breaks lines wherever the layout did."""
    return re.sub(r"\s+", "", text)


def _legal_with(tmp_path: Path, name: str, edit: Callable[[str], str]) -> list[Path]:
    """Config folders whose legal/<name> is the built-in file changed by ``edit``."""
    folder = tmp_path / "config" / "legal"
    folder.mkdir(parents=True, exist_ok=True)
    text = (builtin_root() / "config" / "legal" / name).read_text(encoding="utf-8")
    (folder / name).write_text(edit(text), encoding="utf-8")
    return Workspace(home=tmp_path).search_path("config")


class TestKind:
    def test_registered_with_md_html_pdf(self):
        """The kind renders to Markdown, HTML and PDF, and is named by its incident."""
        assert KINDS["assessment_report"].formats == ("md", "html", "pdf")
        parsed = merge_facts({}, DEMO)
        rendered = render_assessment(
            "html", assess(parsed, LEGAL), parsed, LEGAL, incident_id="INC-2026-0007", title=None
        )
        assert rendered.filename == "assessment_report_INC-2026-0007.html"
        assert rendered.template == "zh-CN/assessment_report.html.j2"

    def test_other_formats_refused(self):
        """A format the kind lacks is refused with the formats it has."""
        with pytest.raises(BadInput, match="supports md, html, pdf"):
            _report("docx")

    @pytest.mark.parametrize("incident_id", ["INC-2026-0007", None])
    @pytest.mark.parametrize("drill", [True, False])
    def test_context_matches_contexts_file(self, incident_id, drill):
        """The context built for an incident, a what-if and a drill is exactly what contexts.yaml declares."""
        facts = {
            **RELATIVELY_MAJOR,
            "recorded_grade": "major",
            "recorded_grade_reason": "x",
            "harms": ["major_economic_loss"],
            "illegal_gains_rmb": "12.5",
            "economic_loss_rmb": 3,
        }
        parsed = merge_facts({}, facts)
        context = assessment_context(
            assess(parsed, LEGAL),
            parsed,
            LEGAL,
            incident_id=incident_id,
            title="t",
            generated_at=AT,
            drill=drill,
        )
        assert context_problems("assessment_report", context) == []

    def test_templates_check_passes(self, tmp_path):
        """`breach templates check` finds nothing wrong in the built-in templates, this kind's included."""
        assert check_templates([BUILTIN]) == []
        breach = str(Path(sys.executable).with_name("breach"))
        env = {k: v for k, v in os.environ.items() if k != "BREACH_HOME"}
        result = subprocess.run(
            [breach, "templates", "check"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_check_flags_undeclared_variable(self, tmp_path):
        """A workspace report template using a name the kind does not declare is flagged with its line."""
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        (folder / "assessment_report.md.j2").write_text("# x\n{{ facts.secret }}\n", encoding="utf-8")
        problems = check_templates([tmp_path / "templates", BUILTIN])
        assert [(p.file.name, p.line) for p in problems] == [("assessment_report.md.j2", 2)]
        assert "facts.secret" in problems[0].message


class TestMarkdown:
    def test_every_finding_with_its_arithmetic(self):
        """Each finding appears with its outcome, every line of its arithmetic, basis and source."""
        parsed = merge_facts({}, DEMO)
        result = assess(parsed, LEGAL)
        text = _report()
        assert text.startswith("# 法律风险评估报告：INC-2026-0007 客户账套泄露\n")
        for number, finding in enumerate(result.findings, start=1):
            assert f"### {number}. {finding.title}（{finding.rule}）" in text
            assert f"**{finding.outcome_label}**（`{finding.outcome}`）" in text
            assert f"- 依据：{finding.source} {finding.basis}" in text
            for line in finding.explain_zh:
                assert f"- {' '.join(line.split())}\n" in text, line
        assert "    - A类：8,000 ≥ 50，达到" in text  # details nest under their level
        assert "- 法定刑：三年以上七年以下有期徒刑，并处罚金" in text
        assert "  - 第8项：" in text

    def test_pro_rata_arithmetic(self):
        """The pro-rata sum is written out in full, with the score it gives."""
        text = _report(facts={"records": {"whereabouts": 30, "health": 300}})
        assert "按比例折算 30/50 + 300/500 = 1.2 ≥ 1，达到" in text
        assert "- 按比例折算合计（按适用于本案的数量标准）：1.2" in text

    def test_disclaimer_opens_and_closes(self):
        """The report says it is facts, not legal advice, at its start and at its end."""
        text = _report()
        assert text.count(DISCLAIMER) == 2
        assert text.split("\n")[2] == f"> {DISCLAIMER}"
        assert text.rstrip().endswith(DISCLAIMER)

    def test_penalties_per_law(self):
        """Each penalty article of the legal data is set out with every tier, and cited per finding."""
        text = _report()
        for penalty in LEGAL.penalties.penalties:
            flag = "" if penalty.verified else "（未核实）"
            assert f"### {penalty.id}：{penalty.source} {penalty.article}{flag}" in text
            for tier in penalty.tiers:
                assert f"- {tier.when}：{tier.measures}" in text
        for heading in (
            "中华人民共和国个人信息保护法 第六十六条",
            "中华人民共和国数据安全法 第四十五条",
            "中华人民共和国网络安全法 第六十四条",
            "中华人民共和国网络安全法 第六十八条",
        ):
            assert heading in text
        cited = "中华人民共和国个人信息保护法第六十六条（CN-PIPL-66）；中华人民共和国数据安全法第四十五条"
        assert f"- 相关行政处罚：{cited}" in text

    def test_unverified_figures_marked(self, tmp_path):
        """Unverified penalties and findings are marked, and listed in the notes."""
        text = _report()
        assert "第六十四条（2017年文本的条号；修正文本中的条号未核实）（未核实）" in text
        assert "以下条目的数字尚未与官方文本核对：CN-CSL-64。" in text

        def unverify(text: str) -> str:
            head, rule, rest = text.partition("  id: CN-SPC-2017-5\n")
            return head + rule + rest.replace("verified: true", "verified: false", 1)

        dirs = _legal_with(tmp_path, "criminal.yaml", unverify)
        text = _report(legal=load_legal(dirs))
        section = text.split("（CN-SPC-2017-5）")[1].split("### ")[0]
        assert "- 核实状态：未核实（数字仅见于二手资料，请法务核对官方文本）" in section
        assert "CN-SPC-2017-5、" in text.split("以下条目的数字尚未与官方文本核对：")[1]

    def test_figures_and_labels_come_from_the_legal_data(self, tmp_path):
        """A workspace's legal data changes the labels, figures and penalties the report prints."""
        dirs = _legal_with(
            tmp_path,
            "penalties.yaml",
            lambda t: t.replace("责令改正，给予警告，没收违法所得", "测试用的处罚措施", 1),
        )
        _legal_with(
            tmp_path, "criminal.yaml", lambda t: t.replace("property: 财产信息", "property: 测试类别")
        )
        text = _report(legal=load_legal(dirs))
        assert "- 违法处理个人信息或者未履行保护义务：测试用的处罚措施" in text
        assert "| 泄露记录：测试类别（A类） | 8,000 条 |" in text

    def test_what_if_names_no_incident(self):
        """Without an incident the heading stands alone and unrecorded facts say so."""
        text = _report(facts={}, incident_id=None, title=None)
        assert text.startswith("# 法律风险评估报告\n")
        assert "| 泄露记录 | 未记录 |" in text and "| 个人信息泄露涉及人数 | 未记录 |" in text

    def test_drill_is_marked(self):
        """A drill's report says so under the disclaimer; a real one does not."""
        assert "**演练 DRILL**" in _report(drill=True)
        assert "演练" not in _report(drill=False)

    def test_legacy_function_keeps_its_signature(self, tmp_path):
        """render_assessment_markdown(...) still returns the zh-CN Markdown string."""
        parsed = merge_facts({}, DEMO)
        text = render_assessment_markdown(
            assess(parsed, LEGAL), parsed, LEGAL, incident_id="INC-1", title="t"
        )
        assert text.startswith("# 法律风险评估报告：INC-1 t\n") and DISCLAIMER in text

    def test_english(self):
        """The English report carries the same findings, arithmetic in English, and its disclaimer."""
        text = _report(facts={"records": {"whereabouts": 30, "health": 300}}, locale="en")
        assert text.startswith("# Legal-exposure assessment: INC-2026-0007")
        assert "pro-rata 30/50 + 300/500 = 1.2 ≥ 1, met" in text
        assert text.count("It is not legal advice.") == 2
        for rule in ("CN-CAC-GRADE", "CN-MIIT-GRADE", "CN-CAC-RPT-4", "CN-SPC-2017-5", "CN-SPC-2019-4"):
            assert f". {rule}: " in text
        assert "CN-CSL-64: 中华人民共和国网络安全法" in text and "(NOT VERIFIED)" in text


class TestHostileText:
    def _facts(self) -> dict[str, Any]:
        return {"people_affected": 5, "recorded_grade": "major", "recorded_grade_reason": HOSTILE}

    def test_markdown_shows_it_literally(self):
        """In Markdown the reason stays on one table row, and a Markdown viewer shows it as text."""
        text = _report(facts=self._facts(), title="<img src=x onerror=alert(1)> | t\n# h")
        assert "49" not in text
        row = next(line for line in text.splitlines() if line.startswith("| 人工记录等级的理由 |"))
        assert row == (
            "| 人工记录等级的理由 | \\<script>alert(1)\\</script> {{ 7*7 }} a \\| b # c "
            "\\[x](javascript:alert(1)) \\\\\\<b> |"
        )
        assert text.startswith("# 法律风险评估报告：INC-2026-0007 \\<img src=x onerror=alert(1)> | t # h\n")
        html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
        assert "<script>" not in html and "<img" not in html and "<b>" not in html
        assert 'href="javascript' not in html
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} a | b # c [x](javascript:alert(1)) \\&lt;b&gt;"
            in html
        )
        # The table keeps its two columns: the pipe did not open a third.
        assert re.search(r"<td>人工记录等级的理由</td>\s*<td>&lt;script&gt;", html)

    def test_comparison_signs_stay_readable(self):
        """Escaping leaves the arithmetic's own "<" alone: "49 < 50" is no tag."""
        text = _report(facts={"records": {"property": 49}})
        assert "A类：49 < 50，未达到" in text

    def test_html_escapes_it(self):
        """In HTML every character of the reason is escaped; nothing is evaluated."""
        text = _report("html", facts=self._facts(), title="<img src=x onerror=alert(1)>")
        assert "<script>" not in text and "<img" not in text and "49" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} a | b" in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text

    def test_pdf_prints_it_as_text(self, tmp_path):
        """The PDF prints the reason as the operator typed it."""
        text = _pdf_text(_report("pdf", facts=self._facts()), tmp_path)
        assert "<script>alert(1)</script>" in text and "{{ 7*7 }}" in text


class TestPdf:
    def test_labels_and_disclaimer(self, tmp_path):
        """pdftotext finds the grade labels (较大, and 一般 under MIIT), penalties and the disclaimer."""
        data = _report("pdf", facts=RELATIVELY_MAJOR, drill=True)
        assert data.startswith(b"%PDF")
        text = _squash(_pdf_text(data, tmp_path))
        assert "本事件分级结果为较大（relatively_major）" in text
        assert "结论：一般（general）" in text
        assert _squash(DISCLAIMER) in text and text.count(_squash(DISCLAIMER)) == 2
        assert "中华人民共和国个人信息保护法第六十六条" in text and "演练" in text

    def test_html_is_the_formal_layout(self):
        """The HTML extends the formal layout, which names the CJK font the PDF needs."""
        text = _report("html", facts=RELATIVELY_MAJOR)
        assert "Noto Sans CJK SC" in text and '<h1 class="title">法律风险评估报告</h1>' in text
        assert "<b>较大</b>（relatively_major）" in text


class TestWorkspaceTemplates:
    def test_workspace_template_shadows_the_builtin(self, tmp_path):
        """A legal team's own wording in the workspace replaces the built-in template, figures intact."""
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        (folder / "assessment_report.md.j2").write_text(
            "律所版：{{ assessment.grade_label }}，{{ assessment.findings|length }} 项\n", encoding="utf-8"
        )
        paths = [tmp_path / "templates", BUILTIN]
        parsed = merge_facts({}, DEMO)
        text = render_assessment_markdown(
            assess(parsed, LEGAL), parsed, LEGAL, incident_id="INC-1", title=None, search_paths=paths
        )
        assert text == "律所版：一般，5 项\n"
        # The HTML, not overridden, still comes from the built-in template.
        html = _report("html", search_paths=paths)
        assert '<h1 class="title">法律风险评估报告</h1>' in html


@pytest.fixture
def ws(tmp_path: Path) -> Cli:
    """An initialised SQLite workspace and a runner for the installed CLI."""
    home = tmp_path / "ws"
    home.mkdir()
    runner = Cli(home, None)
    runner("init", str(home), check=True)
    return runner


class TestCommand:
    def test_format_follows_extension(self, ws):
        """--report FILE.md/.html/.pdf writes that format, owner-only; the what-if form writes one too."""
        out = ws.home / "reports"
        for name, magic in (
            ("a.md", "# 法律风险评估报告\n".encode()),
            ("a.html", b"<!DOCTYPE html>"),
            ("a.PDF", b"%PDF"),
        ):
            ws("assess", "--facts", str(FACTS / "demo.yaml"), "--report", str(out / name), check=True)
            data = (out / name).read_bytes()
            assert data.startswith(magic), name
            assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600

    def test_unknown_extension(self, ws):
        """Another extension is one line of error, exit 2, and no file."""
        target = ws.home / "a.txt"
        result = ws("assess", "--facts", str(FACTS / "demo.yaml"), "--report", str(target))
        assert_one_line_error(result, "a.txt", ".md, .html or .pdf")
        assert not target.exists()

    def test_incident_report_uses_workspace_templates_and_drill(self, ws):
        """An incident's report names it, is marked in a drill, and takes the workspace's wording."""
        incident_id = ws(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "账套 | 泄露",
            "--discovered-at",
            "2026-11-20 09:00",
            "--facts",
            str(FACTS / "demo.yaml"),
            "--drill",
            check=True,
        ).stdout.strip()
        ws("assess", incident_id, "--report", str(ws.home / "r.md"), check=True)
        text = (ws.home / "r.md").read_text(encoding="utf-8")
        assert text.startswith(f"# 法律风险评估报告：{incident_id} 账套 | 泄露\n")
        assert "**演练 DRILL**" in text and text.count(DISCLAIMER) == 2
        folder = ws.home / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        (folder / "assessment_report.md.j2").write_text(
            "{{ incident.id }}：{{ assessment.grade_label }}\n", encoding="utf-8"
        )
        ws("assess", incident_id, "--report", str(ws.home / "r.md"), check=True)
        assert (ws.home / "r.md").read_text(encoding="utf-8") == f"{incident_id}：一般\n"
