"""The documents an incident produces: which kinds exist, in which formats, and how each is rendered
to the bytes a reader opens (Markdown, HTML, an email, an SMS text, Word, PDF) and written to disk.

Rendering is built for volume: a notice goes to thousands of people with the same template, so each
(kind, format, locale) is prepared once per renderer (templates compiled, the Word package read and
its parts compiled) and every later call only runs the compiled code with a new context.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import files
from engine.documents.compiled import template_digest
from engine.documents.docx import DocxProducer
from engine.documents.eml import build_email, email_bytes
from engine.documents.sms import sms_segments
from engine.documents.templating import (
    DEFAULT_TIMEZONE,
    FALLBACK_LOCALE,
    BreachSandbox,
    get_environment,
    load_template,
    locale_dirs,
    render_template,
    resolve_locale,
)
from engine.errors import BadInput

__all__ = [
    "FORMATS",
    "KINDS",
    "DocumentKind",
    "DocumentRenderer",
    "Rendered",
    "build_email",
    "clean_temporaries",
    "html_to_pdf",
    "safe_filename",
    "sms_segments",
    "write_private",
]

FORMATS = ("md", "html", "eml", "sms", "docx", "pdf")
_FORMAL = ("html", "pdf", "docx")


@dataclass(frozen=True)
class DocumentKind:
    """A kind of document: its formats, the context fields naming its file, and an email's addressee."""

    name: str
    formats: tuple[str, ...]
    filename_fields: tuple[str, ...]
    recipient: tuple[str, str] | None = None  # context paths of the To display name and address
    # Context path of the Message-ID an email answers (In-Reply-To, References), e.g. the notice a
    # correction corrects: mail programs then show the two in one thread.
    replies_to: str | None = None
    # The locales it is written in; None for every locale. Jurisdiction documents are English only
    # (with a slot for the authority's language): a Chinese version would be no one's legal text.
    locales: tuple[str, ...] | None = None


KINDS: dict[str, DocumentKind] = {
    kind.name: kind
    for kind in (
        DocumentKind(
            "customer_notice",
            ("md", "html", "eml", "sms"),
            ("person.name", "person.id"),
            ("person.name", "person.email"),
        ),
        DocumentKind(
            "client_notice", ("md", "html", "eml"), ("client.name",), ("client.contact_name", "client.email")
        ),
        DocumentKind(
            "correction_notice",
            ("md", "html", "eml", "sms"),
            ("recipient.name", "recipient.id"),
            ("recipient.display", "recipient.email"),
            replies_to="correction.replies_to",
        ),
        # The public announcement: one per incident, content version and language; it names no one.
        DocumentKind("public_notice", ("md", "html"), ("incident.id",)),
        DocumentKind("regulator_initial_report", _FORMAL, ("incident.id",)),
        DocumentKind("regulator_supplementary_report", _FORMAL, ("incident.id", "supplement.sequence")),
        DocumentKind("regulator_summary_report", _FORMAL, ("incident.id",)),
        DocumentKind("internal_bulletin", _FORMAL, ("incident.id",)),
        DocumentKind("disciplinary_decision", _FORMAL, ("incident.id", "employee.name")),
        DocumentKind("remediation_report", _FORMAL, ("incident.id",)),
        # HTML and PDF through the formal layout; no Word template (build_docx_templates.py lists its kinds).
        DocumentKind("assessment_report", ("md", "html", "pdf"), ("incident.id",)),
        # Jurisdiction rules' documents, in English with a slot for the authority's language.
        DocumentKind("gdpr33_notification", ("md",), ("incident.id", "phase"), locales=("en",)),
        DocumentKind("gdpr34_communication", ("md",), ("incident.id",), locales=("en",)),
        DocumentKind("hipaa404_notice", ("md",), ("incident.id",), locales=("en",)),
    )
}


@dataclass(frozen=True)
class Rendered:
    """One rendered document, with the hashes an audit trail records."""

    kind: str
    fmt: str
    filename: str
    content: bytes
    template: str  # template file(s) used, relative to their templates folder, e.g. "en/x.md.j2"
    template_sha256: str
    sha256: str


@dataclass(frozen=True)
class _Prepared:
    template: str
    template_sha256: str
    produce: Callable[[dict[str, Any]], bytes]


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
        if value is None:
            return None
    return value


def _require(context: dict[str, Any], path: str, why: str) -> Any:
    value = _lookup(context, path)
    if value in (None, ""):
        raise BadInput(f"{why} needs {path} in the context")
    return value


