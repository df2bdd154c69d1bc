"""The Typer application: global options, command groups, and turning errors into exit codes."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Annotated, Any

import typer
import typer.main

from engine import __version__
from engine.cli import (
    approve_cmd,
    assess_cmd,
    audit_cmd,
    clock_cmd,
    config_cmd,
    daemon_cmd,
    deadlines_cmd,
    documents_cmd,
    incident_cmd,
    jurisdiction_cmd,
    notices_cmd,
    people_cmd,
    playbook_cmd,
    records_cmd,
    report_cmd,
    report_data_cmd,
    rules_cmd,
    serve_cmd,
    setup_cmd,
    templates_cmd,
)
from engine.cli.context import Ctx, anchor_opened
from engine.errors import BreachError

__all__ = ["app", "run"]

app = typer.Typer(
    name="breach",
    help="Incident response playbook engine for personal-data leaks.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # Sub-commands inherit the option names from the root context.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"breach {__version__}")
        raise typer.Exit()


# The command's context, for the result callback (click hands it only the command's return value).
_current: list[Ctx] = []


def after_command(*_args: object, **_params: object) -> None:
    """After a successful command: say out loud any clock it started already overdue (on stderr)."""
    for c in _current:
        for line in c.late_warnings():
            print(line, file=sys.stderr)


@app.callback(result_callback=after_command)
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL (else BREACH_DATABASE_URL, else the workspace's SQLite file)."
        ),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option("--home", help="Workspace folder (else BREACH_HOME, else the current folder)."),
    ] = None,
    actor: Annotated[str | None, typer.Option("--as", help="Act as NAME instead of the OS user.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """breach runs a personal-data leak response as a playbook: clocks, assessment, notices, audit."""
    ctx.obj = Ctx(home=home, db=db, actor_option=actor)
    _current[:] = [ctx.obj]


setup_cmd.register(app)
playbook_cmd.register(app)
incident_cmd.register(app)
assess_cmd.register(app)
records_cmd.register(app)
audit_cmd.register(app)
approve_cmd.register(app)
clock_cmd.register(app)
deadlines_cmd.register(app)
people_cmd.register(app)
notices_cmd.register(app)
templates_cmd.register(app)
documents_cmd.register(app)
rules_cmd.register(app)
jurisdiction_cmd.register(app)
report_data_cmd.register(app)
report_cmd.register(app)
serve_cmd.register(app)
config_cmd.register(app)
daemon_cmd.register(app)


def run() -> None:
    """Run the CLI; an operator error is one line on stderr and exit code 2 (1 for a failed check)."""
    from typer.exceptions import TyperException

    from engine.cli.pruning import pruned
    from engine.cli.terminal import install

    install()  # titles, names and any stored text printed below cannot drive the terminal
    try:
        command = typer.main.get_command(pruned(app, sys.argv[1:], ("--db", "--home", "--as")))
        whole_short_help(command)
        # Named outright: run by the daemon, click would read the name off its "python -m" start.
        code = command(standalone_mode=False, prog_name="breach")
        anchor_opened()
    except TyperException as exc:
        _usage_error(exc)
    except BreachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("BREACH_DEBUG"):
            raise
        known = _known_failure(exc)
        if known is not None:
            print(f"error: {known}", file=sys.stderr)
            sys.exit(2)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"error: unexpected {type(exc).__name__}: {detail} (set BREACH_DEBUG=1 for details)",
            file=sys.stderr,
        )
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


def _known_failure(exc: Exception) -> str | None:
    """The one line for a failure that is the operator's input or machine, not a bug (else None).

    The database rolled the transaction back before this is reached: nothing was changed.
    """
    if isinstance(exc, RecursionError):
        return "input nested too deeply to read: flatten it (at most 64 levels)"
    if isinstance(exc, OSError):
        from engine.files import os_error

        return str(os_error(exc.filename or "a file", exc, "cannot use"))
    if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):  # psycopg, before the statement is sent
        return "text with a NUL character cannot be stored: remove it and run the command again"
    db_errors = sys.modules.get("sqlalchemy.exc")  # loaded only by commands that opened a database
    if db_errors is None or not isinstance(exc, db_errors.StatementError):
        return None
    said = str(getattr(exc, "orig", exc) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = said.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return (
            "the SQLite database is locked by another breach process (waited 30 s): "
            "let it finish (see ps -ef | grep breach) and run the command again"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return "the database file is not a breach SQLite database: check --db or BREACH_DATABASE_URL"
    if "disk is full" in lowered or "no space" in lowered:
        return "no space left for the database: free some space and run the command again (nothing changed)"
    if "disk i/o error" in lowered:
        from engine.store.db import DISK_ADVICE

        return f"the database could not be written (disk I/O error): {DISK_ADVICE}"
    if "nul" in lowered or "0x00" in lowered:
        return "text with a NUL character cannot be stored: remove it and run the command again"
    return f"the database refused the command: {said}"


def whole_short_help(command: Any) -> None:
    """Give every command the whole first paragraph of its help as its summary in the listings.

    click cuts a summary to the width left beside the names and ends it with "...": an operator at an
    80-column terminal then reads half a sentence. A summary set explicitly is wrapped instead.
    """
    # Typer carries its own copy of click: its groups are recognised by their commands, not their class.
    for sub in getattr(command, "commands", {}).values():
        if not sub.short_help and sub.help:
            sub.short_help = inspect.cleandoc(sub.help).split("\n\n", 1)[0].replace("\n", " ")
        whole_short_help(sub)


def _usage_error(exc: Exception) -> None:
    """Print a command-line usage problem as one line (help itself, when asked for, stays whole)."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # type: ignore[attr-defined]
        sys.exit(0)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    print(f"error: {message}{hint}", file=sys.stderr)
    sys.exit(int(getattr(exc, "exit_code", 2)))
