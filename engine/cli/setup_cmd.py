"""``breach init``, ``breach db upgrade`` and ``breach demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json
from engine.cli.options import JsonOpt
from engine.errors import BadInput
from engine.workspace import OVERRIDE_DIRS, Workspace

__all__ = ["init_workspace", "register"]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def init_workspace(home: Path, db_url: str | None = None) -> Workspace:
    """Create the workspace folders and bring its database to the current schema."""
    if home.exists() and not home.is_dir():
        raise BadInput(f"{home} exists and is not a folder")
    from engine.files import make_private_dirs

    # 0700 whatever the umask: what another account could write there would change the response.
    make_private_dirs(home, *OVERRIDE_DIRS, "out", root=home.parent)
    (home / "out").chmod(0o700)  # generated notices are personal data, even in an older workspace
    workspace = Workspace.resolve(home, db_url)
    _write_examples(workspace)
    from engine.migrations.migrate import upgrade
    from engine.store.db import Store

    store = Store(workspace.db_url)
    try:
        upgrade(store)
    finally:
        store.dispose()
    if workspace.db_url_override is None:
        workspace.db_path.chmod(0o600)
    from engine.record.signing import create_key

    # The key that signs the record's anchors and bundles lives here, never in the database.
    create_key(workspace)
    return workspace


EXAMPLES = ("notice-content.example.yaml",)


def _write_examples(workspace: Workspace) -> None:
    """Copy the documented example files into the workspace (an edited copy is never overwritten)."""
    from engine.documents.render import write_private
    from engine.workspace import builtin_root

    for name in EXAMPLES:
        if not (workspace.home / name).exists():
            source = builtin_root() / "templates" / name
            write_private(workspace.home, name, source.read_bytes(), root=workspace.home)
    from engine.cli.config_cmd import commented_settings
    from engine.workspace import SETTINGS_FILE

    # Every setting, explained and commented out: found where operators look, changing nothing.
    config = workspace.home / "config"
    if not os.path.lexists(config / SETTINGS_FILE):
        builtin = (builtin_root() / "config" / SETTINGS_FILE).read_text(encoding="utf-8")
        write_private(config, SETTINGS_FILE, commented_settings(builtin).encode("utf-8"), root=workspace.home)


def register(app: typer.Typer) -> None:
    """Add the set-up commands to ``app``."""

    @app.command("init")
    def init(
        ctx: typer.Context,
        directory: Annotated[
            Path | None,
            typer.Argument(help="Folder to make a workspace (default: --home or the current folder)."),
        ] = None,
    ) -> None:
        """Create a workspace: its SQLite database and empty playbooks/, templates/, config/ overrides."""
        c: Ctx = ctx.obj
        home = directory if directory is not None else c.workspace.home
        workspace = init_workspace(home.expanduser().resolve(), c.db)
        where = workspace.db_url_override or str(workspace.db_path)
        print(f"workspace ready at {workspace.home} (database: {_redact(where)})")
        from engine.access import grant_command
        from engine.cli.team import name_first_member

        first = name_first_member(workspace)
        if first is not None:
            print(
                f"you are member {first.account} with roles {', '.join(first.roles) or 'none'} "
                f"(config/settings.toml); add colleagues with: {grant_command('ACCOUNT', first.roles)}"
            )
        print(
            "next: set [firm] and [smtp] in config/settings.toml (every setting is there, commented; "
            "breach config check); the fields of notice content are in notice-content.example.yaml"
        )

    @db_app.command("upgrade")
    def db_upgrade(ctx: typer.Context) -> None:
        """Bring the database to the schema of this release."""
        c: Ctx = ctx.obj
        c.require_workspace()
        from engine.migrations.migrate import upgrade
        from engine.store.db import Store

        revision = upgrade(Store(c.workspace.db_url))
        print(f"database at revision {revision}")

    app.add_typer(db_app, name="db")

    @app.command("whoami")
    def whoami(
        ctx: typer.Context,
        as_json: JsonOpt = False,
    ) -> None:
        """The account breach records you as, and the member and roles settings give it."""
        from engine.access import RoleMap, no_members_line

        c: Ctx = ctx.obj
        c.require_workspace()
        account = c.account
        roles = RoleMap.from_settings(c.workspace.settings)
        member = roles.member(account)
        held = roles.roles_of(account)
        if as_json:
            emit_json({"account": account, "name": member.name if member else None, "roles": sorted(held)})
            return
        shown = member.described if member else "not a member in settings"
        listed = ", ".join(sorted(held)) or "none"
        if not roles.named:
            from engine.cli.team import roles_in_use

            listed += f" ({no_members_line(account, roles_in_use(c.workspace))})"
        print(f"{account}: {shown}; roles: {listed}")

    @app.command("demo")
    def demo(ctx: typer.Context) -> None:
        """Walk a sample incident (an agency firm's client ledger leaked) through every phase."""
        from engine.cli.demo import run_demo

        c: Ctx = ctx.obj
        run_demo(c)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
