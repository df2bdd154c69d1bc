"""acknowledged deadlines: who took on a missed deadline, which stops its repeated alerts

Revision ID: 0013_alerts_ack
Revises: 0012_record
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

revision = "0013_alerts_ack"
down_revision = "0012_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=220), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
