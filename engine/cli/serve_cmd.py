"""``breach serve`` and ``breach token create|list|revoke``: the read-only dashboard and who may open it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from engine.cli.context import Ctx, emit_json, stdout_console
from engine.cli.options import JsonOpt

__all__ = ["register"]

token_app = typer.Typer(help="Access tokens for the dashboard and the HTTP API.", no_args_is_help=True)


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on (default [web] host); beyond loopback only with tokens."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default [web] port; 0 picks a free one).")
    ] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="zh-CN or en (default: workspace).")] = None,
) -> None:
    """Serve the read-only dashboard (incidents, live reports, KPIs) and the API under /api/v1."""
    from engine.errors import BadInput
    from engine.report.words import pick_locale
    from engine.web.serve import bind, run

    c: Ctx = ctx.obj
    c.require_workspace()
    if locale is not None and locale.replace("_", "-").split("-")[0].lower() not in ("zh", "en"):
        raise BadInput(f"--locale {locale!r}: use zh-CN or en")
    chosen = pick_locale(locale or str(c.workspace.settings.get("workspace", {}).get("locale", "zh-CN")))
    web = c.workspace.settings.get("web", {})
    chosen_host = host if host is not None else str(web.get("host", "127.0.0.1"))
    chosen_port = port if port is not None else web.get("port", 8470)
    if not isinstance(chosen_port, int) or isinstance(chosen_port, bool):
        raise BadInput("settings.toml [web] port must be a whole number from 0 to 65535")
    listening = bind(c.workspace, chosen_host, chosen_port)
    guard = "every request needs a token" if listening.tokens_required else "no token needed on loopback"
    print(f"serving {listening.url} ({guard}); API at {listening.url}api/v1/openapi.json", flush=True)
    print("stop with Ctrl-C", flush=True)
    run(c.workspace, listening, locale=chosen)
    print("stopped", flush=True)


@token_app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what the token is for, e.g. ceo-laptop.")],
    role: Annotated[str, typer.Option("--role", help="viewer (pages and API) or api (API only).")],
) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    from engine.tokens import create_token

    c: Ctx = ctx.obj
    token = create_token(c.store(), name=name, role=role, actor=c.actor())
    print(token)
    print(
        f"token {name} ({role}) created: this is the only time it is shown. Browsers sign in at /login; "
        "scripts send 'Authorization: Bearer <token>'. Revoke with: breach token revoke " + name,
        file=sys.stderr,
    )


@token_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every token with its role and when it was created or revoked (never the token)."""
    from engine.tokens import list_tokens

    c: Ctx = ctx.obj
    rows = list_tokens(c.store())
    out = [
        {
            "name": t.name,
            "role": t.role,
            "created_at": c.fmt_time(t.created_at),
            "created_by": t.created_by,
            "revoked_at": c.fmt_time(t.revoked_at) or None,
        }
        for t in rows
    ]
    if as_json:
        emit_json(out)
        return
    if not out:
        print(
            "no tokens: the dashboard serves loopback only "
            "(create one with: breach token create NAME --role viewer)"
        )
        return
    from rich.table import Table

    table = Table("name", "role", "created", "by", "revoked")
    for t in out:
        table.add_row(
            t["name"],
            t["role"],
            c.fmt_short(t["created_at"]),
            t["created_by"],
            c.fmt_short(t["revoked_at"]) if t["revoked_at"] else "",
        )
    stdout_console().print(table)


@token_app.command("revoke")
def revoke_cmd(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: the next request that carries it is refused."""
    from engine.tokens import revoke_token

    c: Ctx = ctx.obj
    revoke_token(c.store(), name=name, actor=c.actor())
    print(f"token {name} revoked")


def register(app: typer.Typer) -> None:
    """Add ``breach serve`` and the token commands to ``app``."""
    app.command("serve")(serve_cmd)
    app.add_typer(token_app, name="token")
