"""Word templates: reading a docxtpl template once, compiling its parts with our sandboxed
environment, and producing each person's document from the compiled parts.

docxtpl's own ``DocxTemplate(path).render(ctx); save()`` re-reads and re-parses the package, cleans
up and recompiles the XML (``from_string``) and re-serialises every part, for every document. Here
the package is read once, the cleaned-up XML of each templated part (docxtpl's ``patch_xml``, so
templates written for docxtpl behave the same) is compiled once, and the untouched parts are zipped
once; a document then costs one render of each part and an append to a copy of that zip.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateSyntaxError

from engine.documents.templating import BreachSandbox, render_template, template_error
from engine.errors import BadInput

__all__ = ["DocxProducer", "compile_docx_part", "docx_template_sources", "docxtpl_helper"]

_WORD_PARTS = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml")


@functools.cache
def docxtpl_helper() -> Any:
    # docxtpl's XML clean-up (joining tags that Word split across runs, `{%p %}` paragraph tags,
    # newlines as <w:br/>) is kept exactly; the helper instance opens no file.
    from docxtpl import DocxTemplate

    return DocxTemplate(io.BytesIO())


def docx_template_sources(data: bytes) -> dict[str, str]:
    """The Jinja source of each Word part that holds template tags, cleaned up as docxtpl does.

    Each paragraph starts a line and the first one is line 1, so a line number in an error or a
    check is the paragraph's position in the part (paragraphs in tables and tag paragraphs count).
    """
    helper = docxtpl_helper()
    sources: dict[str, str] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            for info in package.infolist():
                if not _WORD_PARTS.fullmatch(info.filename):
                    continue
                xml = package.read(info).decode("utf-8")
                if "{{" in xml or "{%" in xml or "{#" in xml:
                    head, _, body = re.sub(r"<w:p([ >])", r"\n<w:p\1", xml).partition("\n<w:p")
                    xml = head.replace("\r", "").replace("\n", "") + ("<w:p" + body if body else "")
                    sources[info.filename] = helper.patch_xml(xml)
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError) as exc:
        raise BadInput(f"not a usable Word file: {exc}") from None
    return sources


def compile_docx_part(env: BreachSandbox, source: str, path: Path, part: str) -> Template:
    """Compile one Word part once; tracebacks then show ``kind.docx word/document.xml`` and a line."""
    label = f"{path.name} {part}"
    try:
        code = env.compile(source, name=label, filename=f"{path}!{part}")
    except TemplateSyntaxError as exc:
        raise template_error(exc, label) from exc
    return env.template_class.from_code(env, code, env.make_globals(None))


class DocxProducer:
    """A Word template prepared once; calling it with a context gives that document's bytes.

    The untouched parts (styles, theme, fonts: most of the bytes) are zipped once into a prefix
    archive; per document the prefix is copied and the rendered parts are appended (zip append
    mode), so those parts are never decompressed or compressed again.
    """

    def __init__(self, data: bytes, env: BreachSandbox, path: Path) -> None:
        sources = docx_template_sources(data)
        self._path = path
        self._templates = {part: compile_docx_part(env, src, path, part) for part, src in sources.items()}
        self._dates: dict[str, tuple[int, int, int, int, int, int]] = {}
        prefix = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(data)) as package,
            zipfile.ZipFile(prefix, "w", zipfile.ZIP_DEFLATED) as out,
        ):
            for info in package.infolist():
                if info.filename in sources:
                    self._dates[info.filename] = info.date_time
                else:
                    copy = zipfile.ZipInfo(info.filename, info.date_time)
                    copy.external_attr = info.external_attr
                    out.writestr(copy, package.read(info), zipfile.ZIP_DEFLATED)
        self._prefix = prefix.getvalue()

    def __call__(self, ctx: dict[str, Any]) -> bytes:
        rendered = {part: self._finish(render_template(t, ctx), part) for part, t in self._templates.items()}
        buffer = io.BytesIO(self._prefix)
        buffer.seek(0, io.SEEK_END)
        with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as package:
            for part, xml in rendered.items():
                # The template's timestamps: the same context gives the same bytes, hence the same hash.
                package.writestr(zipfile.ZipInfo(part, self._dates[part]), xml, zipfile.ZIP_DEFLATED, 6)
        return buffer.getvalue()

    def _finish(self, xml: str, part: str) -> bytes:
        from lxml import etree

        # The same post-processing as DocxTemplate.render_xml_part, then a strict parse: whatever the
        # data held, the part must be well-formed XML or Word refuses the whole file.
        xml = re.sub(r"\n<w:p([ >])", r"<w:p\1", xml)
        xml = xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")
        helper = docxtpl_helper()
        xml = helper.resolve_listing(xml)
        try:
            etree.fromstring(xml.encode("utf-8"), parser=_strict_parser())
        except etree.XMLSyntaxError as exc:
            raise template_error(exc, f"{self._path.name} {part}") from exc
        if "<w:tbl" not in xml:
            return xml.encode("utf-8")
        # Row loops may change how many columns a table has; docxtpl's fix takes no XML declaration.
        tree = helper.fix_tables(xml[xml.index("?>") + 2 :] if xml.startswith("<?xml") else xml)
        fixed: bytes = etree.tostring(tree, xml_declaration=True, encoding="UTF-8", standalone=True)
        return fixed


@functools.cache
def _strict_parser() -> Any:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
