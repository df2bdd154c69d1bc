"""Rendered documents, opened the way their readers open them: Word, PDF, email, SMS, files on disk."""

from __future__ import annotations

import copy
import email
import email.policy
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from docx import Document
from docxtpl import DocxTemplate
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from engine.documents.render import (
    KINDS,
    DocumentRenderer,
    build_email,
    safe_filename,
    sms_segments,
    write_private,
)
from engine.documents.templating import context_problems, get_environment
from engine.errors import BadInput
from engine.workspace import builtin_root

BUILTIN = builtin_root() / "templates"
DATA = Path(__file__).parent / "data" / "documents" / "context.json"
HOSTILE = "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀\x00\x1b[2J"
LONG = "长" * 5000


def _typed(value):
    """JSON to the types the context builder passes: aware datetimes and dates."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d", value):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        return date.fromisoformat(value)
    return value


SAMPLE = _typed(json.loads(DATA.read_text(encoding="utf-8")))


def context(kind: str, *, drill: bool = True) -> dict:
    """A full context for ``kind`` from the sample scenario (a deep copy, free to change)."""
    built = {**copy.deepcopy(SAMPLE["common"]), **copy.deepcopy(SAMPLE[kind]), "drill": drill}
    if kind != "customer_notice":
        built["report"] = copy.deepcopy(SAMPLE["report"])
    return built


def hostile(kind: str) -> dict:
    """A context whose names and facts try markup, template syntax, paths, emoji and great length."""
    built = context(kind)
    built["firm"]["name"] = HOSTILE
    built["incident"]["cause"] = HOSTILE + LONG
    built["incident"]["measures"] = [HOSTILE]
    if kind == "customer_notice":
        built["person"]["name"] = HOSTILE
    return built


@pytest.fixture(scope="module")
def renderer() -> DocumentRenderer:
    return DocumentRenderer([BUILTIN])


def text_of(renderer: DocumentRenderer, kind: str, fmt: str, *, drill: bool = True) -> str:
    """The rendered sample document of ``kind`` as text."""
    return renderer.render(kind, fmt, context(kind, drill=drill)).content.decode("utf-8")


def docx_text(content: bytes) -> str:
    """Every paragraph of a Word file, body, tables and header, as python-docx reads them."""
    document = Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    parts += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    parts += [p.text for section in document.sections for p in section.header.paragraphs]
    return "\n".join(parts)


def pdf_text(content: bytes, tmp_path: Path) -> str:
    """The text pdftotext extracts, as a reader's tools would see it."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed, so PDF text cannot be checked")
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True
    ).stdout.decode("utf-8")


