"""The static check of templates: every variable a template uses must be declared for its kind in
``templates/contexts.yaml``, so a typo or a stray ``config`` is found by ``breach templates check``
before an operator renders 8,000 notices, not halfway through.

Names are tracked the way Jinja binds them (loop and ``set`` variables, macro arguments), and
attributes of declared objects are checked against their declared fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, nodes

from engine.documents.loops import LoopSize, nesting_problem, range_size
from engine.errors import BadInput

if TYPE_CHECKING:
    from engine.documents.templating import BreachSandbox

__all__ = [
    "CONTEXTS_FILE",
    "Problem",
    "check_templates",
    "context_problems",
    "load_contexts",
    "templates_in_force",
]

CONTEXTS_FILE = "contexts.yaml"
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
_SPECIAL_NAMES = frozenset({"self", "super"})
_PASS_THROUGH_FILTERS = frozenset(
    {
        "sort",
        "reverse",
        "list",
        "unique",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "default",
        "d",
        "tbd",
    }
)


@dataclass(frozen=True)
class Problem:
    """One finding of ``check_templates``: the file, the line (paragraph for Word) and what is wrong."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


def _variables(body: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    return (body.get("variables") or {}).items()


def _resolve_spec(spec: dict[str, Any], blocks: dict[str, Any]) -> dict[str, Any]:
    if "use" in spec:
        spec = {**blocks[spec["use"]], **{k: v for k, v in spec.items() if k != "use"}}
    spec = dict(spec)
    if "fields" in spec:
        spec["fields"] = {k: _resolve_spec(v, blocks) for k, v in spec["fields"].items()}
    if "items" in spec:
        spec["items"] = _resolve_spec(spec["items"], blocks)
    return spec


def load_contexts(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read the contexts file: kind -> {variable -> spec}, common variables merged and ``use:`` resolved."""
    import yaml

    from engine.workspace import builtin_root

    path = path or builtin_root() / "templates" / CONTEXTS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    blocks = data.get("blocks", {})
    common = {k: _resolve_spec(v, blocks) for k, v in data.get("common", {}).items()}
    return {
        kind: {**common, **{k: _resolve_spec(v, blocks) for k, v in _variables(body)}}
        for kind, body in data["kinds"].items()
    }


class _Checker:
    """Walks a template's AST with the declared variables in scope, the way Jinja binds names."""

    def __init__(self, env: BreachSandbox, declared: dict[str, Any], file: Path, prefix: str = "") -> None:
        self.env, self.declared, self.file, self.prefix = env, declared, file, prefix
        self.problems: list[Problem] = []
        # The loops around the node being visited: a range's size, None for range(<expression>), or
        # "data" for a loop over the document's own data (bounded by that data, not flagged).
        self.loops: list[LoopSize] = []

    def report(self, node: nodes.Node, message: str) -> None:
        self.problems.append(Problem(self.file, node.lineno, self.prefix + message))

    def resolve(self, node: nodes.Node, scope: dict[str, Any]) -> dict[str, Any] | None:
        """The declared spec an expression stands for, or None when unknown (then anything goes)."""
        if isinstance(node, nodes.Name):
            return scope[node.name] if node.name in scope else self.declared.get(node.name)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            parent = self.resolve(node.node, scope)
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if parent is None:
                return None
            if isinstance(key, str):
                field: dict[str, Any] | None = parent.get("fields", {}).get(key)
                return field
            return parent.get("items") if isinstance(key, int) else None
        if isinstance(node, nodes.Filter) and node.node is not None:
            inner = self.resolve(node.node, scope)
            if inner and node.name in ("first", "last", "random"):
                return inner.get("items")
            return inner if node.name in _PASS_THROUGH_FILTERS else None
        return None

    def bind(self, target: nodes.Node, scope: dict[str, Any], spec: dict[str, Any] | None) -> None:
        for name in target.find_all(nodes.Name) if not isinstance(target, nodes.Name) else [target]:
            scope[name.name] = spec if isinstance(target, nodes.Name) else None

    def check_key(self, node: nodes.Getattr | nodes.Getitem, key: object, scope: dict[str, Any]) -> None:
        if isinstance(key, str) and key.startswith("_"):
            self.report(node, f"refused unsafe attribute {key!r} (names starting with '_' are private)")
            return
        parent = self.resolve(node.node, scope)
        if (
            isinstance(key, str)
            and parent
            and "fields" in parent
            and key not in parent["fields"]
            and key not in _DICT_METHODS
        ):
            self.report(
                node,
                f"undeclared variable {_dotted(node.node)}.{key} "
                f"(declared: {', '.join(sorted(parent['fields']))})",
            )

    def check_nesting(self, node: nodes.For, size: LoopSize) -> None:
        problem = nesting_problem(size, self.loops)
        if problem:
            self.report(node, problem)

    def visit(self, node: nodes.Node, scope: dict[str, Any]) -> None:
        if isinstance(node, nodes.Name):
            if (
                node.ctx == "load"
                and node.name not in scope
                and node.name not in self.declared
                and node.name not in self.env.globals
                and node.name not in _SPECIAL_NAMES
            ):
                self.report(node, f"undeclared variable {node.name!r}")
            return
        if isinstance(node, nodes.Getattr):
            self.check_key(node, node.attr, scope)
        elif isinstance(node, nodes.Getitem):
            self.check_key(node, getattr(node.arg, "value", None), scope)
        elif (
            isinstance(node, nodes.Filter)
            and node.name == "attr"
            and node.args
            and isinstance(node.args[0], nodes.Const)
            and str(node.args[0].value).startswith("_")
        ):
            self.report(
                node, f"refused unsafe attribute {node.args[0].value!r} (names starting with '_' are private)"
            )
        elif isinstance(node, nodes.For):
            self.visit(node.iter, scope)
            inner = {**scope, "loop": None}
            spec = self.resolve(node.iter, scope)
            self.bind(node.target, inner, spec.get("items") if spec else None)
            size = range_size(node.iter)
            self.check_nesting(node, size)
            self.loops.append(size)
            for child in [*([node.test] if node.test else []), *node.body]:
                self.visit(child, inner)
            self.loops.pop()
            for child in node.else_:
                self.visit(child, scope)
            return
        elif isinstance(node, nodes.Assign):
            self.visit(node.node, scope)
            self.bind(node.target, scope, self.resolve(node.node, scope))
            return
        elif isinstance(node, nodes.AssignBlock | nodes.Import | nodes.FromImport):
            names = (
                [node.target]
                if not isinstance(node, nodes.FromImport)
                else [n[1] if isinstance(n, tuple) else n for n in node.names]
            )
            # An import binds a name; a {% set %} block a name or a namespace reference (ns.x binds ns).
            bound = [
                n if isinstance(n, str) else n.name
                for n in names
                if isinstance(n, str | nodes.Name | nodes.NSRef)
            ]
            scope.update(dict.fromkeys(bound))
        elif isinstance(node, nodes.Macro | nodes.CallBlock | nodes.With):
            if isinstance(node, nodes.Macro):
                scope[node.name] = None
            # What is evaluated outside the block, and the names the block binds for its body.
            if isinstance(node, nodes.With):
                outside, params = list(node.values), list(node.targets)
            else:
                outside = [*node.defaults, *([node.call] if isinstance(node, nodes.CallBlock) else [])]
                params = list(node.args)
            for child in outside:
                self.visit(child, scope)
            inner = {**scope, "caller": None, "varargs": None, "kwargs": None}
            for target in params:
                self.bind(target, inner, None)
            for child in node.body:
                self.visit(child, inner)
            return
        if isinstance(node, nodes.Include | nodes.Extends | nodes.Import | nodes.FromImport) and isinstance(
            node.template, nodes.Const
        ):
            try:
                self.env.loader.get_source(self.env, node.template.value)  # type: ignore[union-attr]
            except TemplateNotFound:
                self.report(node, f"uses template {node.template.value!r}, which does not exist")
        for child in node.iter_child_nodes():
            self.visit(child, scope)


def _dotted(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_dotted(node.node)}[{getattr(node.arg, 'value', '…')!r}]"
    return "(expression)"


def _check_source(
    env: BreachSandbox, source: str, declared: dict[str, Any], file: Path, prefix: str = ""
) -> list[Problem]:
    try:
        ast = env.parse(source)
        env.compile(ast)  # unknown filters and tests are only found when compiling
    except TemplateSyntaxError as exc:
        return [Problem(file, exc.lineno, f"{prefix}syntax error: {exc.message}")]
    checker = _Checker(env, declared, file, prefix)
    top_level: dict[str, Any] = {}  # names set or imported at the top stay bound for what follows
    for child in ast.body:
        checker.visit(child, top_level)
    return checker.problems


def check_templates(search_paths: Iterable[Path], *, contexts: Path | None = None) -> list[Problem]:
    """Parse every template (workspace and built-in) and report syntax errors, undeclared variables,
    private attributes and unknown kinds, each with its file and line (paragraph for Word files).

    A template ``<kind>.<format>.j2`` is checked against its kind's variables; a partial (a name
    starting with ``_``, such as a layout) against the variables of every kind.
    """
    from engine.documents.docx import docx_template_sources
    from engine.documents.templating import get_environment

    kinds = load_contexts(contexts)
    every: dict[str, Any] = {}
    for fields in kinds.values():
        every.update(fields)
    paths = [Path(p) for p in search_paths]
    problems: list[Problem] = []
    for root in paths:
        for folder in sorted(p for p in root.glob("*") if p.is_dir()):
            for file in sorted(f for f in folder.iterdir() if f.suffix in (".j2", ".docx")):
                kind = file.name.split(".", 1)[0]
                declared = every if kind.startswith("_") else kinds.get(kind)
                if declared is None:
                    known = ", ".join(kinds)
                    problems.append(Problem(file, None, f"no document kind {kind!r} (known: {known})"))
                    continue
                env = get_environment(paths, folder.name, docx=file.suffix == ".docx")
                try:
                    if file.suffix == ".docx":
                        for part, source in docx_template_sources(file.read_bytes()).items():
                            where = f"{part} (line = paragraph number): "
                            problems += _check_source(env, source, declared, file, where)
                    else:
                        problems += _check_source(env, file.read_text(encoding="utf-8"), declared, file)
                except (UnicodeDecodeError, BadInput) as exc:
                    problems.append(Problem(file, None, f"unreadable template: {exc}"))
    return problems


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "list": (list, tuple),
    "object": (dict,),
    "date": (date,),
    "datetime": (datetime,),
}


def context_problems(kind: str, context: dict[str, Any], *, contexts: Path | None = None) -> list[str]:
    """What is wrong with ``context`` for ``kind`` against the contexts file: missing or null values
    that are not optional, wrong types, naive datetimes, codes outside their choices.

    Rendering does not call this (it would cost every notice time); the code that builds contexts
    runs it in its tests. ``locale`` and ``timezone`` may be left out: the renderer sets them.
    """
    declared = load_contexts(contexts).get(kind)
    if declared is None:
        return [f"no document kind {kind!r}"]
    problems: list[str] = []
    for name, spec in declared.items():
        if name not in ("locale", "timezone"):
            _check_value(name, context.get(name), spec, name in context, problems)
    return problems


def _check_value(path: str, value: Any, spec: dict[str, Any], present: bool, problems: list[str]) -> None:
    if value is None:
        if not spec.get("optional"):
            problems.append(f"{path}: {'null' if present else 'missing'} but required ({spec['type']})")
        return
    kind = spec["type"]
    wrong = (
        not isinstance(value, _TYPES[kind])
        or (kind == "int" and isinstance(value, bool))
        or (kind == "date" and isinstance(value, datetime))
    )
    if wrong:
        problems.append(f"{path}: expected {kind}, got {type(value).__name__}")
    elif kind == "datetime" and value.utcoffset() is None:
        problems.append(f"{path}: datetime without a time zone")
    elif "choices" in spec and value not in spec["choices"]:
        problems.append(f"{path}: {value!r} is not one of {', '.join(spec['choices'])}")
    elif kind == "object":
        for field, sub in spec.get("fields", {}).items():
            _check_value(f"{path}.{field}", value.get(field), sub, field in value, problems)
    elif kind == "list" and "items" in spec:
        for index, item in enumerate(value):
            _check_value(f"{path}[{index}]", item, spec["items"], True, problems)


_FILES = {
    "md": ("md.j2",),
    "html": ("html.j2",),
    "pdf": ("html.j2",),
    "sms": ("sms.j2",),
    "eml": ("subject.j2", "md.j2", "html.j2"),
    "docx": ("docx",),
}


def templates_in_force(search_paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Each template file in use per kind and locale: the formats it serves, the file that wins the
    search (workspace before built-in, then the fallback locale) and where that file comes from."""
    from engine.documents.render import KINDS
    from engine.documents.templating import FALLBACK_LOCALE, locale_dirs

    paths = [Path(p) for p in search_paths]
    locales = sorted(
        {
            d.name
            for root in paths
            if root.is_dir()
            for d in root.iterdir()
            if d.is_dir() and not d.name.startswith((".", "_"))
        },
        key=lambda name: (name != FALLBACK_LOCALE, name),
    )
    rows: list[dict[str, Any]] = []
    for locale in locales:
        dirs = locale_dirs(paths, locale)
        partials = sorted({f.name for d in dirs if d.is_dir() for f in d.glob("_*.j2")})
        wanted: dict[tuple[str, str], list[str]] = {}
        for spec in KINDS.values():
            for fmt in spec.formats:
                for suffix in _FILES[fmt]:
                    wanted.setdefault((spec.name, f"{spec.name}.{suffix}"), []).append(fmt)
        wanted.update({("(partial)", name): [] for name in partials})
        for (kind, name), formats in wanted.items():
            found = next((d / name for d in dirs if (d / name).is_file()), None)
            source = (
                "missing"
                if found is None
                else "workspace"
                if paths and found.is_relative_to(paths[0])
                else "built-in"
            )
            if found is not None and found.parent.name != locale:
                source += f" ({found.parent.name} fallback)"
            rows.append(
                {
                    "kind": kind,
                    "locale": locale,
                    "formats": list(dict.fromkeys(formats)),
                    "file": name,
                    "path": str(found) if found else None,
                    "source": source,
                }
            )
    return rows
