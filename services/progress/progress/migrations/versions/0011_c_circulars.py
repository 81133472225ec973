"""circulars (通报): one row per plan, period and version, with its .docx and .xlsx

Revision ID: 0011_c_circulars
Revises: 0010
Create Date: 2026-12-03 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_c_circulars"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "circular",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_slug", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("trigger", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("scheduled_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("docx", sa.LargeBinary(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_slug", "period", "version", name="uq_circular_version"),
        sa.UniqueConstraint("year", "seq", name="uq_circular_number"),
        sa.UniqueConstraint("scheduled_key", name="uq_circular_scheduled"),
    )
    with op.batch_alter_table("circular", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_circular_plan_slug"), ["plan_slug"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("circular", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_circular_plan_slug"))
    op.drop_table("circular")
