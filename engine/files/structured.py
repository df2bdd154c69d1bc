"""YAML, JSON and TOML parsed within bounds: aliases, nesting, expanded size and numbers.

PyYAML's safe loader still expands aliases without limit (a 342-byte "billion laughs" document takes
gigabytes) and recurses once per nesting level; ``json`` and ``tomllib`` recurse too. Here a YAML
document is composed under an alias count and a nesting depth, its size with every alias expanded is
counted before anything is built, and every parsed value is checked: numbers within sane ranges,
no NUL characters and no lone surrogates (text PostgreSQL and UTF-8 files cannot hold).
Every refusal is one :class:`~engine.errors.BadInput` line naming the source, the line when known,
and the limit.
"""

from __future__ import annotations

import json
import math
import tomllib
from typing import Any

import yaml

from engine.errors import BadInput
from engine.files.limits import Limits, current_limits

__all__ = [
    "MAX_INTEGER",
    "check_values",
    "compose_yaml",
    "load_json",
    "load_toml",
    "load_yaml",
    "yaml_scalar",
]

# Larger than any count or amount a leak has (money in fen, people on Earth), and within the 64-bit
# integers both databases store.
MAX_INTEGER = 10**18
_MAX_NUMBER_TEXT = 40  # characters of a number's text before it is refused unread


class _Refused(Exception):
    """A bound broken while composing; carries the line (1-based) when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, counting alias uses and nesting while it composes."""

    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.yaml_aliases:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(f"more aliases than the limit of {self.limits.describe('yaml_aliases')}", line)
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > self.limits.yaml_depth:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(f"nested deeper than the limit of {self.limits.describe('yaml_depth')}", line)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        _check_number_text(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        _check_number_text(node)
        return super().construct_yaml_float(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:float", _BoundedLoader.construct_yaml_float)


def _check_number_text(node: yaml.ScalarNode) -> None:
    if len(str(node.value)) > _MAX_NUMBER_TEXT:
        raise _Refused(f"a number of more than {_MAX_NUMBER_TEXT} characters", node.start_mark.line + 1)


def _expanded_size(root: yaml.Node, bound: int) -> int:
    """How many nodes ``root`` stands for with every alias expanded (stops counting past ``bound``).

    :raises _Refused: when an alias refers to a node that contains it (a recursive document).
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(total, bound + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _Refused("an alias refers to a value that contains it", node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _located(source: str, exc: Exception) -> BadInput:
    """A YAML error or refusal as ``source: line N: what``."""
    if isinstance(exc, _Refused):
        where = f" line {exc.line}:" if exc.line else ""
        return BadInput(f"{source}:{where} refused: {exc}")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}:" if mark is not None else ""
        return BadInput(f"{source}:{where} malformed YAML: {exc.problem or exc.context}")
    return BadInput(f"{source}: malformed YAML: {exc}")


def compose_yaml(
    text: str, source: str, *, limits: Limits | None = None
) -> tuple[yaml.Node | None, _BoundedLoader]:
    """Compose one YAML document under the limits; return its root node (None when empty) and the loader.

    The loader builds values from nodes (``loader.construct_document(node)``) with bounded numbers.

    :raises BadInput: naming ``source``, the line and the limit broken, or the syntax error.
    """
    bounds = limits or current_limits()
    loader = _BoundedLoader(text, bounds)
    try:
        root = loader.get_single_node()
        if root is not None:
            size = _expanded_size(root, bounds.yaml_nodes)
            if size > bounds.yaml_nodes:
                raise _Refused(
                    "more values, once its aliases are expanded, than the limit of "
                    + bounds.describe("yaml_nodes")
                )
    except (_Refused, yaml.YAMLError) as exc:
        loader.dispose()
        raise _located(source, exc) from None
    return root, loader


def load_yaml(text: str, source: str, *, limits: Limits | None = None) -> Any:
    """Parse one YAML document under the limits and check its values (see :func:`check_values`)."""
    root, loader = compose_yaml(text, source, limits=limits)
    try:
        if root is None:
            return None
        data = loader.construct_document(root)
    except (_Refused, yaml.YAMLError) as exc:
        raise _located(source, exc) from None
    except ValueError as exc:  # a value the resolver accepted but Python cannot hold
        raise BadInput(f"{source}: refused: {exc}") from None
    finally:
        loader.dispose()
    check_values(data, source, depth_limit=(limits or current_limits()).yaml_depth)
    return data


def yaml_scalar(loader: _BoundedLoader, node: yaml.Node, source: str) -> Any:
    """One composed scalar as the safe loader reads it (numbers bounded)."""
    try:
        return loader.construct_object(node, deep=True)
    except (_Refused, yaml.YAMLError) as exc:
        raise _located(source, exc) from None
    except ValueError as exc:
        raise BadInput(f"{source}: line {node.start_mark.line + 1}: refused: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number breach accepts")


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_NUMBER_TEXT:
        raise ValueError(f"a number of more than {_MAX_NUMBER_TEXT} digits")
    return int(text)


def load_json(text: str | bytes, source: str, *, limits: Limits | None = None) -> Any:
    """Parse JSON under the nesting limit and check its values (see :func:`check_values`).

    :raises BadInput: naming ``source`` and the line of a syntax error, or the limit broken.
    """
    bounds = limits or current_limits()
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise BadInput(
            f"{source}: refused: nested deeper than the limit of {bounds.describe('json_depth')}"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{source}: refused: {exc}") from None
    check_values(data, source, depth_limit=bounds.json_depth, limit_key="json_depth", limits=bounds)
    return data


def load_toml(text: str, source: str, *, limits: Limits | None = None) -> dict[str, Any]:
    """Parse TOML and check its values (nesting as for JSON).

    :raises BadInput: naming ``source`` and tomllib's description (which carries line and column).
    """
    bounds = limits or current_limits()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise BadInput(
            f"{source}: refused: nested deeper than the limit of {bounds.describe('json_depth')}"
        ) from None
    except ValueError as exc:  # an integer too long for Python to read
        raise BadInput(f"{source}: refused: {exc}") from None
    check_values(data, source, depth_limit=bounds.json_depth, limit_key="json_depth", limits=bounds)
    return data


def check_values(
    data: Any,
    source: str,
    *,
    depth_limit: int,
    limit_key: str = "yaml_depth",
    limits: Limits | None = None,
) -> None:
    """Refuse what no breach input holds: nesting past ``depth_limit``, an integer beyond ±10**18,
    a float that is not finite, and text with a NUL character or a lone surrogate.

    :raises BadInput: naming ``source`` and where in the data the value is.
    """
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            _check_text(value, source, where)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise BadInput(f"{source}: {where or 'value'}: refused: a number beyond ±10**18")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadInput(f"{source}: {where or 'value'}: refused: a number that is not finite")
        elif isinstance(value, dict | list):
            if depth >= depth_limit:
                bound = (limits or current_limits()).describe(limit_key)
                raise BadInput(
                    f"{source}: {where or 'value'}: refused: nested deeper than the limit of {bound}"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                label = f"{where}.{key}" if where else str(key)
                if isinstance(key, str):
                    _check_text(key, source, label)
                stack.append((item, depth + 1, label))


def _check_text(text: str, source: str, where: str) -> None:
    if "\x00" in text:
        raise BadInput(f"{source}: {where or 'value'}: refused: text with a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            f"{source}: {where or 'value'}: refused: text with a lone surrogate (not Unicode)"
        ) from None
