"""the provisional calendar years a work point's judgement used (judged again once official)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-20 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null (no provisional year) until the work point is next judged.
    with op.batch_alter_table("work_point_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provisional_years", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_point_state", schema=None) as batch_op:
        batch_op.drop_column("provisional_years")
