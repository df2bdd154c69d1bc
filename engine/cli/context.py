"""What every command shares: the workspace, the database, the actor, and how output is printed.

Nothing heavy is imported here at module level: the store (SQLAlchemy) and Rich load only inside the
commands that use them, which keeps ``breach --help`` and ``breach incident show`` quick to start.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.errors import BadInput
from engine.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console
    from rich.table import Table

    from engine.incidents.hooks import Hooks
    from engine.store.db import Store
    from engine.store.readmodel import Reader

__all__ = ["Ctx", "anchor_opened", "database_login", "emit_json", "key_table", "os_account", "stdout_console"]

# The contexts of this process that opened the database: after a command, what it changed is anchored.
_OPENED: list[Ctx] = []


@dataclass
class Ctx:
    """Options given before the command (``--home``, ``--db``, ``--as``) and lazily opened resources."""

    home: str | None = None
    db: str | None = None
    actor_option: str | None = None
    _store: Store | None = field(default=None, repr=False)
    _hooks: Hooks | None = field(default=None, repr=False)

    @cached_property
    def workspace(self) -> Workspace:
        """The workspace in force: refused when another account could change it, its limits applied.

        :raises BadInput: naming a loose path and the ``chmod`` that fixes it, or a bad ``[limits]``.
        """
        from engine.files import check_trusted, configure_limits, limits_from_settings

        workspace = Workspace.resolve(self.home, self.db)
        check_trusted(workspace.home)  # before a setting, playbook or template of it is read
        configure_limits(limits_from_settings(workspace.settings))
        return workspace

    @property
    def zone(self) -> str:
        """The workspace's time zone."""
        return self.workspace.timezone

    @cached_property
    def account(self) -> str:
        """The account acting, which no option or environment variable can change.

        On SQLite it is the OS account of the real user id (``USER`` and ``LOGNAME`` are not read: any
        process can set them); on PostgreSQL the database login (``session_user``), each operator
        connecting as themselves.
        """
        if not self.workspace.db_url.startswith("sqlite"):
            return database_login(self.store())
        return os_account()

    def actor(self, override: str | None = None) -> str:
        """Who is recorded as acting: the account; with ``--as NAME`` (on the command, else global),
        "NAME (entered by ACCOUNT)", which holds the account's roles, never NAME's."""
        from engine.access import entered_for, identity_key, normal_name

        given = override or self.actor_option
        if given is None or not given.strip():
            return self.account
        name = normal_name(given, what="--as name")
        if identity_key(name) == identity_key(self.account):
            return self.account
        return entered_for(name, self.account)

    def require_workspace(self) -> None:
        """Refuse to run against a folder that is not a workspace (no silent new database)."""
        if not self.workspace.is_initialised:
            raise BadInput(
                f"{self.workspace.home} is not a breach workspace: run 'breach init' there, "
                "or pass --home DIR or --db URL"
            )

    def store(self) -> Store:
        """The database, opened once per command, checked to be initialised."""
        if self._store is None:
            self.require_workspace()
            from engine.store.db import Store

            store = Store(self.workspace.db_url)
            store.check_ready()
            self._store = store
            _OPENED.append(self)
            from engine.record.configuration import record_configuration

            # Edited settings, roles, playbooks or templates enter the record before anything uses them.
            record_configuration(store, self.workspace, actor=self.account)
        return self._store

    def hooks(self) -> Hooks:
        """The in-transaction hooks (assessment, deadlines) of this workspace, built once."""
        if self._hooks is None:
            from engine.wiring import hooks_for

            self._hooks = hooks_for(self.workspace)
        return self._hooks

    def late_warnings(self) -> list[str]:
        """What this command's steps said of clocks that started already overdue, one line each."""
        if self._hooks is None:
            return []
        from engine.deadlines.sync import DeadlineHook

        lines: list[str] = []
        for hook in self._hooks.after_change:
            if isinstance(hook, DeadlineHook):
                lines += [late.advice(self.zone) for late in hook.late_starts]
        return list(dict.fromkeys(lines))

    def reader(self) -> Reader:
        """A fast read-only connection for display commands."""
        self.require_workspace()
        from engine.store.readmodel import Reader

        return Reader(self.workspace.db_url)

    def fmt_time(self, value: datetime | str | None) -> str:
        """A moment as ISO-8601 with the workspace zone's offset (empty for none)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(ZoneInfo(self.zone)).isoformat(timespec="seconds")

    def fmt_short(self, value: datetime | str | None) -> str:
        """A moment for tables: local date and time to the minute, with the offset. Local midnight is
        shown as 24:00 of the day before: a period in days ends then (Civil Code Art 203), and an order
        due "2026-12-20" then reads 2026-12-20 24:00 here as in the documents."""
        full = self.fmt_time(value)
        if not full:
            return "—"
        if full[11:19] == "00:00:00":
            day = date.fromisoformat(full[:10]) - timedelta(days=1)
            return f"{day.isoformat()} 24:00 {full[19:]}"
        return f"{full[:10]} {full[11:16]} {full[19:]}"


def os_account() -> str:
    """The OS account of the real user id: who acts on a SQLite workspace."""
    import pwd

    from engine.access import normal_name

    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = f"uid {os.getuid()}"
    return normal_name(name, what="OS account")


def database_login(store: Store) -> str:
    """The database login (``session_user``): who acts on a PostgreSQL workspace."""
    from sqlalchemy import text

    from engine.access import normal_name

    with store.read() as session:
        login = session.execute(text("SELECT session_user")).scalar_one()
    return normal_name(str(login), what="database login")


def anchor_opened() -> None:
    """Sign the heads a successful command moved into the workspace's anchor file.

    A workspace without a signing key (made before keys existed) is skipped until ``breach init`` runs
    again there; a database that no longer extends the anchors is not signed, and the operator is told.
    """
    from engine.errors import BreachError

    while _OPENED:
        c = _OPENED.pop()
        if c._store is None:
            continue
        from engine.record.signing import key_path

        if not key_path(c.workspace).exists():
            continue
        from engine.record.anchors import anchor_now

        try:
            anchor_now(c._store, c.workspace, full=False)
        except BreachError as exc:
            print(f"warning: {exc}; run 'breach audit verify --all'", file=sys.stderr)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (UTF-8, not ASCII-escaped) on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=_default) + "\n")


PIPE_WIDTH = 4000
"""Output to a pipe or a file is not squeezed to a terminal's width: ``grep`` must find whole ids."""


def stdout_console() -> Console:
    """A Rich console on stdout that escapes controls in what it shows: the terminal's width on a
    terminal, lines left whole on a pipe or file."""
    from engine.cli.terminal import safe_console

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return safe_console(highlight=False, soft_wrap=False, width=width)


def key_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    keys: Sequence[str] = (),
    title: str | None = None,
) -> Table:
    """A table whose ``keys`` columns (ids, rules, triggers, task names: what gets typed) are never cut
    nor wrapped, whatever the width; the other columns fold onto more lines instead of being cut."""
    from rich.cells import cell_len
    from rich.table import Table

    table = Table(title=title)
    for i, header in enumerate(headers):
        if header in keys:
            widest = max([cell_len(header)] + [cell_len(str(r[i])) for r in rows])
            table.add_column(header, no_wrap=True, min_width=widest, overflow="ignore")
        else:
            table.add_column(header, overflow="fold")
    for r in rows:
        table.add_row(*r)
    return table
