"""Loops a template check can size before anything renders: ``range()`` loops nested in each other.

The renderer stops any document at ``[limits] template_iterations`` (:mod:`engine.documents.bounds`).
``breach templates check`` finds the loops that would hit that bound from the template's text alone,
so an operator learns it before rendering thousands of notices, each refused at its first document:
constant ranges whose product passes the bound, and a range of computed size inside another range
loop, which no reading of the text can bound. A loop over the document's own data (its recipients, a
notice's measures) is bounded by that data and is not flagged.
"""

from __future__ import annotations

from jinja2 import nodes

from engine.files import current_limits

__all__ = ["LoopSize", "nesting_problem", "range_size"]

LoopSize = int | str | None
"""A loop's size: a range's length, None for ``range(<expression>)``, "data" for any other loop."""


def range_size(node: nodes.Node) -> LoopSize:
    """How many values the loop over ``node`` takes when it is ``range(...)``: a number for constant
    arguments, None for computed ones; "data" when it is not a range at all."""
    if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range"):
        return "data"
    if node.kwargs or node.dyn_args or node.dyn_kwargs:
        return None
    values = [arg.value for arg in node.args if isinstance(arg, nodes.Const)]
    if len(values) != len(node.args) or not all(type(v) is int for v in values):
        return None
    try:
        return len(range(*values))
    except (TypeError, ValueError):
        return None  # range(1, 2, 0) and the like: the renderer reports it


def nesting_problem(size: LoopSize, enclosing: list[LoopSize]) -> str | None:
    """What is wrong with a loop of ``size`` inside the ``enclosing`` loops, or None."""
    if size == "data":
        return None
    ranges = [s for s in enclosing if s != "data"]
    bound = current_limits().template_iterations
    if size is None or None in ranges:
        if not ranges:
            return None  # a single computed range: the renderer's bound holds it
        return (
            "a loop over range() of a computed size inside another range() loop: the iterations have "
            f"no bound this check can see (rendering stops at {bound:,}, the [limits] "
            "template_iterations bound)"
        )
    total = size if isinstance(size, int) else 0
    for outer in ranges:
        total *= outer if isinstance(outer, int) else 0  # ints here: None was handled above
    if total <= bound:
        return None
    what = "nested loops take" if ranges else "this loop takes"
    return (
        f"{what} {total:,} iterations, more than the [limits] template_iterations bound of {bound:,}: "
        "rendering would be refused"
    )
