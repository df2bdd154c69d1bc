"""``breach notices``: the command group, assembled from the modules of its three concerns.

What the notices state (``content``, ``correct``: :mod:`engine.cli.notice_content_cmd`), getting them out
(``render``, ``send``, ``record``, ``resolve``: :mod:`engine.cli.notice_delivery_cmd`) and where they
stand (``status``: :mod:`engine.cli.notice_status_cmd`). Each module keeps a Typer of its own, added here
without a name so that its commands join this group, in this order.
"""

from __future__ import annotations

import typer

from engine.cli.notice_content_cmd import content_app
from engine.cli.notice_delivery_cmd import delivery_app
from engine.cli.notice_status_cmd import status_app

__all__ = ["register"]

notices_app = typer.Typer(
    help="Per-person notices: content, render, send, record, resolve, status.", no_args_is_help=True
)
notices_app.add_typer(content_app)
notices_app.add_typer(delivery_app)
notices_app.add_typer(status_app)


def register(app: typer.Typer) -> None:
    """Add ``breach notices`` to the application."""
    app.add_typer(notices_app, name="notices")