class TestRegistry:
    def test_formats_per_kind(self, renderer):
        """Notices go by md/html/eml(/sms); formal documents by html, pdf and docx."""
        assert renderer.formats("customer_notice") == ["md", "html", "eml", "sms"]
        assert renderer.formats("client_notice") == ["md", "html", "eml"]
        assert renderer.formats("regulator_initial_report") == ["html", "pdf", "docx"]

    def test_unknown_kind_and_format_are_bad_input(self, renderer):
        """An unknown kind or a format the kind lacks is refused with what is allowed."""
        with pytest.raises(BadInput, match="known kinds"):
            renderer.render("press_release", "md", {})
        with pytest.raises(BadInput, match="supports md, html, eml, sms"):
            renderer.render("customer_notice", "docx", context("customer_notice"))

    @pytest.mark.parametrize("locale", ["zh-CN", "en"])
    def test_every_template_exists_in_both_locales(self, locale):
        """Each kind has a template for each of its formats in zh-CN and en (or in the locales it names)."""
        names = {
            "md": ["md.j2"],
            "html": ["html.j2"],
            "pdf": ["html.j2"],
            "sms": ["sms.j2"],
            "eml": ["subject.j2", "md.j2", "html.j2"],
            "docx": ["docx"],
        }
        missing = [
            f"{kind}.{suffix}"
            for kind, spec in KINDS.items()
            if spec.locales is None or locale in spec.locales
            for fmt in spec.formats
            for suffix in names[fmt]
            if not (BUILTIN / locale / f"{kind}.{suffix}").is_file()
        ]
        assert missing == []

    def test_rendered_carries_hashes_and_a_safe_name(self, renderer):
        """Rendered has the content hash, the template's hash and a readable file name."""
        rendered = renderer.render("client_notice", "md", context("client_notice"))
        assert rendered.sha256 == hashlib.sha256(rendered.content).hexdigest()
        template = BUILTIN / "zh-CN" / "client_notice.md.j2"
        assert rendered.template == "zh-CN/client_notice.md.j2"
        assert rendered.template_sha256 == hashlib.sha256(template.read_bytes()).hexdigest()
        assert rendered.filename == "DRILL_client_notice_北京示例科技有限公司.md"

    def test_template_hash_covers_layouts_and_partials(self, tmp_path):
        """Changing a layout a report extends changes the report's recorded template hash."""
        kind, folder = "internal_bulletin", tmp_path / "templates" / "zh-CN"
        before = DocumentRenderer([tmp_path / "templates", BUILTIN]).render(kind, "html", context(kind))
        folder.mkdir(parents=True)
        layout = (BUILTIN / "zh-CN" / "_formal.html.j2").read_text(encoding="utf-8")
        (folder / "_formal.html.j2").write_text(layout + "\n", encoding="utf-8")
        after = DocumentRenderer([tmp_path / "templates", BUILTIN]).render(kind, "html", context(kind))
        assert after.template == before.template == "zh-CN/internal_bulletin.html.j2"
        assert after.template_sha256 != before.template_sha256


class TestContexts:
    @pytest.mark.parametrize("kind", sorted(KINDS))
    def test_sample_contexts_match_the_contexts_file(self, kind):
        """The sample scenario is a valid context for every kind, as the context builder's must be."""
        assert context_problems(kind, context(kind)) == []

    def test_problems_are_named_by_path(self):
        """Missing, null, mistyped, naive and out-of-choice values are each reported by their path."""
        ctx = context("disciplinary_decision")
        del ctx["drill"]
        ctx["generated_at"] = datetime(2026, 1, 1)
        ctx["decision"]["sanction"] = "dismissal"
        ctx["decision"]["rules_broken"] = [3]
        ctx["employee"]["name"] = None
        assert context_problems("disciplinary_decision", ctx) == [
            "drill: missing but required (bool)",
            "generated_at: datetime without a time zone",
            "employee.name: null but required (str)",
            "decision.rules_broken[0]: expected str, got int",
            "decision.sanction: 'dismissal' is not one of warning, demerit, demotion",
        ]


class TestCustomerNotice:
    def test_pipl_items_for_this_person(self, renderer):
        """The notice names this person's categories, times, cause, measures, advice, help and contact."""
        text = text_of(renderer, "customer_notice", "md")
        for expected in (
            "尊敬的张三",
            "银行账号",
            "2026年11月18日 09:40（北京时间，UTC+08:00）",
            "离职员工",
            "向公安机关报案",
            "保存可疑来电",
            "提醒家人和朋友",
            "不予理会",
            "修改受影响的账户密码",
            "免费提供一年",
            "400-800-0000",
            "privacy@example-tax.cn",
            "工作日 9:00–18:00",
            "N-2026-000123",
            "开户银行",
        ):
            assert expected in text, expected
        assert "纳税信息" not in text  # an incident category that is not this person's

    def test_identifiers_only_masked(self, renderer):
        """Only masked identifiers appear."""
        text = renderer.render("customer_notice", "html", context("customer_notice")).content.decode()
        assert "1101********1234" in text and "****5678" in text

    def test_english_person_gets_english(self, renderer):
        """A person whose locale is en gets the English notice without being told twice."""
        ctx = context("customer_notice")
        ctx["person"]["locale"] = "en"
        rendered = renderer.render("customer_notice", "md", ctx)
        assert rendered.template == "en/customer_notice.md.j2"
        assert "Dear 张三" in rendered.content.decode()
        assert "18 November 2026, 09:40 (China Standard Time, UTC+08:00)" in rendered.content.decode()

    @pytest.mark.parametrize("fmt", ["md", "html", "sms"])
    def test_drill_is_marked_and_real_is_not(self, renderer, fmt):
        """A drill notice says 演练 prominently; a real one never does."""
        drill = text_of(renderer, "customer_notice", fmt)
        real = text_of(renderer, "customer_notice", fmt, drill=False)
        assert "演练" in drill[:300] and "演练" not in real

    def test_unknown_cause_is_said_plainly(self, renderer):
        """A cause not known yet is 'still under investigation', not None."""
        ctx = context("customer_notice")
        ctx["incident"]["cause"] = ctx["incident"]["occurred_at"] = None
        text = renderer.render("customer_notice", "md", ctx).content.decode()
        assert "正在调查中" in text and "None" not in text


