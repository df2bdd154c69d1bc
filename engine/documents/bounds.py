"""How much one document's rendering may cost: loop iterations, padding widths, output, time.

The sandbox stops a template from reaching Python's internals; these bounds stop it from exhausting
the machine with plain Jinja: ``{% for i in range(100000) %}{% for j in range(100000) %}``,
``'a'.ljust(2000000000)``, ``'{:>1000000000}'.format(x)`` or ``'%01000000000d'|format(1)``. Each bound
is one ``[limits]`` key of settings.toml (``template_*``); the defaults are far above a real notice.
Breaking one raises :class:`~jinja2.sandbox.SecurityError`, which the renderer reports as one line
naming the template, its line and the bound; no file is written for that document, so the rendering
resumes where it stopped once the template is fixed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import SecurityError

from engine.files import current_limits

__all__ = ["Budget", "bounded_range", "check_format", "check_padding", "rendering_budget"]

# %[(key)][flags][width][.precision] and {field:spec}: the numbers that size what is built.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*)(?:\.(\d*))?")
_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


@dataclass
class Budget:
    """What one document may still spend."""

    deadline: float
    iterations_left: int
    output_bytes: int
    width: int
    seconds: int
    spent: dict[str, int] = field(default_factory=dict)

    def tick(self, count: int = 1) -> None:
        """Spend loop iterations; check the clock now and then (a clock read per iteration is slow)."""
        self.iterations_left -= count
        if self.iterations_left < 0:
            limits = current_limits()
            raise SecurityError(f"more loop iterations than {limits.describe('template_iterations')}")
        if self.iterations_left % 1024 == 0:
            self.check_time()

    def check_time(self) -> None:
        """Refuse once the document has taken longer than its time limit."""
        if time.monotonic() > self.deadline:
            raise SecurityError(f"took longer than {current_limits().describe('template_seconds')} seconds")


_budget: ContextVar[Budget | None] = ContextVar("breach_template_budget", default=None)


@contextmanager
def rendering_budget() -> Iterator[Budget]:
    """A fresh budget for one document, from the limits in force."""
    limits = current_limits()
    budget = Budget(
        deadline=time.monotonic() + limits.template_seconds,
        iterations_left=limits.template_iterations,
        output_bytes=limits.template_output_bytes,
        width=limits.template_width,
        seconds=limits.template_seconds,
    )
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def current_budget() -> Budget | None:
    """The budget of the document being rendered (None outside a rendering, e.g. a static check)."""
    return _budget.get()


def bounded_range(*args: int) -> Iterator[int]:
    """``range`` for templates: every value it yields is one iteration spent of the document's budget."""
    numbers = range(*args)
    budget = _budget.get()
    if budget is None:
        limit = current_limits().template_iterations
        if len(numbers) > limit:
            raise SecurityError(f"range of more than {current_limits().describe('template_iterations')}")
        yield from numbers
        return
    for number in numbers:
        budget.tick()
        yield number


def _refuse_width(width: int) -> None:
    limits = current_limits()
    if width > limits.template_width:
        raise SecurityError(f"a width of {width:,}, over {limits.describe('template_width')}")


def check_padding(method: Any, args: tuple[Any, ...]) -> None:
    """Refuse ``str.ljust/rjust/center/zfill/expandtabs`` asked for more than the width limit."""
    if getattr(method, "__name__", "") in _PADDING_METHODS and isinstance(
        getattr(method, "__self__", None), str
    ):
        for value in args:
            if isinstance(value, int) and not isinstance(value, bool):
                _refuse_width(value)
    budget = _budget.get()
    if budget is not None:
        budget.check_time()


def check_format(template_text: str) -> None:
    """Refuse a printf (``%``) or ``str.format`` pattern whose width or precision is over the limit."""
    for width, precision in _PRINTF.findall(template_text):
        for number in (width, precision):
            if number and len(number) < 40:
                _refuse_width(int(number))
            elif number:
                _refuse_width(10**40)
    for spec in _SPEC.findall(template_text):
        for number in re.findall(r"\d+", spec):
            _refuse_width(int(number) if len(number) < 40 else 10**40)
