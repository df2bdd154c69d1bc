"""YAML loading that remembers where each value came from, so errors can name a file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.errors import BadInput

__all__ = ["LocatedYaml", "load_located", "load_located_file"]

Path_ = tuple[str | int, ...]


class LocatedYaml:
    """A parsed YAML document plus the line of every mapping key and sequence item in it."""

    def __init__(self, data: Any, lines: dict[Path_, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line_of(self, loc: Path_) -> int:
        """The line of the deepest part of ``loc`` that exists in the document (1-based)."""
        for cut in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:cut]))
            if line is not None:
                return line
        return 1


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """Turn a composed node into plain Python values while recording each path's line."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise BadInput(f"line {key_node.start_mark.line + 1}: a mapping key must be plain text")
            key = _scalar(key_node)
            if key in result:
                raise BadInput(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, (*path, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, index), lines) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar with the safe loader's rules (ints, bools, nulls, timestamps as text)."""
    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
    # Timestamps stay text: the engine reads times itself, in the workspace zone.
    if node.tag == "tag:yaml.org,2002:timestamp":
        return str(node.value)
    return value


def load_located(text: str, source: str) -> LocatedYaml:
    """Parse YAML text; a syntax error becomes ``BadInput`` naming the source and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{source}{line}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{source}: malformed YAML: {exc}") from None
    lines: dict[Path_, int] = {}
    if root is None:
        return LocatedYaml(None, lines, source)
    try:
        data = _construct(root, (), lines)
    except BadInput as exc:
        raise BadInput(f"{source}:{str(exc).removeprefix('line ')}") from None
    return LocatedYaml(data, lines, source)


def load_located_file(path: Path) -> LocatedYaml:
    """Read and parse a YAML file; unreadable files are bad input too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    return load_located(text, str(path))
