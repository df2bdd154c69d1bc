"""The static check of templates: every variable a template uses must be declared for its kind in
``templates/contexts.yaml``, so a typo or a stray ``config`` is found by ``breach templates check``
before an operator renders 8,000 notices, not halfway through.

Names are tracked the way Jinja binds them (loop and ``set`` variables, macro arguments), and
attributes of declared objects are checked against their declared fields. Reading the declarations is
:mod:`engine.documents.context_specs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, nodes

from engine.documents.context_specs import load_contexts
from engine.documents.loops import LoopSize, nesting_problem, range_size
from engine.errors import BadInput

if TYPE_CHECKING:
    from engine.documents.templating import BreachSandbox

__all__ = [
    "Problem",
    "check_templates",
]

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
