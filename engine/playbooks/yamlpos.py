"""YAML loading that remembers where each value came from, so errors can name a file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.errors import BadInput
from engine.files import MAX_INTEGER, check_values, compose_yaml, read_text

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
    """Resolve a scalar with the safe loader's rules (ints, bools, nulls, timestamps as text).

    Numbers stay within ±10**18: a 4,000-digit count is refused (naming the line), not computed with.
    """
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(str(node.value)) > 40:
        raise BadInput(f"line {node.start_mark.line + 1}: refused: a number of more than 40 characters")
    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
    # Timestamps stay text: the engine reads times itself, in the workspace zone.
    if node.tag == "tag:yaml.org,2002:timestamp":
        return str(node.value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise BadInput(f"line {node.start_mark.line + 1}: refused: a number beyond ±10**18")
    if isinstance(value, str):
        try:
            check_values(value, "text", depth_limit=1)  # no NUL, no lone surrogate
        except BadInput as exc:
            raise BadInput(f"line {node.start_mark.line + 1}: {exc}") from None
    return value


def load_located(text: str, source: str) -> LocatedYaml:
    """Parse YAML text; a syntax error becomes ``BadInput`` naming the source and line."""
    # Composed under the alias, depth and expanded-size limits: a 342-byte alias bomb is refused here.
    root, loader = compose_yaml(text, source)
    loader.dispose()
    lines: dict[Path_, int] = {}
    if root is None:
        return LocatedYaml(None, lines, source)
    try:
        data = _construct(root, (), lines)
    except BadInput as exc:
        raise BadInput(f"{source}:{str(exc).removeprefix('line ')}") from None
    return LocatedYaml(data, lines, source)


def load_located_file(path: Path) -> LocatedYaml:
    """Read and parse a YAML file (a regular file within the size limit); unreadable files are bad input."""
    return load_located(read_text(path, what="YAML file"), str(path))