class TestEmail:
    def parse(self, content: bytes) -> email.message.EmailMessage:
        return email.message_from_bytes(content, policy=email.policy.default)

    def test_headers_and_parts_read_back(self, renderer):
        """To keeps its Chinese display name, Subject decodes, both parts are there."""
        message = self.parse(renderer.render("customer_notice", "eml", context("customer_notice")).content)
        assert message["To"].addresses[0].display_name == "张三"
        assert message["To"].addresses[0].addr_spec == "zhangsan@example.com"
        assert message["From"].addresses[0].display_name == "示例财税咨询有限公司"
        assert message["Subject"] == "【演练】关于您的个人信息可能泄露的告知（示例财税咨询有限公司）"
        assert message["Date"].datetime == SAMPLE["common"]["generated_at"]
        assert re.fullmatch(r"<[0-9a-f]{32}@example-tax\.cn>", message["Message-ID"])
        assert message.get_content_type() == "multipart/alternative"
        assert "尊敬的张三" in message.get_body(("plain",)).get_content()
        assert "<h1>关于您的个人信息可能泄露的告知</h1>" in message.get_body(("html",)).get_content()

    def test_raw_headers_are_ascii_encoded_words(self, renderer):
        """Non-ASCII display names and subject travel as RFC 2047 encoded words."""
        raw = renderer.render("client_notice", "eml", context("client_notice")).content
        headers = raw.split(b"\r\n\r\n", 1)[0]
        assert headers.isascii() and b"=?utf-8?" in headers

    def test_same_notice_same_bytes(self, renderer):
        """Rendering the same notice twice gives identical bytes, so the hash is stable."""
        first = renderer.render("client_notice", "eml", context("client_notice"))
        assert renderer.render("client_notice", "eml", context("client_notice")).sha256 == first.sha256

    def test_missing_address_is_bad_input(self, renderer):
        """A person without an email address cannot get an email notice."""
        ctx = context("customer_notice")
        ctx["person"]["email"] = None
        with pytest.raises(BadInput, match=r"person\.email"):
            renderer.render("customer_notice", "eml", ctx)

    def test_build_email_refuses_bad_addresses_and_naive_dates(self):
        """An address with an injected header, or a date without zone, is refused."""
        args = {
            "sender": ("甲", "a@example.com"),
            "subject": "s",
            "text": "t",
            "html": "<p>t</p>",
            "message_id_domain": "example.com",
        }
        with pytest.raises(BadInput, match="invalid email address"):
            build_email(
                to=("乙", "b@example.com\nBcc: c@example.com"), date=SAMPLE["common"]["generated_at"], **args
            )
        with pytest.raises(BadInput, match="timezone-aware"):
            build_email(to=("乙", "b@example.com"), date=datetime(2026, 1, 1), **args)

    def test_subject_newlines_cannot_inject_headers(self):
        """A subject with line breaks becomes one line."""
        message = build_email(
            sender=("甲", "a@example.com"),
            to=("乙", "b@example.com"),
            subject="hi\r\nBcc: x@example.com",
            text="t",
            html="h",
            message_id_domain="example.com",
            date=SAMPLE["common"]["generated_at"],
        )
        parsed = self.parse(message.as_bytes())
        assert parsed["Bcc"] is None and parsed["Subject"] == "hi Bcc: x@example.com"


