"""Build only the command a command line names, not every command of the application.

Typer turns each registered function into a click command by reading its signature and resolving its
annotations: for the 57 commands of breach that is about a quarter of a second, on every run, before
the command itself starts. ``breach task done ID TASK`` needs one of them. :func:`pruned` returns a
copy of the application holding just the group and command the arguments name, so only that one is
built. Anything it does not recognise (help for the whole application, a misspelt name, shell
completion, a group's own options) gets the whole application, so listings, suggestions and errors
read as before.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import typer
from typer.models import CommandInfo, TyperInfo

__all__ = ["pruned"]


def _command_name(info: CommandInfo) -> str | None:
    if isinstance(info.name, str):
        return info.name
    callback = info.callback
    return callback.__name__.lower().replace("_", "-") if callback is not None else None


def _group_name(info: TyperInfo) -> str | None:
    if isinstance(info.name, str):
        return info.name
    own = getattr(info.typer_instance, "info", None)
    name = getattr(own, "name", None)
    return name if isinstance(name, str) else None


def _only(app: typer.Typer, args: Sequence[str]) -> typer.Typer:
    """``app`` holding only what ``args[0]`` names (recursively for a group); ``app`` when unsure."""
    if not args or args[0].startswith("-"):
        return app
    groups = [(info, _group_name(info)) for info in app.registered_groups]
    commands = [(info, _command_name(info)) for info in app.registered_commands]
    names = [name for _, name in groups + commands]
    if None in names or names.count(args[0]) != 1:
        return app
    smaller = copy.copy(app)
    smaller.registered_commands = [info for info, name in commands if name == args[0]]
    smaller.registered_groups = []
    for info, name in groups:
        if name == args[0] and info.typer_instance is not None:
            inner = copy.copy(info)
            inner.typer_instance = _only(info.typer_instance, args[1:])
            smaller.registered_groups = [inner]
    return smaller


def pruned(app: typer.Typer, argv: Sequence[str], value_options: Sequence[str]) -> typer.Typer:
    """The part of ``app`` that ``argv`` (without the program name) runs.

    ``value_options`` are the application's own options that take a value (``--db URL``): they may
    come before the command's name.
    """
    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return app  # shell completion lists every command
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        option = argv[i].split("=", 1)[0]
        if option not in value_options:
            return app  # --help, --version, --install-completion: the whole application
        i += 1 if "=" in argv[i] else 2
    return _only(app, argv[i:])
