"""Templates: one sandboxed Jinja environment per search path and locale, the filters a reader needs,
and a static check of every template against the documented contexts (``templates/contexts.yaml``).

Templates come from files only, through a loader, never ``from_string`` per call: compiling is the
expensive part and a workspace template is untrusted code. The sandbox refuses attribute tricks
(``__class__``, ``__globals__``...), ``StrictUndefined`` turns a typo into an error instead of an empty
gap in a legal notice, and every failure becomes one ``BadInput`` line naming the template and line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from time import monotonic
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from engine.documents.bounds import Budget, bounded_range, check_format, check_padding, rendering_budget
from engine.documents.checks import Problem, check_templates
from engine.documents.compiled import compiled_templates
from engine.documents.context_specs import context_problems, load_contexts
from engine.documents.filters import (
    DEFAULT_TIMEZONE,
    FALLBACK_LOCALE,
    FILTERS,
    cn_doc_number,
    date_local,
    datetime_local,
    mask_account,
    mask_id,
    mask_phone,
    to_follow,
)
from engine.documents.in_force import templates_in_force
from engine.errors import BadInput, BreachError, NotFound
from engine.files import current_limits

__all__ = [
    "DEFAULT_TIMEZONE",
    "FALLBACK_LOCALE",
    "FILTERS",
    "BreachSandbox",
    "Problem",
    "check_templates",
    "cn_doc_number",
    "context_problems",
    "date_local",
    "datetime_local",
    "get_environment",
    "load_contexts",
    "load_template",
    "locale_dirs",
    "mask_account",
    "mask_id",
    "mask_phone",
    "render_template",
    "resolve_locale",
    "strip_unsafe",
    "template_error",
    "templates_in_force",
    "to_follow",
]

_LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MAX_SEQUENCE = 100_000  # longest string or list a template may build with `*`
_MAX_POWER_BITS = 65_536  # largest integer a template may build with `**`
_CHUNK = 32  # pieces of output taken between two checks of the document's budget


# ------------------------------------------------------------------------------------- environment


class BreachSandbox(SandboxedEnvironment):
    """The sandbox, plus limits on ``*`` and ``**`` so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call a template makes: padding and format widths bounded, the time limit checked."""
        check_padding(__obj, args)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``'{:>1000000000}'.format``: the pattern's widths are checked when ``format`` is reached."""
        owner = getattr(value, "__self__", None)
        if getattr(value, "__name__", "") in ("format", "format_map") and isinstance(owner, str):
            check_format(owner)
        return super().wrap_str_format(value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``person.name`` on a plain dict: the key first, which is data and always safe to read, so
        the common case skips a failed attribute lookup and the safety check."""
        kind = type(obj)
        if kind is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        elif kind is LoopContext and not attribute.startswith("_"):  # loop.index: Jinja's own, safe
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``'x' * 10**9``, ``9 ** 9 ** 9`` and ``'%01000000000d' % 1`` before computing them."""
        if operator == "%" and isinstance(left, str):
            check_format(left)
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_SEQUENCE
                ):
                    raise SecurityError(f"refused to build a sequence longer than {_MAX_SEQUENCE}")
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and max(left.bit_length(), 1) * abs(right) > _MAX_POWER_BITS
        ):
            raise SecurityError("refused to compute a power this large")
        return super().call_binop(context, operator, left, right)


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".htm.j2", ".xml.j2", ".html", ".xml"))


def _finalizer(locale: str) -> Callable[[Any], Any]:
    unknown = to_follow(locale)

    def finalize(value: Any) -> Any:
        # A missing fact prints as 待补报 / "to follow", never as the word "None". Every value a
        # template prints passes here: control characters in data are dropped on the way (the C-level
        # isprintable test keeps the common case, a clean short string, nearly free).
        if value is None:
            return unknown
        if isinstance(value, str) and not value.isprintable():
            cleaned = _UNSAFE_CHARS.sub("", value)
            return Markup(cleaned) if isinstance(value, Markup) else cleaned
        return value

    return finalize


