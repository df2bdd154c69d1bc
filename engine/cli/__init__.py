"""Command-line entry point; keeps ``--version`` off the Typer import path so it starts fast."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``breach`` command."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from engine import __version__

        print(f"breach {__version__}")
        return
    from engine.cli.app import run

    run()