class TestSms:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", (0, "GSM-7")),
            ("a" * 160, (1, "GSM-7")),
            ("a" * 161, (2, "GSM-7")),
            ("a" * 306, (2, "GSM-7")),
            ("a" * 307, (3, "GSM-7")),
            ("€" * 80, (1, "GSM-7")),
            ("€" * 81, (2, "GSM-7")),
            ("aa" + "€" * 152, (3, "GSM-7")),  # 306 septets, but a two-septet € never splits
            ("aa" + "😀" * 66, (3, "UCS-2")),  # 134 units, but a surrogate pair never splits
            ("中" * 70, (1, "UCS-2")),
            ("中" * 71, (2, "UCS-2")),
            ("中" * 134, (2, "UCS-2")),
            ("中" * 135, (3, "UCS-2")),
            ("a" * 69 + "中", (1, "UCS-2")),
            ("a" * 159 + "中", (3, "UCS-2")),
            ("😀" * 35, (1, "UCS-2")),
            ("😀" * 36, (2, "UCS-2")),
        ],
    )
    def test_segment_boundaries(self, text, expected):
        """GSM-7 holds 160/153, UCS-2 70/67, two-unit characters never split."""
        assert sms_segments(text) == expected

    def test_chinese_notice_stays_short(self, renderer):
        """The real Chinese SMS fits in two segments and points to the notice and the phone."""
        text = text_of(renderer, "customer_notice", "sms", drill=False)
        assert sms_segments(text) == (2, "UCS-2")
        assert "https://example-tax.cn/n/8Kq2" in text and "400-800-0000" in text and "\n" not in text


class TestFormalDocuments:
    def test_initial_report_items_and_to_follow(self, renderer):
        """The initial report has items (1)–(8), 文号, the date in full, a seal line, 待补报 for unknowns."""
        text = text_of(renderer, "regulator_initial_report", "html")
        for expected in (
            "一、单位名称及涉事系统基本情况",
            "八、其他需要报告的事项",
            "示例财税〔2026〕3号",
            "2026年11月20日",
            "（盖章）",
            "负责人（签字）",
            "8,000人",
        ):
            assert expected in text, expected
        section_three = text.split("三、事态发展趋势")[1].split("四、")[0]
        assert "待补报" in section_three and "None" not in text

    def test_word_document_holds_the_chinese_text(self, renderer):
        """python-docx reads the rendered Word report, drill header and table included."""
        content = renderer.render(
            "regulator_supplementary_report", "docx", context("regulator_supplementary_report")
        ).content
        text = docx_text(content)
        for expected in (
            "网络安全事件补充报告",
            "（第1次补充报告）",
            "已确认系离职员工",
            "数据是否已被转卖",
            "演练 DRILL",
            "示例财税咨询有限公司",
        ):
            assert expected in text, expected

    def test_word_matches_docxtpl(self, renderer):
        """The fast Word path gives the same text as DocxTemplate.render with our environment."""
        ctx = context("internal_bulletin")
        ours = docx_text(renderer.render("internal_bulletin", "docx", ctx).content)
        reference = DocxTemplate(BUILTIN / "zh-CN" / "internal_bulletin.docx")
        env = get_environment([BUILTIN], "zh-CN", docx=True)
        full = {**ctx, "locale": "zh-CN", "timezone": "Asia/Shanghai"}
        reference.render(full, jinja_env=env, autoescape=True)
        buffer = io.BytesIO()
        reference.save(buffer)
        assert ours == docx_text(buffer.getvalue())
        assert "直接责任" in ours and "记过" in ours

    def test_pdf_shows_the_chinese_text(self, renderer, tmp_path):
        """pdftotext finds the Chinese text and the drill mark in the PDF."""
        kind = "regulator_initial_report"
        content = renderer.render(kind, "pdf", context(kind)).content
        text = pdf_text(content, tmp_path)
        assert content.startswith(b"%PDF")
        for expected in ("网络安全事件报告", "示例财税咨询有限公司", "演练", "待补报"):
            assert expected in text, expected

    @pytest.mark.parametrize(
        "kind", ["regulator_summary_report", "remediation_report", "disciplinary_decision"]
    )
    def test_each_formal_kind_in_english(self, renderer, kind):
        """Every formal kind renders in English too, with its drill mark."""
        text = docx_text(renderer.render(kind, "docx", context(kind), locale="en").content)
        assert "DRILL" in text and "示例财税〔2026〕3号" in text

    def test_disciplinary_decision(self, renderer):
        """The decision states the finding, the sanction, the appeal deadline and the issuing body."""
        text = text_of(renderer, "disciplinary_decision", "html")
        for expected in (
            "关于给予孙七记过处分的决定",
            "直接责任",
            "15日内",
            "2026年12月5日",
            "公司管理委员会",
        ):
            assert expected in text, expected
        assert "经济赔偿" not in text

    def test_docx_template_is_read_once(self, tmp_path):
        """After the first document the Word template file is not read again (it can even go away)."""
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        shutil.copy(BUILTIN / "zh-CN" / "remediation_report.docx", folder)
        renderer = DocumentRenderer([tmp_path / "templates", BUILTIN])
        first = renderer.render("remediation_report", "docx", context("remediation_report"))
        (folder / "remediation_report.docx").unlink()
        again = renderer.render("remediation_report", "docx", context("remediation_report"))
        assert again.sha256 == first.sha256


