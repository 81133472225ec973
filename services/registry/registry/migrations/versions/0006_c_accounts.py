"""personal accounts (people log in with a username, a password and optionally TOTP)

Revision ID: 0006_c_accounts
Revises: 0005_a_extensions
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_c_accounts"
down_revision: str | None = "0005_a_extensions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", text(length=32), nullable=False),
        sa.Column("display_name", text(length=60), nullable=False),
        sa.Column("role", text(length=16), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=True),
        sa.Column("password_hash", text(length=255), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sessions_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("totp_secret", text(length=64), nullable=True),
        sa.Column("totp_pending_secret", text(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(role = 'agency') = (agency_id IS NOT NULL)", name="ck_account_agency"),
        sa.CheckConstraint("role IN ('agency', 'coordinator', 'operator')", name="ck_account_role"),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_username"), ["username"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_username"))
        batch_op.drop_index(batch_op.f("ix_account_agency_id"))
    op.drop_table("account")
