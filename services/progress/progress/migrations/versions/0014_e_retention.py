"""retention: indexes on the timestamps retention prunes by (inbox, ingested events)

Revision ID: 0014_e_retention
Revises: 0011_a_audit
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_e_retention"
down_revision: str | None = "0011_a_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.create_index("ix_ingested_event_accepted_at", "ingested_event", ["accepted_at"])


def downgrade() -> None:
    op.drop_index("ix_ingested_event_accepted_at", table_name="ingested_event")
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
