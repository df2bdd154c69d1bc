"""deadlines and escalation outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deadline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "labels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("anchor", sa.String(length=96), nullable=True),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.String(length=64), nullable=True),
        sa.Column("calendar", sa.String(length=32), nullable=False),
        sa.Column("calendar_version", sa.String(length=400), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column(
            "explain",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "basis",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "warnings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alert_round", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("met_at", sa.DateTime(), nullable=True),
        sa.Column("met_by", sa.String(length=96), nullable=True),
        sa.Column("lateness_seconds", sa.Integer(), nullable=True),
        sa.Column("missed_at", sa.DateTime(), nullable=True),
        sa.Column("waived_at", sa.DateTime(), nullable=True),
        sa.Column("waived_by", sa.String(), nullable=True),
        sa.Column("waiver_reason", sa.String(), nullable=True),
        sa.Column("waiver_approver", sa.String(), nullable=True),
        sa.Column("void_reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "rule_id", "subject"),
    )
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_next_check_at"), ["next_check_at"], unique=False)
        batch_op.create_index(
            "ix_deadline_missed",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("status = 'missed'"),
            postgresql_where=sa.text("status = 'missed'"),
        )

    op.create_table(
        "escalation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deadline_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deadline_id"],
            ["deadline.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deadline_id", "kind"),
    )
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_deadline_id"), ["deadline_id"], unique=False)

    op.create_table(
        "escalation_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("handed_off_at", sa.DateTime(), nullable=True),
        sa.Column("in_doubt", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("escalation_id", "channel"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("escalation_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_escalation_delivery_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("escalation_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_delivery_due")

    op.drop_table("escalation_delivery")
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_deadline_id"))

    op.drop_table("escalation")
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deadline_missed",
            sqlite_where=sa.text("status = 'missed'"),
            postgresql_where=sa.text("status = 'missed'"),
        )
        batch_op.drop_index(batch_op.f("ix_deadline_next_check_at"))

    op.drop_table("deadline")
