"""Fast reads for the CLI's display commands, straight through the DB-API driver.

``breach incident show`` and ``list`` must answer in a fraction of a second; importing SQLAlchemy and
pydantic alone costs more than that budget. These queries read the same tables the ORM writes, with
plain ``sqlite3`` (or ``psycopg`` for PostgreSQL), and return plain dictionaries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from engine.errors import BadInput, IncidentNotFound

__all__ = ["Reader"]


def _to_conninfo(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` URL as a libpq connection string."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("postgresql"):
        raise BadInput(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql+psycopg://")
    return f"postgresql://{rest}"


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


class Reader:
    """A read-only connection and the queries the display commands need."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            import sqlite3

            path = url.split(":///", 1)[1] if ":///" in url else ""
            try:
                self.conn: Any = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                self.conn.execute("PRAGMA busy_timeout=30000")
                self.conn.execute("SELECT 1 FROM incident LIMIT 1")
            except sqlite3.Error as exc:
                raise BadInput(
                    f"cannot read {path} ({exc}): run 'breach init' here or pass --home/--db"
                ) from None
            self.mark = "?"
        else:
            import psycopg

            try:
                self.conn = psycopg.connect(_to_conninfo(url), autocommit=True)
            except psycopg.Error as exc:
                raise BadInput(f"cannot connect to the database: {str(exc).splitlines()[0]}") from None
            self.mark = "%s"

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a query written with ``?`` placeholders; each row as a dict."""
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql.replace("?", self.mark), params)
        except Exception as exc:  # a missing table means an old or uninitialised database
            raise BadInput(
                f"cannot read the database ({str(exc).splitlines()[0]}): run 'breach db upgrade'"
            ) from None
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def incident(self, incident_id: str, *, every_document: bool = True) -> dict[str, Any]:
        """One incident with its tasks, events, clocks and documents, ready for display.

        With ``every_document=False`` only documents not addressed to one person are listed; the
        per-person notices (there may be 100,000) are counted per kind and format instead.
        """
        found = self.rows("SELECT * FROM incident WHERE id = ?", (incident_id,))
        if not found:
            raise IncidentNotFound(incident_id)
        row = found[0]
        summary = self.rows(
            "SELECT summary FROM playbook_snapshot WHERE sha256 = ?", (row["playbook_sha256"],)
        )
        labels = _json(summary[0]["summary"]) if summary else {}
        for key in ("facts", "anchors", "flags", "records", "assessment"):
            row[key] = _json(row[key])
        for key in ("opened_at", "discovered_at", "closed_at"):
            row[key] = _time(row[key])
        row["drill"] = bool(row["drill"])
        row["labels"] = labels
        row["tasks"] = self.rows(
            "SELECT key, state_id, required, status, opened_at, done_at, done_by, note FROM task "
            "WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        )
        for task in row["tasks"]:
            task["required"] = bool(task["required"])
            task["opened_at"], task["done_at"] = _time(task["opened_at"]), _time(task["done_at"])
        # Every column: occurred_at (the real time of a step entered after the fact) is missing from a
        # database not yet upgraded, which must still be readable.
        row["events"] = self.rows("SELECT * FROM event WHERE incident_id = ? ORDER BY seq", (incident_id,))
        for ev in row["events"]:
            ev["at"], ev["inputs"] = _time(ev["at"]), _json(ev["inputs"])
            ev["occurred_at"] = _time(ev.get("occurred_at"))
        row["deadlines"] = self._optional("deadlines", incident_id)
        row["documents"] = self._optional("documents", incident_id, every_document=every_document)
        row["document_counts"] = self._document_counts(incident_id)
        row["refusals"] = self._optional("refusals", incident_id)
        return row

    def _document_counts(self, incident_id: str) -> list[dict[str, Any]]:
        """How many documents of each kind and format the incident has."""
        if not self._has_table("document"):
            return []
        return self.rows(
            "SELECT kind, fmt, COUNT(*) AS n FROM document WHERE incident_id = ? GROUP BY kind, fmt "
            "ORDER BY kind, fmt",
            (incident_id,),
        )

    def _optional(self, what: str, incident_id: str, *, every_document: bool = True) -> list[dict[str, Any]]:
        """Rows of tables later features add; an empty list when the table does not exist yet."""
        if what == "deadlines" and self._has_table("deadline"):
            rows = self.rows(
                "SELECT * FROM deadline WHERE incident_id = ? ORDER BY due_at, id", (incident_id,)
            )
            for r in rows:
                for key in r:
                    if key.endswith("_at"):
                        r[key] = _time(r[key])
                for key in ("basis", "explain", "warnings"):
                    if key in r:
                        r[key] = _json(r[key])
            return rows
        if what == "refusals" and self._has_table("workspace_log"):
            rows = self.rows(
                "SELECT at, actor, detail FROM workspace_log WHERE incident_id = ? "
                "AND kind IN ('refused', 'approval_refused') ORDER BY id",
                (incident_id,),
            )
            for r in rows:
                r["at"] = _time(r["at"])
            return rows
        if what == "documents" and self._has_table("document"):
            only = "" if every_document else " AND person_ref IS NULL"
            rows = self.rows(
                f"SELECT * FROM document WHERE incident_id = ?{only} ORDER BY id", (incident_id,)
            )
            for r in rows:
                r["created_at"] = _time(r.get("created_at"))
            return rows
        return []

    def has_table(self, name: str) -> bool:
        """Whether this database (in its own schema) has the table ``name`` yet."""
        return self._has_table(name)

    def _has_table(self, name: str) -> bool:
        if self.mark == "?":
            found = self.rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        else:
            # to_regclass follows the search path: a table of that name in another schema is not ours.
            found = self.rows("SELECT to_regclass(?) AS name", (name,))
            return bool(found and found[0]["name"])
        return bool(found)

    def incidents(self, *, state: str | None = None, include_closed: bool = True) -> list[dict[str, Any]]:
        """Every incident, newest first."""
        sql = (
            "SELECT id, title, playbook_id, playbook_version, state, version, drill, opened_at, "
            "discovered_at, closed_at, assessment FROM incident"
        )
        params: tuple[Any, ...] = ()
        if state:
            sql += " WHERE state = ?"
            params = (state,)
        rows = self.rows(sql + " ORDER BY opened_at DESC, id DESC", params)
        for r in rows:
            r["opened_at"], r["discovered_at"] = _time(r["opened_at"]), _time(r["discovered_at"])
            r["closed_at"] = _time(r["closed_at"])
            r["drill"] = bool(r["drill"])
            r["assessment"] = _json(r["assessment"])
        if not include_closed:
            rows = [r for r in rows if r["closed_at"] is None]
        return rows
