"""The facts jurisdiction clocks read: places, residents, entity types, moments, determinations, filings.

Kept apart from :mod:`engine.legal.facts` (the CN assessment's facts) because these have shapes of their
own: ISO 3166 place codes checked against ``pycountry``, moments with an offset, and two structured
records an operator never types as ``key=value`` (a determination with its reason, a filing with its
reference), which ``breach incident determine`` and ``breach incident filed`` write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.errors import BadInput

__all__ = [
    "ANCHOR_FACTS",
    "Determination",
    "Filing",
    "FilingKey",
    "Moment",
    "Place",
    "check_place",
    "convert_intl",
    "is_intl_key",
]

# The moments an operator records as facts; the jurisdiction files' clocks start from them.
ANCHOR_FACTS = ("aware_at", "determined_at", "assessed_at", "suspected_at")
_ALIASES = {"UK": "GB", "EL": "GR"}  # codes people write that ISO 3166-1 spells otherwise


def check_place(value: str) -> str:
    """An ISO 3166-1 alpha-2 code (``DE``) or ISO 3166-2 subdivision (``US-CA``), upper-cased.

    :raises ValueError: for a code ISO does not define, naming the right one for UK and EL.
    """
    import pycountry

    code = value.strip().upper()
    if code in _ALIASES:
        raise ValueError(f"country {value!r} is written {_ALIASES[code]} in ISO 3166-1")
    if len(code) > 6:
        raise ValueError(f"country {value[:20]!r} is not an ISO 3166 code such as DE or US-CA")
    country = code.split("-", 1)[0]
    if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
        raise ValueError(f"country {value!r} is not an ISO 3166-1 code such as DE, SG or US")
    if "-" in code and pycountry.subdivisions.get(code=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-2 subdivision such as US-CA")
    return code


def _check_moment(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset: give one, e.g. 2026-11-20T09:30:00+01:00")
    return parsed.isoformat()


Place = Annotated[str, AfterValidator(check_place)]
Moment = Annotated[str, AfterValidator(_check_moment)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
FilingKey = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]*:[a-z][a-z0-9_]*$", max_length=96)]


class Determination(BaseModel):
    """A judgement the operator recorded: yes or no, why, when, and the aid's figures if one was used."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    value: bool
    reason: Reason
    at: Moment
    by: Annotated[str, Field(min_length=1, max_length=100)]
    aid: dict[str, Any] | None = None


class Filing(BaseModel):
    """A report that went out under a jurisdiction clock: when, and the operator's reference."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    at: Moment
    ref: Annotated[str, Field(max_length=200)] | None = None
    by: Annotated[str, Field(min_length=1, max_length=100)]


def is_intl_key(key: str) -> bool:
    """Whether ``key`` (dotted) is one of the settable facts of this module."""
    return (
        key in ANCHOR_FACTS
        or key in ("countries", "entity_types", "established_in")
        or key.startswith("residents.")
    )


def convert_intl(key: str, text: str, zone: str) -> Any:
    """The value of one ``key=value`` of this module's facts (``text`` stripped, not empty)."""
    if key in ANCHOR_FACTS:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadInput(f"{key}: malformed time {text!r}: use ISO-8601, e.g. 2026-11-20 09:30") from None
        # Without an offset the time is read in the workspace zone, as every command reads times.
        local = parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))
        return local.astimezone(UTC).isoformat()
    if key == "countries":
        try:
            return [check_place(item) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise BadInput(f"countries: {exc}") from None
    if key == "established_in":
        try:
            return check_place(text)
        except ValueError as exc:
            raise BadInput(f"established_in: {exc}") from None
    if key == "entity_types":
        items = [item.strip().lower() for item in text.split(",") if item.strip()]
        bad = [i for i in items if not i.replace("_", "").isalnum() or not i[0].isalpha() or len(i) > 48]
        if bad:
            raise BadInput(f"entity_types: {bad[0]!r} is not a name such as hipaa_covered_entity")
        return items
    # residents.<place>: a whole number of people living there
    if not text.isdigit() or not text.isascii():
        raise BadInput(f"{key} must be a whole number ≥ 0, got {text!r}")
    return int(text)
