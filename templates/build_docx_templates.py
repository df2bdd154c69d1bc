"""Build the Word templates (``<locale>/<kind>.docx``) from the formal HTML templates.

The words of each formal document live in one place, its ``.html.j2`` page; this script turns that
page into a docxtpl template a legal team can open and edit in Word (a workspace copy then shadows
the built-in one). Run it after changing a formal HTML template and commit the ``.docx`` files::

    .venv/bin/python templates/build_docx_templates.py

The pages keep to a small line-oriented subset of HTML, one construct per line, so the conversion is
exact: ``<h1 class="title">``, ``<h2>``, ``<h3>``, ``<p class="...">`` (``<b>`` inside for a bold
label), ``<table>`` with one ``<tr>`` per line, ``<div class="seal">``, ``{% include %}`` of a partial,
and Jinja statements alone on a line, which become docxtpl's ``{%p ... %}`` paragraph tags (``{%tr
... %}`` row tags inside a table). Anything else stops the build with the file and line.
"""

from __future__ import annotations

import html
import io
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.text.paragraph import Paragraph

HERE = Path(__file__).resolve().parent
KINDS = (
    "regulator_initial_report",
    "regulator_supplementary_report",
    "regulator_summary_report",
    "internal_bulletin",
    "disciplinary_decision",
    "remediation_report",
)
FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # zip timestamps: rebuilding unchanged sources changes no byte
RED = RGBColor(0xC0, 0x00, 0x00)
# GB/T 9704-2012: body in fang-song at 16 pt (三号), title in a bold song face at 22 pt (二号), level-1
# headings in hei, level-2 in kai. Word and LibreOffice substitute an installed face (Noto Serif CJK SC
# on Debian) when these are missing; declaring East Asian language zh-CN makes them pick Chinese glyphs.
FONTS = {  # (Latin, East Asian body, {class: East Asian face}, body size, first-line indent)
    "zh-CN": (
        "Times New Roman",
        "仿宋",
        {"title": "宋体", "issuer": "宋体", "h2": "黑体", "h3": "楷体"},
        16,
        Pt(32),
    ),
    "en": (
        "Times New Roman",
        "仿宋",
        {"title": "宋体", "issuer": "宋体", "h2": "黑体", "h3": "楷体"},
        11.5,
        None,
    ),
}
STYLES = {  # class -> (alignment, first-line indent?, size delta, bold, space before pt)
    "issuer": (WD_ALIGN_PARAGRAPH.CENTER, False, 14, True, 0),
    "rule": (WD_ALIGN_PARAGRAPH.CENTER, False, -12, False, 0),
    "title": (WD_ALIGN_PARAGRAPH.CENTER, False, 6, True, 12),
    "subtitle": (WD_ALIGN_PARAGRAPH.CENTER, False, 0, False, 0),
    "docnum": (WD_ALIGN_PARAGRAPH.CENTER, False, 0, False, 0),
    "addressee": (WD_ALIGN_PARAGRAPH.LEFT, False, 0, False, 12),
    "h2": (WD_ALIGN_PARAGRAPH.LEFT, True, 0, False, 6),
    "h3": (WD_ALIGN_PARAGRAPH.LEFT, True, 0, False, 4),
    "body": (WD_ALIGN_PARAGRAPH.JUSTIFY, True, 0, False, 0),
    "note": (WD_ALIGN_PARAGRAPH.LEFT, True, -2, False, 6),
    "sign": (WD_ALIGN_PARAGRAPH.LEFT, False, 0, False, 24),
    "seal": (WD_ALIGN_PARAGRAPH.RIGHT, False, 0, False, 0),
    "cell": (WD_ALIGN_PARAGRAPH.LEFT, False, -4, False, 0),
    "drill": (WD_ALIGN_PARAGRAPH.CENTER, False, 0, True, 0),
}
_ELEMENT = re.compile(r'<(h1|h2|h3|p)(?: class="([a-z]+)")?>(.*)</\1>$')
_STATEMENT = re.compile(r"\{%-?\s*(.*?)\s*-?%\}$")


class BuildError(Exception):
    """A page uses HTML outside the subset this script converts."""


def _style_name(css_class: str) -> str:
    return f"Breach {css_class.capitalize()}"


def _language(r_pr: Any) -> None:
    """Declare the run properties' languages: Latin en-US, East Asian zh-CN (Chinese glyph forms)."""
    lang = r_pr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        r_pr.append(lang)
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    lang.set(qn("w:bidi"), "ar-SA")