class TestWordTemplates:
    def test_committed_docx_match_their_html_pages(self, monkeypatch):
        """Each built-in .docx is what build_docx_templates.py makes from its HTML page today."""
        monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ among the templates
        script = BUILTIN / "build_docx_templates.py"
        spec = importlib.util.spec_from_file_location("build_docx_templates", script)
        builder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        stale = [
            f"{locale}/{kind}.docx"
            for locale in builder.FONTS
            for kind in builder.KINDS
            if builder.build(locale, kind) != (BUILTIN / locale / f"{kind}.docx").read_bytes()
        ]
        assert stale == [], "run templates/build_docx_templates.py and commit the .docx files"

    def test_injection_in_a_workspace_word_template_names_the_paragraph(self, tmp_path):
        """A payload in paragraph 2 of a workspace .docx is refused with file, part and paragraph."""
        document = Document()
        document.add_paragraph("{{ report.number }}")
        document.add_paragraph("{{ report.__class__.__mro__ }}")
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        document.save(folder / "internal_bulletin.docx")
        renderer = DocumentRenderer([tmp_path / "templates", BUILTIN])
        expected = (
            r"template internal_bulletin\.docx word/document\.xml paragraph 2: "
            r"refused unsafe expression"
        )
        with pytest.raises(BadInput, match=expected):
            renderer.render("internal_bulletin", "docx", context("internal_bulletin"))


class TestHostileData:
    def test_markdown_keeps_data_literal(self, renderer):
        """Markdown prints the data as given (control characters removed), nothing evaluated."""
        text = renderer.render("customer_notice", "md", hostile("customer_notice")).content.decode()
        assert "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀[2J" in text
        assert "49" not in text and "\x00" not in text and "\x1b" not in text and LONG in text

    def test_html_and_email_escape_it(self, renderer):
        """HTML and the email's HTML part escape markup; the plain part keeps it literal."""
        html = renderer.render("customer_notice", "html", hostile("customer_notice")).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{ 7*7 }}" in html and "<script>" not in html
        message = email.message_from_bytes(
            renderer.render("customer_notice", "eml", hostile("customer_notice")).content,
            policy=email.policy.default,
        )
        assert "<script>" not in message.get_body(("html",)).get_content()
        assert "<script>alert(1)</script>" in message.get_body(("plain",)).get_content()
        assert "<script>" in str(message["From"].addresses[0].display_name)

    def test_word_stays_valid_xml_with_literal_text(self, renderer):
        """The Word file parses strictly and shows the hostile text literally."""
        kind = "regulator_initial_report"
        content = renderer.render(kind, "docx", hostile(kind)).content
        with zipfile.ZipFile(io.BytesIO(content)) as package:
            etree.fromstring(package.read("word/document.xml"))
        text = docx_text(content)
        assert "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀" in text and LONG in text

    def test_pdf_shows_it_literally(self, renderer, tmp_path):
        """The PDF shows the markup as text."""
        ctx = context("internal_bulletin")
        ctx["bulletin"]["summary"] = ctx["report"]["issuer"] = HOSTILE
        text = pdf_text(renderer.render("internal_bulletin", "pdf", ctx).content, tmp_path)
        assert "<script>alert(1)</script> & {{ 7*7 }}" in text

    def test_file_name_from_hostile_name_is_safe(self, renderer):
        """A hostile person name still gives a plain file name."""
        name = renderer.render("customer_notice", "md", hostile("customer_notice")).filename
        assert "/" not in name and ".." not in name and "\x00" not in name and name.endswith(".md")


