"""the workspace log's head (entries and last hash), filled from the log as it stands

Revision ID: 0011_record
Revises: 0010_obligations
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_record"
down_revision = "0010_obligations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The log as it stands when the head starts being kept is taken as it is.
    op.execute(
        "INSERT INTO workspace_log_head (id, entries, head) "
        "SELECT 1, COUNT(*), COALESCE((SELECT hash FROM workspace_log ORDER BY id DESC LIMIT 1), '') "
        "FROM workspace_log"
    )


def downgrade() -> None:
    op.drop_table("workspace_log_head")
