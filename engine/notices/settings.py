"""``[notices]`` in settings.toml: batch size, sending pace, retries and drills."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PField

from engine.errors import BadInput

__all__ = ["NoticeSettings", "notice_settings"]


class NoticeSettings(BaseModel):
    """``[notices]`` in settings.toml: batch size, sending pace, retries and drills."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = PField(default=500, ge=1, le=10_000)
    rate_per_second: float = PField(default=5.0, gt=0, le=1000)
    retry_seconds: float = PField(default=30, ge=0, le=3600)
    max_attempts: int = PField(default=5, ge=1, le=100)
    max_wait_seconds: float = PField(default=300, ge=0, le=86_400)
    give_up_seconds: float = PField(default=60, ge=0, le=3600)
    lease_seconds: float = PField(default=120, gt=0, le=3600)
    in_doubt: str = PField(default="resend", pattern="^(resend|hold)$")
    drill_recipient: str = ""
    envelope_sender: str = ""


def notice_settings(settings: dict[str, Any]) -> NoticeSettings:
    """The ``[notices]`` table, checked.

    :raises BadInput: naming the key and the problem.
    """
    try:
        return NoticeSettings.model_validate(settings.get("notices", {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(f"settings.toml [notices] {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
