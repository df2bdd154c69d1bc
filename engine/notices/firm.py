"""The firm that sends every notice and document: ``[firm]`` of the workspace's settings.toml.

Every notice names the firm, its contact and (PIPL Art 52) its personal-information protection
officer; every formal document names the firm as issuer. The table is checked once, here, so a
missing or malformed key is one line naming what to set instead of a gap in a legal text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import BadInput

__all__ = ["FirmSettings", "firm_settings"]


class FirmSettings(BaseModel):
    """``[firm]`` in settings.toml: the sender of every document and the contact it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    credit_code: str | None = None
    legal_representative: str | None = None
    contact_name: str = Field(min_length=1)
    contact_phone: str = Field(min_length=1)
    contact_email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    contact_hours: str = Field(min_length=1)
    seal_text: str = "（盖章）"
    website: str | None = None
    # The personal-information protection officer or department (PIPL Art 52) notices name.
    protection_officer: str | None = None


def firm_settings(settings: Mapping[str, Any]) -> FirmSettings:
    """The ``[firm]`` table, checked; empty optional values read as not given.

    :raises BadInput: naming the key to set in config/settings.toml.
    """
    raw = {k: (v or None) if isinstance(v, str) else v for k, v in dict(settings.get("firm", {})).items()}
    try:
        return FirmSettings.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise BadInput(
            f"settings.toml [firm] {where}: {err['msg']} (documents name the firm and its "
            "contact: set them in the workspace's config/settings.toml)"
        ) from None
