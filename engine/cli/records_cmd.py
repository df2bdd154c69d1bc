"""``breach incident export`` and ``breach incident purge``: evidence bundles and retention."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.complete import IncidentArg
from engine.cli.context import Ctx
from engine.cli.incident_cmd import incident_app
from engine.cli.options import AsOpt

__all__ = ["register"]


@incident_app.command("export")
def export_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle file (default out/<ID>-evidence.zip).")
    ] = None,
    actor: AsOpt = None,
) -> None:
    """Write an evidence bundle: incident, events, deadlines, documents and files, with their hashes."""
    from engine.documents.render import safe_filename
    from engine.record.signing import key_path, load_key
    from engine.retention.export import export_bundle
    from engine.store.db import utcnow

    c: Ctx = ctx.obj
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    target = out or c.workspace.out_dir / safe_filename(incident_id, "evidence", stamp, ext="zip")
    # A workspace made before signing keys existed exports unsigned until 'breach init' runs there again.
    signer = load_key(c.workspace) if key_path(c.workspace).exists() else None
    path, digest = export_bundle(
        c.store(),
        incident_id,
        Path(os.path.abspath(target)),
        actor=c.actor(actor),
        root=c.workspace.home,
        signer=signer,
    )
    print(
        f"{path}\nmanifest sha256 {digest} "
        "(recorded in the audit trail; check the bundle with breach audit verify --bundle)"
    )


@incident_app.command("purge")
def purge_cmd(
    ctx: typer.Context,
    incident_id: IncidentArg,
    reason: Annotated[str, typer.Option("--reason", help="Why the record is deleted now.")],
    actor: AsOpt = None,
) -> None:
    """Delete a closed incident once its retention (PIPL Art 55-56: 3 years) has passed; younger ones stay."""
    from engine.retention.purge import load_retention, purge_incident

    c: Ctx = ctx.obj
    removed = purge_incident(
        c.store(), incident_id, actor=c.actor(actor), reason=reason, retention=load_retention(c.workspace)
    )
    print(
        f"{incident_id} purged ({len(removed)} document files removed); "
        "a tombstone stays in the workspace log"
    )


def register(app: typer.Typer) -> None:
    """The commands register on the incident group when this module is imported."""
