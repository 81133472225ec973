"""plan and section titles in the work point read model (the board names its sections)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty until the registry's next snapshot of the work point (`duban-registry republish`).
    with op.batch_alter_table("work_point_view", schema=None) as batch_op:
        for name in ("plan_title", "section_title"):
            batch_op.add_column(
                sa.Column(
                    name,
                    sqlmodel.sql.sqltypes.AutoString(length=200),
                    nullable=False,
                    server_default="",
                )
            )


def downgrade() -> None:
    with op.batch_alter_table("work_point_view", schema=None) as batch_op:
        batch_op.drop_column("section_title")
        batch_op.drop_column("plan_title")
