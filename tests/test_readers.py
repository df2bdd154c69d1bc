"""Every formal document opened as its reader opens it, in both locales: the PDF page by page
(``pdftotext -layout``, ``pdffonts``), the Word file's XML, and the playbook diagram as Mermaid reads it.

The incident is walked to closed once per locale, as the demo walks it, on an SQLite file: the layout is
the subject here, not the database.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_formal import FIRM, make_workspace

from engine.cli.demo import DEMO_CONTENT, DEMO_FACTS, DEMO_NOTES, DEMO_RESPONSIBLE, STEPS
from engine.documents.registry import DOCUMENT
from engine.formal.responsible import record_responsible
from engine.incidents import flow
from engine.incidents.opening import open_incident
from engine.incidents.tasks import complete_task
from engine.legal.facts import facts_to_dict, merge_facts
from engine.migrations.migrate import upgrade
from engine.notices.content import set_content
from engine.notices.contexts import NoticeContent
from engine.playbooks.catalog import PlaybookCatalog
from engine.store.db import Store
from engine.wiring import hooks_for

ZONE = "Asia/Shanghai"
HEADER = "示例财税咨询有限公司文件"
A4_POINTS = (595.0, 842.0)
MM = 72 / 25.4
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def walk_to_closed(home: Path, locale: str) -> dict[tuple[str, str, str], Path]:
    """Open the demo incident in a fresh workspace and take every step to closed; the second responsible
    person is recorded as a draft. Returns each formal document's file by (kind, format, subject)."""
    settings = FIRM + f'locale = "{locale}"\nheader = "{HEADER}"\n'
    store = Store(f"sqlite:///{home / 'breach.db'}")
    upgrade(store)
    ws = make_workspace(home, store.url, settings)
    hooks = hooks_for(ws)
    source = PlaybookCatalog(ws).get("cn-agency-firm")
    incident = open_incident(
        store,
        source=source,
        title="客户台账泄露",
        actor="alice",
        zone=ZONE,
        hooks=hooks,
        discovered_at=datetime.now(UTC) - timedelta(hours=3),
        facts=facts_to_dict(merge_facts({}, DEMO_FACTS)),
    ).id
    set_content(store, incident, NoticeContent.parse(DEMO_CONTENT, "demo"), actor="alice")
    for tasks, trigger, options in STEPS:
        if options.get("responsible"):
            first, second = DEMO_RESPONSIBLE
            record_responsible(store, incident, actor="alice", **first)  # type: ignore[arg-type]
            draft = {k: v for k, v in second.items() if k not in ("facts", "rules")}
            record_responsible(store, incident, actor="alice", draft=True, **draft)  # type: ignore[arg-type]
        for task in tasks:
            complete_task(store, incident, task, actor="alice", hooks=hooks, note=DEMO_NOTES.get(task))
        inputs = {k: str(v) for k, v in dict(options.get("inputs", {})).items()}  # type: ignore[call-overload]
        if inputs.get("due_at") == "+20d":
            inputs["due_at"] = (datetime.now(UTC) + timedelta(days=20)).isoformat()
        reason = options.get("reason")
        flow.advance(
            store,
            incident,
            trigger,
            actor="alice",
            zone=ZONE,
            hooks=hooks,
            reason=reason and str(reason),
            inputs=inputs,
        )
    with store.read() as s:
        rows = s.execute(
            select(DOCUMENT).where(DOCUMENT.c.incident_id == incident, DOCUMENT.c.person_ref.is_(None))
        )
        found = {(r.kind, r.fmt, r.subject): Path(r.path) for r in rows}
    store.dispose()
    return found


@pytest.fixture(scope="module", params=["zh-CN", "en"])
def produced(request, tmp_path_factory) -> tuple[str, dict[tuple[str, str, str], Path]]:
    """Every formal document of a walked incident, in one locale."""
    home = tmp_path_factory.mktemp(f"readers-{request.param}")
    return request.param, walk_to_closed(home, request.param)


def pages(pdf: Path) -> list[str]:
    """The PDF's pages as ``pdftotext -layout`` lays them out (form feeds split pages)."""
    out = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True
    )
    return [p for p in out.stdout.decode("utf-8").split("\f") if p.strip()]


def word_boxes(pdf: Path) -> list[tuple[int, float, float, float, float, str]]:
    """Every word with its page and box, in points, as ``pdftotext -bbox`` reports them."""
    out = subprocess.run(
        ["pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True
    )
    boxes, page = [], 0
    for line in out.stdout.decode("utf-8").splitlines():
        if "<page " in line:
            page += 1
        found = re.search(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*)</word>', line
        )
        if found:
            x0, y0, x1, y1 = (float(v) for v in found.groups()[:4])
            boxes.append((page, x0, y0, x1, y1, found.group(5)))
    return boxes


SEAL_WORDS = ("盖章", "seal", "负责人（签字）", "Signed by", "年", "月", "日")


