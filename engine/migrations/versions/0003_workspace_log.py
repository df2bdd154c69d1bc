"""workspace log: refused attempts and purged incidents, hash-chained

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workspace_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workspace_log_incident_id"), ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workspace_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_log_incident_id"))
    op.drop_table("workspace_log")
