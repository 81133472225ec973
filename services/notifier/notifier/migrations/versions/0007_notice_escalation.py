"""supervision notices (督办单) escalate as alerts of their own: the alert's kind, the notice's
number and its reply deadline

Revision ID: 0007_b_notices
Revises: 0006
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_b_notices"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="stall",
            )
        )
        batch_op.add_column(
            sa.Column("notice_number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch_op.add_column(sa.Column("reply_due", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("reply_due")
        batch_op.drop_column("notice_number")
        batch_op.drop_column("kind")
