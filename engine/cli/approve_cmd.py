"""``breach approve ID REQUEST``: the approver gives an approval under their own identity."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.context import Ctx

__all__ = ["register"]


def approve_cmd(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(help="The incident.")],
    request: Annotated[int, typer.Argument(help="The request number the requester was given.")],
) -> None:
    """Approve a pending request and take the step it asks for: run by the approver themselves."""
    from engine.access import RoleMap
    from engine.approvals.service import approve
    from engine.deadlines.waiver import waive
    from engine.errors import BadInput

    c: Ctx = ctx.obj
    if c.actor_option:
        raise BadInput("an approval is given under your own account: --as is not accepted here")
    hooks = c.hooks()
    done = approve(
        c.store(),
        incident_id,
        request,
        account=c.account,
        roles=hooks.roles or RoleMap({}),
        hooks=hooks,
        zone=c.zone,
        waive=waive,
    )
    if done.trigger is not None:
        moved = done.trigger
        print(
            f"{incident_id}: request {request} approved: {moved.trigger}: {moved.from_state} → "
            f"{moved.to_state} (version {moved.version})"
        )
        for effect in moved.effects:
            print(f"  {effect}")
    else:
        print(f"{incident_id}: request {request} approved: deadline {done.step} waived")
    from engine.cli.summary import after_write

    after_write(c, incident_id)


def register(app: typer.Typer) -> None:
    """Add ``breach approve`` to ``app``."""
    app.command("approve")(approve_cmd)
