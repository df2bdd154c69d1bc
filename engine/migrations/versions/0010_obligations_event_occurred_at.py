"""the real time of a step recorded after the fact (an audit event's occurred_at)

Revision ID: 0010_obligations
Revises: 0009_web
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_obligations"
down_revision = "0009_web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurred_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("occurred_at")