class DocumentRenderer:
    """Renders document kinds from the templates found in ``search_paths`` (workspace first)."""

    def __init__(self, search_paths: list[Path], *, locale_default: str = FALLBACK_LOCALE) -> None:
        self._search_paths = [Path(p) for p in search_paths]
        self._locale_default = locale_default
        self._prepared: dict[tuple[str, str, str], _Prepared] = {}
        self._locales: dict[str, str] = {}
        self._envs: dict[tuple[str, bool], BreachSandbox] = {}

    def _env(self, locale: str, docx: bool = False) -> BreachSandbox:
        # The renderer's own environments: compiled once, never re-checked against the files while it
        # lives (a new renderer sees edited templates).
        key = (locale, docx)
        if key not in self._envs:
            self._envs[key] = get_environment(
                self._search_paths, locale, fallback=self._locale_default, docx=docx, cached=False
            )
        return self._envs[key]

    def formats(self, kind: str) -> list[str]:
        """The formats ``kind`` can be rendered to."""
        return list(_kind(kind).formats)

    def render(
        self,
        kind: str,
        fmt: str,
        context: dict[str, Any],
        *,
        locale: str | None = None,
        filename: str | None = None,
    ) -> Rendered:
        """Render ``kind`` as ``fmt`` in ``locale`` (else the context's, the person's, the default).

        ``filename``: the name the caller writes it under (default: from the kind's filename fields).
        """
        spec = _kind(kind)
        if fmt not in spec.formats:
            raise BadInput(f"{kind} cannot be rendered as {fmt!r}; it supports {', '.join(spec.formats)}")
        wanted = locale or context.get("locale") or _lookup(context, "person.locale") or self._locale_default
        resolved = self._locales.get(wanted)
        if resolved is None:
            resolved = resolve_locale(wanted, self._search_paths, self._locale_default)
            self._locales[wanted] = resolved
        prepared = self._prepared.get((kind, fmt, resolved)) or self._prepare(spec, fmt, resolved)
        ctx = {"timezone": DEFAULT_TIMEZONE, **context, "locale": resolved}
        content = prepared.produce(ctx)
        if filename is None:
            fields = (_lookup(context, f) for f in spec.filename_fields)
            parts = [str(v) for v in fields if v not in (None, "")]
            filename = safe_filename(*(["DRILL"] if context.get("drill") else []), kind, *parts, ext=fmt)
        return Rendered(
            kind,
            fmt,
            filename,
            content,
            prepared.template,
            prepared.template_sha256,
            hashlib.sha256(content).hexdigest(),
        )

    # -- preparation: everything that does not depend on the person happens here, once -------------

    def _prepare(self, spec: DocumentKind, fmt: str, locale: str) -> _Prepared:
        env = self._env(locale)
        kind = spec.name
        if fmt == "docx":
            prepared = self._prepare_docx(kind, locale)
        else:
            names = {
                "md": ["md"],
                "html": ["html"],
                "pdf": ["html"],
                "sms": ["sms"],
                "eml": ["subject", "md", "html"],
            }[fmt]
            loaded = [load_template(env, f"{kind}.{n}.j2") for n in names]
            label, digest = template_digest(env, [t.name or "" for t in loaded])
            if fmt in ("md", "html"):
                produce = _text_producer(loaded[0])
            elif fmt == "sms":
                produce = _sms_producer(loaded[0])
            elif fmt == "pdf":
                produce = _pdf_producer(loaded[0])
            else:
                produce = _email_producer(spec, *loaded)
            prepared = _Prepared(label, digest, produce)
        self._prepared[(kind, fmt, locale)] = prepared
        return prepared

    def _prepare_docx(self, kind: str, locale: str) -> _Prepared:
        for folder in locale_dirs(self._search_paths, locale, self._locale_default):
            path = folder / f"{kind}.docx"
            if path.is_file():
                data = path.read_bytes()  # read once: every person's document comes from these bytes
                return _Prepared(
                    _relative(path),
                    hashlib.sha256(data).hexdigest(),
                    DocxProducer(data, self._env(locale, docx=True), path),
                )
        raise BadInput(f"no Word template {kind}.docx for locale {locale}")


def _kind(kind: str) -> DocumentKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise BadInput(f"unknown document kind {kind!r}; known kinds: {', '.join(KINDS)}") from None


