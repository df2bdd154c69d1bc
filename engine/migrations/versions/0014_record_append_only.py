"""the audit trail and the workspace log become append-only in the database itself

Revision ID: 0014_record_append_only
Revises: 0013_reportdata_report_items
Create Date: 2026-12-01

A trigger refuses UPDATE and DELETE on ``event`` and ``workspace_log`` (and TRUNCATE on PostgreSQL)
for every connection, so someone who shares the database login cannot rewrite history with SQL. The one
deletion breach itself makes is purging an incident after its retention period: its events may go only
once the hash-chained workspace log holds a ``purged`` tombstone for it, which cannot be removed.

A later migration that rebuilds either table (SQLite batch mode copies a table and drops the old one,
and its triggers with it) must create these triggers again.
"""

from alembic import op

revision = "0014_record_append_only"
down_revision = "0013_reportdata_report_items"
branch_labels = None
depends_on = None

TABLES = ("event", "workspace_log")

# An event row may be deleted only when the workspace log already holds the incident's purge tombstone.
_PURGED = "EXISTS (SELECT 1 FROM workspace_log w WHERE w.kind = 'purged' AND w.incident_id = OLD.incident_id)"

_PG_FUNCTION = f"""
CREATE FUNCTION breach_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'event' THEN
        IF {_PURGED} THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'breach: % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _sqlite_triggers(table: str) -> list[str]:
    refuse = "SELECT RAISE(ABORT, 'breach: {table} is append-only: {op} refused');"
    delete_when = f" WHEN NOT {_PURGED}" if table == "event" else ""
    return [
        f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} "
        f"BEGIN {refuse.format(table=table, op='UPDATE')} END",
        f"CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table}{delete_when} "
        f"BEGIN {refuse.format(table=table, op='DELETE')} END",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION breach_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION breach_append_only()"
            )
        return
    for table in TABLES:
        for statement in _sqlite_triggers(table):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS breach_append_only()")
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_delete")
