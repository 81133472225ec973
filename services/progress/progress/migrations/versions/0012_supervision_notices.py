"""supervision notices (督办单): the notices, their yearly numbering and their history

Revision ID: 0011_b_notices
Revises: 0011_c_circulars
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_b_notices"
down_revision: str | None = "0011_c_circulars"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "supervision_notice",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", _text(40), nullable=False),
        sa.Column("work_point_id", _text(120), nullable=False),
        sa.Column("plan_slug", _text(80), nullable=False),
        sa.Column("code", _text(19), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("lead_agencies", sa.JSON(), nullable=False),
        sa.Column("coordinating_agency_id", sa.Uuid(), nullable=True),
        sa.Column("reason", _text(), nullable=False),
        sa.Column("required_action", _text(), nullable=False),
        sa.Column("reply_within_working_days", sa.Integer(), nullable=False),
        sa.Column("status", _text(12), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", _text(120), nullable=False),
        sa.Column("reply_due_on", sa.Date(), nullable=False),
        sa.Column("reply_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply_text", _text(), nullable=True),
        sa.Column("evidence_url", _text(500), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_by", _text(120), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "seq", name="uq_supervision_notice_number"),
    )
    for column in ("work_point_id", "plan_slug", "status", "reply_due_at"):
        op.create_index(
            f"ix_supervision_notice_{column}", "supervision_notice", [column], unique=False
        )
    op.create_table(
        "supervision_notice_sequence",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "supervision_notice_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notice_id", sa.Uuid(), nullable=False),
        sa.Column("status", _text(12), nullable=False),
        sa.Column("actor", _text(120), nullable=False),
        sa.Column("note", _text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_supervision_notice_history_notice_id",
        "supervision_notice_history",
        ["notice_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_supervision_notice_history_notice_id", "supervision_notice_history")
    op.drop_table("supervision_notice_history")
    op.drop_table("supervision_notice_sequence")
    for column in ("work_point_id", "plan_slug", "status", "reply_due_at"):
        op.drop_index(f"ix_supervision_notice_{column}", "supervision_notice")
    op.drop_table("supervision_notice")
