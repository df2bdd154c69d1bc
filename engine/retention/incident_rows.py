"""The rows one incident owns, in every table, as JSON-ready values.

Both the evidence bundle (which writes them out) and purging (which deletes them and their files) walk
the same tables in the same order, so the list of tables and the reading of their rows live here once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.migrations.tables import METADATA

__all__ = ["incident_rows", "incident_tables", "jsonable"]


def incident_tables() -> list[Any]:
    """Tables holding rows of one incident, children before parents (the order deletes need)."""
    tables = [t for t in reversed(METADATA.sorted_tables) if "incident_id" in t.c]
    return [t for t in tables if t.name != "workspace_log"]


def jsonable(value: Any) -> Any:
    """A column value as JSON holds it: datetimes as ISO-8601 in UTC (a naive one is taken as UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return value


def incident_rows(session: Any, table: Any, incident_id: str) -> list[dict[str, Any]]:
    """The rows of ``table`` that belong to one incident, in their stored order, as JSON-ready dicts."""
    order = [table.c[name] for name in ("seq", "id") if name in table.c]
    result = session.execute(select(table).where(table.c.incident_id == incident_id).order_by(*order))
    return [{k: jsonable(v) for k, v in row._mapping.items()} for row in result]
