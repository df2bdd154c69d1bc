"""Moments as every JSON output shows them: ISO-8601 in the workspace zone, with its offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Times", "from_json", "utc"]


def utc(value: Any) -> datetime | None:
    """A stored moment as aware UTC (SQLite hands back text, PostgreSQL naive datetimes); None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    moment = datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_json(value: Any) -> Any:
    """A JSON column as a value: SQLite hands JSON back as text, PostgreSQL as objects; NULL is ``{}``."""
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


class Times:
    """Moments as ISO-8601 in one zone (the workspace's) with its offset, as every JSON time is."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)

    def iso(self, value: Any) -> str | None:
        """``value`` (aware, naive UTC or text) in the zone, to the second; None for none."""
        moment = utc(value)
        return None if moment is None else moment.astimezone(self.zone).isoformat(timespec="seconds")
