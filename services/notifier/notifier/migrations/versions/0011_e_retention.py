"""retention: indexes on the timestamps retention prunes by (inbox, notification log, links)

Revision ID: 0009_e_retention
Revises: 0009_f_offsets
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_e_retention"
down_revision: str | None = "0009_f_offsets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.create_index("ix_notification_log_created_at", "notification_log", ["created_at"])
    op.create_index("ix_ack_code_expires_at", "ack_code", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ack_code_expires_at", table_name="ack_code")
    op.drop_index("ix_notification_log_created_at", table_name="notification_log")
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
