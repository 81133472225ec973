"""delivery records: deliveries known as sent from duban.deliveries.v1 (no sending them twice
after a restore)

Revision ID: 0012_a_delivery_records
Revises: 0009_e_retention
Create Date: 2026-12-03 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012_a_delivery_records"
down_revision: str | None = "0009_e_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_record",
        sa.Column("delivery_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("cause_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message_ref", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_key"),
    )
    with op.batch_alter_table("delivery_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_record_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_record_sent_at"))
    op.drop_table("delivery_record")
