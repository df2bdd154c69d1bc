"""notice versions and corrections, postal addresses, draft decisions, numbers unique per register

Revision ID: 0008_documents
Revises: 0007
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0008_documents"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# SQLite keeps the delivery's unnamed unique constraint without a name: this names it on reflection so
# the batch copy can drop it.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("people_count", sa.Integer(), nullable=True))
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("notice_content", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("responsible_person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("formal_issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_register", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("serial", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            "uq_formal_issue_number_register_serial", ["number_register", "serial"]
        )

    old = ["incident_id", "person_id", "channel"]
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("delivery_incident_id_person_id_channel_key", "delivery", type_="unique")
        op.add_column("delivery", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        op.create_unique_constraint(
            "delivery_incident_id_person_id_channel_version_key", "delivery", [*old, "version"]
        )
    else:
        with op.batch_alter_table("delivery", naming_convention=NAMING, recreate="always") as batch_op:
            batch_op.drop_constraint("uq_delivery_incident_id_person_id_channel", type_="unique")
            batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
            batch_op.create_unique_constraint(
                "uq_delivery_incident_id_person_id_channel_version", [*old, "version"]
            )

    op.create_table(
        "notice_revision",
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("changed", JSON, nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("incident_id", "version"),
    )
    op.create_table(
        "notice_correction",
        sa.Column("incident_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("incident_id", "version", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("notice_correction")
    op.drop_table("notice_revision")
    old = ["incident_id", "person_id", "channel"]
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("delivery_incident_id_person_id_channel_version_key", "delivery", type_="unique")
        op.drop_column("delivery", "version")
        op.create_unique_constraint("delivery_incident_id_person_id_channel_key", "delivery", old)
    else:
        with op.batch_alter_table("delivery", naming_convention=NAMING, recreate="always") as batch_op:
            batch_op.drop_constraint("uq_delivery_incident_id_person_id_channel_version", type_="unique")
            batch_op.drop_column("version")
            batch_op.create_unique_constraint("uq_delivery_incident_id_person_id_channel", old)
    with op.batch_alter_table("formal_issue", schema=None) as batch_op:
        batch_op.drop_constraint("uq_formal_issue_number_register_serial", type_="unique")
        batch_op.drop_column("serial")
        batch_op.drop_column("number_register")
    with op.batch_alter_table("responsible_person", schema=None) as batch_op:
        batch_op.drop_column("draft")
    with op.batch_alter_table("notice_content", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("people_count")
        batch_op.drop_column("address")