def _add_styles(document: Document, locale: str) -> None:
    latin, body_font, faces, size, indent = FONTS[locale]
    defaults = document.styles.element.find(qn("w:docDefaults"))
    _language(defaults.find(qn("w:rPrDefault")).find(qn("w:rPr")))
    normal = document.styles["Normal"]
    normal.font.name = latin
    normal_fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    normal_fonts.set(qn("w:eastAsia"), body_font)
    _language(normal.element.get_or_add_rPr())
    for css_class, (align, indented, delta, bold, before) in STYLES.items():
        style = document.styles.add_style(_style_name(css_class), WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = normal
        style.font.name, style.font.size, style.font.bold = latin, Pt(max(size + delta, 2)), bold
        style.element.get_or_add_rPr().get_or_add_rFonts().set(
            qn("w:eastAsia"), faces.get(css_class, body_font)
        )
        _language(style.element.get_or_add_rPr())
        fmt = style.paragraph_format
        fmt.alignment, fmt.space_before, fmt.space_after = align, Pt(before), Pt(2)
        fmt.line_spacing = 1.3 if css_class != "rule" else 1.0
        fmt.widow_control = True
        if indented and indent is not None:
            fmt.first_line_indent = indent
        if css_class in ("h2", "h3", "title", "issuer", "rule", "docnum"):
            fmt.keep_with_next = True
        if css_class == "seal":
            fmt.keep_together, fmt.keep_with_next = True, True
        if css_class in ("drill", "issuer"):
            style.font.color.rgb = RED
        if css_class == "rule":
            _bottom_rule(style)


def _bottom_rule(style: Any) -> None:
    """A red rule under the paragraph (the line below the issuer mark)."""
    borders = OxmlElement("w:pBdr")
    edge = OxmlElement("w:bottom")
    for key, value in (("val", "single"), ("sz", "18"), ("space", "1"), ("color", "C00000")):
        edge.set(qn(f"w:{key}"), value)
    borders.append(edge)
    style.element.get_or_add_pPr().append(borders)


def _add_runs(paragraph: Paragraph, inner: str) -> None:
    """Text with optional <b>…</b> parts; HTML entities become characters (Word escapes them again)."""
    for index, piece in enumerate(re.split(r"</?b>", inner)):
        if piece:
            paragraph.add_run(html.unescape(piece)).bold = True if index % 2 == 1 else None


def _border(paragraph: Paragraph) -> None:
    borders = OxmlElement("w:pBdr")
    for side in ("top", "left", "bottom", "right"):
        edge = OxmlElement(f"w:{side}")
        for key, value in (("val", "single"), ("sz", "18"), ("space", "4"), ("color", "C00000")):
            edge.set(qn(f"w:{key}"), value)
        borders.append(edge)
    paragraph._p.get_or_add_pPr().append(borders)


def _page_number(paragraph: Paragraph) -> None:
    """ "— 1 —" at the foot of every page (GB/T 9704-2012)."""
    paragraph.add_run("— ")
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)
    paragraph.add_run(" —")


def _keep_last_body_paragraph(document: Document) -> None:
    """The paragraph before the signature block stays on its page: a page never holds only the seal."""
    for paragraph in reversed(document.paragraphs):
        if not paragraph.text.startswith("{%p"):
            paragraph.paragraph_format.keep_with_next = True
            return


def _expand(path: Path, locale_dir: Path) -> list[tuple[str, int, str]]:
    """The page's lines inside ``{% block content %}``, includes inlined, as (file, line, text)."""
    lines: list[tuple[str, int, str]] = []
    inside = path.name.startswith("_")  # a partial is all content
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("{% block content"):
            inside = True
        elif line.startswith("{% endblock") and inside:
            inside = False
        elif (included := re.fullmatch(r'\{% include "([^"]+)" %\}', line)) and inside:
            lines += _expand(locale_dir / included.group(1), locale_dir)
        elif inside and line and not line.startswith("{#"):
            lines.append((path.name, number, line))
    return lines


def _statement(line: str, prefix: str) -> str:
    match = _STATEMENT.fullmatch(line)
    assert match is not None
    return "{%" + prefix + " " + match.group(1) + " %}"


