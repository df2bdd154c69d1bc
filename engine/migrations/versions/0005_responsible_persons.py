"""responsible persons and the register of formal documents

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "responsible_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("position", sa.String(length=200), nullable=False),
        sa.Column("responsibility", sa.String(length=16), nullable=False),
        sa.Column("sanction", sa.String(length=16), nullable=False),
        sa.Column("compensation_fen", sa.BigInteger(), nullable=True),
        sa.Column("compensation_basis", sa.String(), nullable=True),
        sa.Column("facts", sa.String(), nullable=True),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "name", "department", "position"),
    )
    with op.batch_alter_table("responsible_person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_responsible_person_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "formal_issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=96), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=200), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("stated", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "kind", "subject"),
        sa.UniqueConstraint("incident_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("formal_issue")
    with op.batch_alter_table("responsible_person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responsible_person_incident_id"))
    op.drop_table("responsible_person")
