"""The ENISA 2013 severity aid for the GDPR risk determinations: SE = DPC × EI + CB, with its arithmetic.

An aid, not a decision: the operator still records the determination with a reason (``breach incident
determine``), and the figures shown are kept with it. The scores live in
``config/legal/severity-enisa.yaml`` (workspace-overridable), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import BadInput

__all__ = ["EnisaMethod", "Severity", "load_enisa", "parse_enisa", "score"]

FILE = Path("legal") / "severity-enisa.yaml"


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: Decimal
    max: Decimal


class _Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    id: str
    start: Annotated[Decimal, Field(alias="from")]


class EnisaMethod(BaseModel):
    """The method's figures: the DPC range, EI values, CB elements and severity levels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: str
    verified: bool
    dpc: _Range
    ei: dict[str, Decimal]
    cb: dict[str, Decimal]
    levels: list[_Level]


@dataclass(frozen=True)
class Severity:
    """A computed severity: the score, its level and the arithmetic as the operator reads it."""

    score: Decimal
    level: str
    arithmetic: str
    inputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """What a determination keeps of the aid."""
        return {
            "method": "ENISA 2013",
            "se": str(self.score),
            "level": self.level,
            "arithmetic": self.arithmetic,
            **self.inputs,
        }


def load_enisa(config_dirs: list[Path]) -> EnisaMethod:
    """The method's figures from the first config folder holding the file."""
    path = next((d / FILE for d in config_dirs if (d / FILE).is_file()), None)
    if path is None:
        raise BadInput(f"{FILE} not found in {', '.join(str(d) for d in config_dirs)}")
    from engine.files import load_yaml, read_text

    raw = load_yaml(read_text(path, what="severity data file"), str(path))
    try:
        return EnisaMethod.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(f"{path}: invalid severity data: {str(exc).splitlines()[0]}") from None


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def parse_enisa(text: str, method: EnisaMethod) -> tuple[Decimal, str, list[str]]:
    """Read ``DPC=3,EI=significant,CB=loss_of_confidentiality+malicious_intent``.

    :raises BadInput: naming what is allowed.
    """
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key.strip().upper() not in ("DPC", "EI", "CB"):
            raise BadInput(f"--enisa takes DPC=N,EI=LEVEL,CB=ELEMENT+ELEMENT; got {item.strip()!r}")
        parts[key.strip().upper()] = value.strip()
    if "DPC" not in parts or "EI" not in parts:
        raise BadInput("--enisa needs at least DPC and EI, e.g. DPC=3,EI=significant")
    try:
        dpc = Decimal(parts["DPC"])
    except InvalidOperation:
        raise BadInput(f"DPC must be a number from {method.dpc.min} to {method.dpc.max}") from None
    if not method.dpc.min <= dpc <= method.dpc.max:
        raise BadInput(
            f"DPC must be from {_fmt(method.dpc.min)} to {_fmt(method.dpc.max)}, got {parts['DPC']}"
        )
    ei = parts["EI"].lower()
    if ei not in method.ei:
        raise BadInput(f"EI must be one of {', '.join(method.ei)}, got {parts['EI']!r}")
    elements = [e.strip().lower() for e in parts.get("CB", "").split("+") if e.strip()]
    unknown = [e for e in elements if e not in method.cb]
    if unknown:
        raise BadInput(f"CB elements are {', '.join(method.cb)}; unknown {', '.join(unknown)}")
    return dpc, ei, list(dict.fromkeys(elements))


def score(dpc: Decimal, ei: str, elements: list[str], method: EnisaMethod) -> Severity:
    """SE = DPC × EI + CB, its level, and the arithmetic with every figure named."""
    ei_value = method.ei[ei]
    cb = sum((method.cb[e] for e in elements), Decimal(0))
    se = dpc * ei_value + cb
    level = next(
        lv.id for lv in sorted(method.levels, key=lambda lv: lv.start, reverse=True) if se >= lv.start
    )
    cb_text = " + ".join(f"{_fmt(method.cb[e])} ({e})" for e in elements) or "0"
    arithmetic = (
        f"SE = DPC × EI + CB = {_fmt(dpc)} × {_fmt(ei_value)} ({ei}) + {cb_text} = {_fmt(se)} → {level}"
    )
    inputs = {"dpc": _fmt(dpc), "ei": ei, "cb": elements}
    return Severity(se, level, arithmetic, inputs)