def _table(document: Document, rows: list[tuple[str, int, str]]) -> None:
    parsed: list[tuple[str, list[str]]] = []
    for file, number, line in rows:
        if line in ("<table>", "</table>"):
            continue
        if _STATEMENT.fullmatch(line):
            parsed.append(("tag", [_statement(line, "tr")]))
        elif line.startswith("<tr>") and line.endswith("</tr>"):
            cells = re.findall(r'<(th|td)(?: colspan="\d+")?>(.*?)</\1>', line[4:-5])
            parsed.append(("head" if cells and cells[0][0] == "th" else "row", [c[1] for c in cells]))
        else:
            raise BuildError(f"{file}:{number}: not a table line: {line}")
    columns = max(len(cells) for kind, cells in parsed if kind != "tag")
    table = document.add_table(rows=0, cols=columns)
    table.style = document.styles["Table Grid"]
    for kind, cells in parsed:
        row = table.add_row()
        if len(cells) < columns:  # a tag row, or a colspan row: one merged cell
            row.cells[0].merge(row.cells[-1])
        for cell, inner in zip(row.cells, cells, strict=False):
            paragraph = cell.paragraphs[0]
            paragraph.style = document.styles[_style_name("cell")]
            _add_runs(paragraph, f"<b>{inner}</b>" if kind == "head" else inner)


def build(locale: str, kind: str) -> bytes:
    """The Word template for ``kind`` in ``locale``, from ``<locale>/<kind>.html.j2``."""
    locale_dir = HERE / locale
    page = locale_dir / f"{kind}.html.j2"
    layout = (locale_dir / "_formal.html.j2").read_text(encoding="utf-8")
    banner = re.search(r'<div class="drill-banner">(.*?)</div>', layout)
    title = re.search(r"\{% block title %\}(.*?)\{% endblock %\}", page.read_text(encoding="utf-8"))
    if banner is None or title is None:
        raise BuildError(f"{page}: no drill banner in the layout or no title block in the page")
    document = Document()
    _add_styles(document, locale)
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    # GB/T 9704-2012: a 156 mm x 225 mm text area, 37 mm from the top and 28 mm from the left.
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    header = section.header.paragraphs[0]
    header.style = document.styles[_style_name("drill")]
    draft = "草稿" if locale == "zh-CN" else "DRAFT 草稿"
    header.add_run("{% if drill %}" + html.unescape(banner.group(1)) + "{% endif %}")
    header.add_run("{% if draft %}" + draft + "{% endif %}")
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _page_number(footer)
    body = document.paragraphs[0] if document.paragraphs else None
    if body is not None:  # python-docx's default document starts with no paragraph; be safe
        body._p.getparent().remove(body._p)
    document.add_paragraph("{%p if drill %}")
    _border(document.add_paragraph(html.unescape(banner.group(1)), _style_name("drill")))
    document.add_paragraph("{%p endif %}")
    document.add_paragraph("{%p if report.header %}")  # the red issuer mark of the layout
    document.add_paragraph("{{ report.header }}", _style_name("issuer"))
    document.add_paragraph("{%p endif %}")

    lines = _expand(page, locale_dir)
    seal, index = False, 0
    while index < len(lines):
        file, number, line = lines[index]
        index += 1
        if line == "<table>":
            end = next(i for i in range(index, len(lines)) if lines[i][2] == "</table>")
            _table(document, lines[index - 1 : end + 1])
            index = end + 1
        elif line in ('<div class="seal">', "</div>"):
            seal = line != "</div>"
            if seal:
                _keep_last_body_paragraph(document)
        elif _STATEMENT.fullmatch(line):
            document.add_paragraph(_statement(line, "p"))
        elif match := _ELEMENT.fullmatch(line):
            tag, css_class, inner = match.groups()
            name = "seal" if seal else css_class or {"h1": "title"}.get(tag, tag if tag != "p" else "body")
            if name in ("field", "item"):
                name = "body"
            if name not in STYLES:
                raise BuildError(f"{file}:{number}: unknown class {name!r}")
            _add_runs(document.add_paragraph(style=_style_name(name)), inner)
        else:
            raise BuildError(f"{file}:{number}: not in the subset this script converts: {line}")

    document.core_properties.title = title.group(1)
    document.core_properties.author = "breach"
    document.core_properties.last_modified_by = "breach"
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_timestamps(buffer.getvalue())


def _fixed_timestamps(data: bytes) -> bytes:
    source, target = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(
                zipfile.ZipInfo(info.filename, FIXED_TIME),
                source.read(info),
                compress_type=zipfile.ZIP_DEFLATED,
            )
    return target.getvalue()


def main() -> int:
    """Write every formal kind's Word template for every locale that has its HTML page."""
    for locale in FONTS:
        for kind in KINDS:
            if (HERE / locale / f"{kind}.html.j2").is_file():
                (HERE / locale / f"{kind}.docx").write_bytes(build(locale, kind))
                print(f"wrote {locale}/{kind}.docx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
