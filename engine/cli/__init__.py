"""Command-line entry point, with fast paths for the commands people and scripts run most.

When ``breach daemon start`` left a warm process for this account, every other command is handed to it
(:mod:`engine.cli.relay`) and starts in a tenth of the time. Otherwise:
``breach --version`` and ``breach [--home D] [--db U] [--as N] incident show ID [--json|--full]`` are answered
before Typer loads: Typer and its parameter conversion cost more than the whole start-up budget of a read
command. Any other command line, including these with other options, goes through the Typer app.
"""

from __future__ import annotations

import sys

__all__ = ["main", "run_here"]

_GLOBAL_OPTIONS = ("--home", "--db", "--as")


def _fast_show(argv: list[str]) -> bool:
    """Answer ``incident show ID [--json|--full]`` directly; False when the command line is anything else."""
    options: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i] in _GLOBAL_OPTIONS:
        if i + 1 >= len(argv):
            return False
        options[argv[i]] = argv[i + 1]
        i += 2
    rest = argv[i:]
    if len(rest) not in (3, 4) or rest[:2] != ["incident", "show"] or rest[2].startswith("-"):
        return False
    if rest[3:] not in ([], ["--json"], ["--full"]):
        return False
    as_json = rest[3:] == ["--json"]
    from engine.cli.context import Ctx, emit_json
    from engine.cli.views import incident_json, print_incident
    from engine.errors import BreachError

    c = Ctx(home=options.get("--home"), db=options.get("--db"), actor_option=options.get("--as"))
    try:
        reader = c.reader()
        try:
            # The human view counts per-person notices instead of listing each of them.
            row = reader.incident(rest[2], every_document=as_json)
        finally:
            reader.close()
        if as_json:
            emit_json(incident_json(c, row))
        else:
            print_incident(c, row, full=rest[3:] == ["--full"])
    except BreachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    return True


def main() -> None:
    """Run the ``breach`` command: in the account's warm daemon when one runs, else here."""
    argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        from engine import __version__

        print(f"breach {__version__}")
        return
    if argv[:1] != ["daemon"]:
        from engine.cli.relay import relay

        code = relay(argv)
        if code is not None:
            sys.exit(code)
    run_here()


def run_here() -> None:
    """Run the ``breach`` command in this process."""
    argv = sys.argv[1:]
    if "incident" in argv and _fast_show(argv):
        return
    import os

    # Typer converts every parameter through pydantic, whose first use scans the entry points of every
    # installed distribution for plugins (tens of milliseconds per command). breach uses none; whoever
    # wants one sets the variable themselves.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from engine.cli.app import run

    run()