class TestWorkspaceOverride:
    def test_workspace_template_shadows_builtin(self, tmp_path):
        """A workspace template of the same name is used instead of the built-in one."""
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        (folder / "customer_notice.md.j2").write_text("本所定制：{{ person.name }}", encoding="utf-8")
        rendered = DocumentRenderer([tmp_path / "templates", BUILTIN]).render(
            "customer_notice", "md", context("customer_notice")
        )
        assert rendered.content.decode() == "本所定制：张三"
        source = (folder / "customer_notice.md.j2").read_bytes()
        assert rendered.template_sha256 == hashlib.sha256(source).hexdigest()

    def test_workspace_layout_changes_every_formal_document(self, tmp_path):
        """A workspace layout (_formal.html.j2) is picked up by built-in pages that extend it."""
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        (folder / "_formal.html.j2").write_text("定制版式{% block content %}{% endblock %}", encoding="utf-8")
        html = (
            DocumentRenderer([tmp_path / "templates", BUILTIN])
            .render("internal_bulletin", "html", context("internal_bulletin"))
            .content.decode()
        )
        assert html.startswith("定制版式")


class TestFiles:
    @pytest.mark.parametrize("umask", [0o022, 0o077, 0o277, 0o000])
    def test_write_private_modes(self, tmp_path, umask):
        """The file is 0600 and a created folder 0700 whatever the umask."""
        old = os.umask(umask)
        try:
            path = write_private(tmp_path / "out" / "notices", "a.md", b"x")
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_bytes() == b"x"

    def test_write_private_replaces_atomically(self, tmp_path):
        """A second write replaces the file and leaves no temporary file behind."""
        write_private(tmp_path, "a.md", b"old")
        write_private(tmp_path, "a.md", b"new")
        assert sorted(os.listdir(tmp_path)) == ["a.md"] and (tmp_path / "a.md").read_bytes() == b"new"

    @pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "a\x00b"])
    def test_write_private_refuses_paths(self, tmp_path, name):
        """A name that is a path or empty is refused."""
        with pytest.raises(BadInput):
            write_private(tmp_path, name, b"x")

    @pytest.mark.parametrize(
        ("parts", "expected"),
        [
            (("../../x",), "x.md"),
            (("a/b",), "a_b.md"),
            (("a\x00b",), "a_b.md"),
            (("张三", "P-1"), "张三_P-1.md"),
            (("..",), "document.md"),
            (("CON",), "_CON.md"),
        ],
    )
    def test_safe_filename(self, parts, expected):
        """Separators, '..' and control characters go; Chinese names stay readable."""
        assert safe_filename(*parts, ext="md") == expected

    def test_safe_filename_bounds_long_names(self):
        """A 300-character name is cut to at most 180 bytes and keeps a hash of the whole."""
        first = safe_filename("x" * 300, ext="pdf")
        second = safe_filename("x" * 299 + "y", ext="pdf")
        assert len(first.encode()) <= 180 and first.endswith(".pdf") and first != second
        assert len(safe_filename("张" * 300, ext="pdf").encode()) <= 180

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(), max_size=4), st.text(max_size=12))
    def test_safe_filename_property(self, parts, ext):
        """Whatever the input, the name has no separator, no '..', no control character and is bounded."""
        name = safe_filename(*parts, ext=ext)
        assert "/" not in name and "\\" not in name and ".." not in name and name not in ("", ".")
        assert not any(ord(ch) < 32 for ch in name) and len(name.encode("utf-8")) <= 180
