"""extension requests (延期申请) and the audit trail

Revision ID: 0005_a_extensions
Revises: 0004
Create Date: 2026-12-03 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_a_extensions"
down_revision: str | None = "0004"
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

    op.create_table(
        "extension_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_point_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("requested_due_on", sa.Date(), nullable=False),
        sa.Column("previous_due_on", sa.Date(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["work_point_id"], ["workpoint.id"]),
        sa.CheckConstraint(
            "state IN ('requested', 'approved', 'rejected', 'withdrawn')",
            name="ck_extension_request_state",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extension_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_extension_request_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_extension_request_work_point_id"), ["work_point_id"], unique=False
        )
    # One open request per work point, whatever two requests racing each other do.
    op.create_index(
        "uq_extension_request_open",
        "extension_request",
        ["work_point_id"],
        unique=True,
        postgresql_where=sa.text("state = 'requested'"),
        sqlite_where=sa.text("state = 'requested'"),
    )


def downgrade() -> None:
    op.drop_index("uq_extension_request_open", table_name="extension_request")
    with op.batch_alter_table("extension_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extension_request_work_point_id"))
        batch_op.drop_index(batch_op.f("ix_extension_request_agency_id"))
    op.drop_table("extension_request")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for column in reversed(_AUDIT_INDEXES):
            batch_op.drop_index(batch_op.f(f"ix_audit_log_{column}"))
    op.drop_table("audit_log")
