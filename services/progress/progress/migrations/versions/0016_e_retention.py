"""retention: indexes on the timestamps retention prunes by (inbox, ingested events); the
archive of old plan years' reports (status_report_archive)

Revision ID: 0014_e_retention
Revises: 0014_f_offsets
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014_e_retention"
down_revision: str | None = "0014_f_offsets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.create_index("ix_ingested_event_accepted_at", "ingested_event", ["accepted_at"])
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "status_report_archive",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("work_point_id", text(length=120), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("status", text(length=20), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("kpis", sa.JSON(), nullable=False),
        sa.Column("note", text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("out_of_order", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("delay_working_days", sa.Integer(), nullable=True),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", text(length=64), nullable=False),
        sa.Column("row_hash", text(length=64), nullable=False),
        sa.Column("plan_year", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("work_point_id", "chain_seq", name="uq_status_report_archive_chain"),
    )
    op.create_index(
        "ix_status_report_archive_work_point_id", "status_report_archive", ["work_point_id"]
    )
    op.create_index("ix_status_report_archive_plan_year", "status_report_archive", ["plan_year"])


def downgrade() -> None:
    op.drop_table("status_report_archive")
    op.drop_index("ix_ingested_event_accepted_at", table_name="ingested_event")
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
