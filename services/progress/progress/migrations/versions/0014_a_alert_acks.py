"""alert acknowledgements (progress: the notifier's alerts, for the circulars)

Revision ID: 0014_a_alert_acks
Revises: 0011_a_audit
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014_a_alert_acks"
down_revision: str | None = "0011_a_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_ack",
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("plan_slug", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("work_point_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("work_point_code", sqlmodel.sql.sqltypes.AutoString(length=19), nullable=False),
        sa.Column("lead_agency_ids", sa.JSON(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_via", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("acknowledged_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column(
            "acknowledged_person", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    with op.batch_alter_table("alert_ack", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_ack_plan_slug"), ["plan_slug"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_ack_work_point_id"), ["work_point_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_ack", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_ack_work_point_id"))
        batch_op.drop_index(batch_op.f("ix_alert_ack_plan_slug"))
    op.drop_table("alert_ack")
