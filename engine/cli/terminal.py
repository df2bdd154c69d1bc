"""What breach prints cannot attack the terminal: control and escape characters are shown escaped.

A title, a person's name or any stored text may hold ``ESC[2J`` (clear the screen), a cursor move, a
bell, an OSC sequence that sets the window title, or a right-to-left override that makes a line read
differently from what it says. Every character of that kind in output is written as ``\\uXXXX``:
readable to the operator, and the very same escape JSON uses, so ``--json`` output stays valid JSON
meaning the same text. Newlines and tabs pass through; Rich's own styling (colours, progress bars)
is produced after the text is escaped and is left alone.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.segment import Segment

__all__ = ["EscapingWriter", "escape_controls", "install", "safe_console"]

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every control, escape and bidi-override character written as ``\\uXXXX``."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class EscapingWriter:
    """A text stream that escapes controls (see :func:`escape_controls`) before writing to ``raw``."""

    def __init__(self, raw: IO[str]) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        """Write ``text`` escaped; return the length of ``text`` as given."""
        self.raw.write(escape_controls(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line escaped."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)  # flush, isatty, fileno, encoding: the real stream's


def install() -> None:
    """Escape everything printed on stdout and stderr from here on (once per process)."""
    if not isinstance(sys.stdout, EscapingWriter):
        sys.stdout = EscapingWriter(sys.stdout)
    if not isinstance(sys.stderr, EscapingWriter):
        sys.stderr = EscapingWriter(sys.stderr)


def _raw(stream: Any) -> IO[str]:
    return stream.raw if isinstance(stream, EscapingWriter) else stream


def safe_console(*, stderr: bool = False, **options: Any) -> Console:
    """A Rich console that escapes controls in the text it shows and keeps its own styling intact."""
    from rich.console import Console
    from rich.segment import Segment

    class _EscapingConsole(Console):
        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            return super()._render_buffer(
                segment if segment.control else Segment(escape_controls(segment.text), segment.style)
                for segment in buffer
            )

    stream = _raw(sys.stderr if stderr else sys.stdout)
    return _EscapingConsole(file=stream, **options)
