"""report data: regulator-report items supplied at any time, every value kept

Revision ID: 0013_reportdata_report_items
Revises: 0013_alerts_ack
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0013_reportdata_report_items"
down_revision = "0013_alerts_ack"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "report_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("value", json_type, nullable=True),
        sa.Column("supplied_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=220), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_item_incident_id", "report_item", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_report_item_incident_id", table_name="report_item")
    op.drop_table("report_item")