def _environment(dirs: tuple[str, ...], locale: str, docx: bool, auto_reload: bool = True) -> BreachSandbox:
    env = BreachSandbox(
        loader=FileSystemLoader(list(dirs), encoding="utf-8"),
        undefined=StrictUndefined,
        # Word XML is always escaped, whatever the template is named; docxtpl's own whitespace
        # handling expects Jinja's defaults, the text formats read better with trimmed blocks.
        autoescape=True if docx else _autoescape,
        trim_blocks=not docx,
        lstrip_blocks=not docx,
        keep_trailing_newline=True,
        finalize=_finalizer(locale),
        auto_reload=auto_reload,
        cache_size=1000,
        bytecode_cache=compiled_templates(locale, docx),
    )
    for name in ("lipsum", "cycler", "joiner"):  # not needed by documents; less to attack
        env.globals.pop(name, None)
    env.globals["range"] = bounded_range  # each value a loop takes is counted against the budget
    env.filters.update(FILTERS)
    env.filters["format"] = _bounded_format
    return env


def resolve_locale(locale: str | None, search_paths: Iterable[Path], default: str = FALLBACK_LOCALE) -> str:
    """The locale folder to use: ``en_GB`` reads ``en-GB``, then ``en``; one no folder has is ``default``."""
    if not locale:
        return default
    if not _LOCALE_RE.match(locale):
        raise BadInput(f"invalid locale {locale!r}; use a tag such as zh-CN or en")
    parts = re.split(r"[-_]", locale)
    tag = "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 else p for p in parts[1:])])
    paths = list(search_paths)
    for candidate in (tag, parts[0].lower()):
        if any((Path(p) / candidate).is_dir() for p in paths):
            return candidate
    return default


def locale_dirs(search_paths: Iterable[Path], locale: str, fallback: str = FALLBACK_LOCALE) -> list[Path]:
    """Folders searched for a locale: workspace then built-in, then the same for the fallback locale."""
    paths = [Path(p) for p in search_paths]
    dirs = [p / locale for p in paths]
    return dirs + [p / fallback for p in paths] if locale != fallback else dirs


_cached_environment = functools.lru_cache(maxsize=64)(_environment)


def get_environment(
    search_paths: Iterable[Path],
    locale: str,
    *,
    fallback: str = FALLBACK_LOCALE,
    docx: bool = False,
    cached: bool = True,
) -> BreachSandbox:
    """The sandboxed environment for these search paths and locale (``docx``: Word XML flavour).

    ``cached``: one shared environment per search path and locale, which checks each template file
    for changes when it is used. Otherwise a new environment that never re-checks: for a renderer
    that compiles once and then renders thousands of documents (it saves a stat per include).
    """
    dirs = tuple(str(d) for d in locale_dirs(search_paths, locale, fallback))
    return _cached_environment(dirs, locale, docx) if cached else _environment(dirs, locale, docx, False)


# ------------------------------------------------------------------------------------------ errors