@needs_poppler
class TestPdfPages:
    def test_no_page_holds_only_the_signature_block(self, produced):
        """The last page of every PDF carries body text besides the issuer, seal, signature and date."""
        _locale, files = produced
        pdfs = [path for (kind, fmt, _s), path in files.items() if fmt == "pdf"]
        assert len(pdfs) >= 7
        for pdf in pdfs:
            last = [line.strip() for line in pages(pdf)[-1].splitlines() if line.strip()]
            body = [
                line
                for line in last
                if not re.fullmatch(r"(—\s*\d+\s*—|Page \d+ of \d+)", line)
                and not any(word in line for word in SEAL_WORDS)
                and "示例财税咨询有限公司" not in line
                and "草稿" not in line
                and "签收" not in line
                and "Signature" not in line
            ]
            assert body, f"{pdf.name}: the last page holds only the signature block: {last}"

    def test_every_word_and_table_box_stays_inside_the_text_area(self, produced):
        """No word of any page (tables included) reaches past the left or right margin."""
        _locale, files = produced
        for (_kind, fmt, _s), pdf in files.items():
            if fmt != "pdf":
                continue
            for page, x0, _y0, x1, _y1, word in word_boxes(pdf):
                assert x0 >= 28 * MM - 2 and x1 <= A4_POINTS[0] - 26 * MM + 2, (pdf.name, page, word, x0, x1)

    def test_serif_cjk_face_is_embedded_and_pages_are_numbered(self, produced):
        """The PDFs embed Noto Serif CJK SC; Chinese pages are numbered "— N —" at the foot."""
        locale, files = produced
        pdf = files[("regulator_initial_report", "pdf", "")]
        fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
        assert re.search(r"Noto-Serif-CJK-SC\s.*\byes\s+yes", fonts), fonts
        texts = pages(pdf)
        for number, page in enumerate(texts, 1):
            mark = rf"—\s*{number}\s*—" if locale == "zh-CN" else rf"Page {number} of {len(texts)}"
            assert re.search(mark, page), page[-200:]

    def test_red_header_and_number_open_the_first_page(self, produced):
        """With [documents] header set, page one starts with the issuer mark, then the document number."""
        _locale, files = produced
        first = [
            line.strip()
            for line in pages(files[("internal_bulletin", "pdf", "")])[0].splitlines()
            if line.strip()
        ]
        assert first[0].replace(" ", "") == HEADER
        assert re.fullmatch(r"示例财税〔\d{4}〕\d+号", first[1].replace(" ", ""))

    def test_a_draft_decision_says_draft_on_every_page(self, produced):
        """The draft person's decision carries 草稿 on every page; the complete one does not."""
        _locale, files = produced
        decisions = {
            s: p for (kind, fmt, s), p in files.items() if kind == "disciplinary_decision" and fmt == "pdf"
        }
        assert len(decisions) == 2
        complete, draft = (decisions[k] for k in sorted(decisions))
        assert all("草稿" in page for page in pages(draft))
        assert not any("草稿" in page for page in pages(complete))


class TestWordXml:
    def test_word_files_declare_chinese_and_the_gbt_faces(self, produced):
        """styles.xml declares East Asian language zh-CN and the fang-song body face; a page number field
        and the "— N —" marks are in the footer."""
        _locale, files = produced
        for (_kind, fmt, _s), path in files.items():
            if fmt != "docx":
                continue
            with zipfile.ZipFile(path) as package:
                styles = package.read("word/styles.xml").decode("utf-8")
                footer = "".join(
                    package.read(n).decode("utf-8") for n in package.namelist() if n.startswith("word/footer")
                )
            assert 'w:eastAsia="zh-CN"' in styles and 'w:eastAsia="en-US"' not in styles, path.name
            assert 'w:eastAsia="仿宋"' in styles and 'w:eastAsia="黑体"' in styles
            assert "PAGE" in footer and "—" in footer

    def test_the_paragraph_before_the_seal_keeps_with_it(self, produced):
        """In the Word file the last body paragraph before the seal is kept with the next one."""
        _locale, files = produced
        with zipfile.ZipFile(files[("regulator_initial_report", "docx", "")]) as package:
            body = package.read("word/document.xml").decode("utf-8")
        paragraphs = re.findall(r"<w:p[ >].*?</w:p>", body, flags=re.S)
        seal = next(i for i, p in enumerate(paragraphs) if 'w:val="BreachSeal"' in p)
        before = next(p for p in reversed(paragraphs[:seal]) if "<w:t" in p)
        assert "<w:keepNext/>" in before

    def test_the_draft_decision_marks_every_page_in_its_header(self, produced):
        """A draft decision's Word header (printed on every page) says 草稿."""
        _locale, files = produced
        decisions = sorted(s for (kind, fmt, s) in files if kind == "disciplinary_decision" and fmt == "docx")
        with zipfile.ZipFile(files[("disciplinary_decision", "docx", decisions[-1])]) as package:
            headers = "".join(package.read(n).decode("utf-8") for n in package.namelist() if "header" in n)
        assert "草稿" in headers


class TestDiagram:
    def test_every_line_of_the_mermaid_diagram_is_one_statement(self, cli):
        """playbook diagram: YAML front matter with a title, then one statement per line."""
        text = cli("playbook", "diagram", "cn-agency-firm", check=True).stdout
        lines = text.splitlines()
        assert lines[0] == "---" and lines[1].startswith("title: ") and lines[2] == "---"
        statement = re.compile(
            r"stateDiagram-v2|direction \w+|classDef \w+ .+|state \".+\" as \w+|"
            r"(\[\*\]|\w+) --> (\[\*\]|\w+)(: .+)?|class \w+ \w+|note (right|left) of \w+ : .+|"
        )
        for line in lines[3:]:
            assert statement.fullmatch(line.strip()), line
        # The transitions end with the way out of the final state; the notes on early tasks follow them.
        transitions = [line.strip() for line in lines if "-->" in line]
        assert transitions[-1] == "closed --> [*]" and text.endswith("\n")