def _relative(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# -- producers: context in, bytes out ---------------------------------------------------------------


def _text_producer(template: Any) -> Callable[[dict[str, Any]], bytes]:
    def produce(ctx: dict[str, Any]) -> bytes:
        return render_template(template, ctx).encode("utf-8")

    return produce


def _sms_producer(template: Any) -> Callable[[dict[str, Any]], bytes]:
    def produce(ctx: dict[str, Any]) -> bytes:
        # One line: a line break costs a character and some gateways cut at it.
        return " ".join(render_template(template, ctx).split()).encode("utf-8")

    return produce


def _pdf_producer(template: Any) -> Callable[[dict[str, Any]], bytes]:
    def produce(ctx: dict[str, Any]) -> bytes:
        return html_to_pdf(render_template(template, ctx))

    return produce


def html_to_pdf(html: str) -> bytes:
    """Lay out ``html`` as PDF; nothing outside the document (files, network) is ever fetched."""
    import weasyprint  # heavy: only when a PDF is asked for

    # A workspace template could point at file:///etc/... or an internal URL: only data: URLs load.
    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",))
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    return pdf


def _email_producer(
    spec: DocumentKind, subject_t: Any, text_t: Any, html_t: Any
) -> Callable[[dict[str, Any]], bytes]:
    assert spec.recipient is not None
    name_path, address_path = spec.recipient

    def produce(ctx: dict[str, Any]) -> bytes:
        subject = " ".join(render_template(subject_t, ctx).split())
        text, html = render_template(text_t, ctx), render_template(html_t, ctx)
        why = f"{spec.name} by email"
        sender = (str(_require(ctx, "firm.name", why)), str(_require(ctx, "firm.contact_email", why)))
        to = (str(_lookup(ctx, name_path) or ""), str(_require(ctx, address_path, why)))
        date = _require(ctx, "generated_at", why)
        domain = sender[1].rpartition("@")[2] or "localhost"
        # The same notice to the same person renders to the same bytes (and hash): derive the id.
        seed = "\x1f".join([spec.name, to[1], subject, text, str(date)]).encode("utf-8", "replace")
        message_id = f"<{hashlib.sha256(seed).hexdigest()[:32]}@{domain}>"
        parent = _lookup(ctx, spec.replies_to) if spec.replies_to else None
        return email_bytes(
            sender=sender,
            to=to,
            subject=subject,
            text=text,
            html=html,
            date=date,
            message_id=message_id,
            in_reply_to=str(parent) if parent else None,
        )

    return produce


# -- files ------------------------------------------------------------------------------------------

_FILENAME_BYTES = 180  # well under the 255-byte limit of common file systems, with room for a temp suffix
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
)


_NAME_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x20\x7f-\xa0]')
_EXT_UNSAFE = re.compile(r"[^A-Za-z0-9]")
_DOTS, _UNDERSCORES = re.compile(r"\.{2,}"), re.compile(r"_{2,}")
_PLAIN_NAME = re.compile(r"(?!.*__)[^\W_](?:[\w-]*[^\W_])?")


def _clean_part(part: str) -> str:
    if _PLAIN_NAME.fullmatch(part):  # letters, digits, single "_" and "-" inside: nothing to clean
        return part
    # Separators, characters Windows forbids, spaces and every control or format character become "_".
    part = _NAME_UNSAFE.sub("_", unicodedata.normalize("NFC", part))
    if not part.isascii():
        part = "".join("_" if unicodedata.category(ch)[0] in "CZ" else ch for ch in part)
    return _UNDERSCORES.sub("_", _DOTS.sub(".", part)).strip("._- ")


def safe_filename(*parts: str, ext: str) -> str:
    """A file name from ``parts`` joined by ``_``: no path separators, no ``..``, no control characters,
    at most 180 UTF-8 bytes (a long name keeps a hash of the whole), Chinese names left readable."""
    cleaned = [_clean_part(str(part)) for part in parts]
    stem = "_".join([p for p in cleaned if p]) or "document"
    suffix = _EXT_UNSAFE.sub("", ext).lower()[:10]
    budget = _FILENAME_BYTES - len(suffix) - 1
    # A UTF-8 character is at most 4 bytes: a short stem is within the budget without encoding it.
    if len(stem) * 4 > budget and len(stem.encode("utf-8")) > budget:
        digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:8]
        stem = stem.encode("utf-8")[: budget - 9].decode("utf-8", "ignore").rstrip("._- ") + "~" + digest
    if stem.partition(".")[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return f"{stem}.{suffix}" if suffix else stem


def write_private(directory: Path, filename: str, content: bytes, *, root: Path | None = None) -> Path:
    """Write ``content`` to ``directory/filename`` atomically, readable by the owner only (0600),
    creating missing folders with mode 0700; return the path written.

    No symbolic link below ``root`` (the workspace, for its ``out/``) is followed, and the final
    folder is never a link even without a root: a planted link is refused, naming it (exit 2).
    """
    return files.write_private(directory, filename, content, root=root)


def clean_temporaries(folder: Path) -> int:
    """Remove temporary files that a killed run left (their process is gone); return how many."""
    return files.clean_temporaries(folder)