def _location(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost template frame of a rendering error: Jinja rewrites tracebacks to show them."""
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in ("top-level template code", "template") or code.co_name.startswith("block "):
            filename = code.co_filename
            if "!" in filename:  # a Word part: "path/kind.docx!word/document.xml"
                path, _, part = filename.partition("!")
                found = (f"{Path(path).name} {part}", tb.tb_lineno)
            else:
                found = (Path(filename).name, tb.tb_lineno)
        tb = tb.tb_next
    return found


# Names that only a template-injection payload reaches for (Flask's globals, Jinja's helpers that this
# environment removes): their absence is reported as a refusal, not as a typo.
_INJECTION_NAMES = frozenset(
    {
        "config",
        "request",
        "session",
        "g",
        "url_for",
        "get_flashed_messages",
        "cycler",
        "joiner",
        "lipsum",
        "os",
        "sys",
        "builtins",
        "globals",
    }
)
_UNDEFINED_NAME = re.compile(r"'([^']+)' (?:is undefined|has no attribute '([^']+)')")


def _probes_internals(message: str) -> bool:
    found = _UNDEFINED_NAME.search(message)
    if found is None:
        return False
    name = found.group(2) or found.group(1)
    return name.startswith("_") or (found.group(2) is None and name in _INJECTION_NAMES)


def template_error(exc: BaseException, name: str) -> BadInput:
    """Turn any error raised while loading or rendering template ``name`` into one operator line."""
    where, line = _location(exc)
    if isinstance(exc, TemplateSyntaxError):
        where, line = where or exc.name or name, exc.lineno
        what = f"syntax error ({exc.message})"
    elif isinstance(exc, SecurityError):
        what = f"refused unsafe expression ({exc})"
    elif isinstance(exc, UndefinedError) and _probes_internals(exc.message or ""):
        what = f"refused unsafe expression ({exc.message})"
    elif isinstance(exc, UndefinedError):
        what = f"undefined value ({exc.message}); each kind's variables are listed in templates/contexts.yaml"
    elif isinstance(exc, TemplateNotFound):
        what = f"includes a template that does not exist ({exc.name})"
    elif isinstance(exc, BreachError):
        what = str(exc)
    else:
        what = f"{type(exc).__name__}: {exc}"
    unit = "paragraph" if ".docx " in (where or name) else "line"  # Word parts: one paragraph a line
    at = f" {unit} {line}" if line else ""
    return BadInput(f"template {where or name}{at}: {what}")


def load_template(env: BreachSandbox, name: str) -> Template:
    """Load a template by name through the environment's loader; errors name the template."""
    try:
        return env.get_template(name)
    except TemplateNotFound:
        folders = ", ".join(str(p) for p in getattr(env.loader, "searchpath", []))
        raise NotFound(f"no template {name!r} in {folders}") from None
    except TemplateSyntaxError as exc:
        raise template_error(exc, name) from exc


def render_template(template: Template, context: dict[str, Any]) -> str:
    """Render with every failure (sandbox refusal, undefined name, filter error) as ``BadInput``.

    Within the document's budget (see :mod:`engine.documents.bounds`): the output is gathered
    a few pieces at a time and refused once over the size limit, the time limit checked between.
    """
    try:
        with rendering_budget() as budget:
            # The compiled code is run as ``Template.generate`` runs it, without its generator layer
            # and copy of the context: a notice is ~100 pieces, thousands of times over.
            try:
                return "".join(_gather(template.root_render_func(template.new_context(context)), budget))
            except Exception:
                template.environment.handle_exception()  # re-raised with the template's own lines
    except Exception as exc:
        raise template_error(exc, template.name or "<template>") from exc


def _gather(pieces: Iterator[str], budget: Budget) -> list[str]:
    """The pieces a template yields, refused once over the output or the time limit.

    Taken 32 at a time, so that counting and the clock (slow to read on some virtual machines) cost
    little per piece: a runaway template is stopped at most 31 pieces later than one by one would.
    """
    gathered: list[str] = []
    size, limit, deadline = 0, budget.output_bytes, budget.deadline
    while chunk := list(islice(pieces, _CHUNK)):
        size += sum(map(len, chunk))
        if size > limit:
            raise SecurityError(f"output over {current_limits().describe('template_output_bytes')}")
        gathered += chunk
        if monotonic() > deadline:
            budget.check_time()
    return gathered


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    """Jinja's ``format`` filter with printf widths and precisions bounded."""
    from jinja2.filters import do_format

    check_format(str(value))
    return do_format(value, *args, **kwargs)


def strip_unsafe(text: str) -> str:
    """``text`` without control characters, lone surrogates and non-characters (tab, newline kept)."""
    return _UNSAFE_CHARS.sub("", text) if _UNSAFE_CHARS.search(text) else text
