"""Options many commands share, declared once so their flags and help read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["AsOpt", "JsonOpt", "RecordOpt"]

AsOpt = Annotated[str | None, typer.Option("--as", help="Act as NAME instead of the OS user.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RecordOpt = Annotated[
    str | None,
    typer.Option("--record", help="For per-record rules: which one, e.g. correction_orders#1."),
]
