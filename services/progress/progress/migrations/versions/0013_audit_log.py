"""audit trail (progress: the office's closure decisions)

Revision ID: 0011_a_audit
Revises: 0011_b_notices
Create Date: 2026-12-03 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_a_audit"
down_revision: str | None = "0011_b_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT_INDEXES = ("at", "actor_client_id", "action", "subject")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_client_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("actor_agency_id", sa.Uuid(), nullable=True),
        sa.Column("actor_person", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("trace_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for column in _AUDIT_INDEXES:
            batch_op.create_index(batch_op.f(f"ix_audit_log_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for column in reversed(_AUDIT_INDEXES):
            batch_op.drop_index(batch_op.f(f"ix_audit_log_{column}"))
    op.drop_table("audit_log")
