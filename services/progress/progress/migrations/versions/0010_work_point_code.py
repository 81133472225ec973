"""work point codes in the read model: '35', '3.2' (the board and the routes name work points
by code; `number` stays the ordinal the board orders by)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_view = sa.table("work_point_view", sa.column("number", sa.Integer()), sa.column("code"))


def upgrade() -> None:
    with op.batch_alter_table("work_point_view", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=19), nullable=True)
        )
    # Every plan tracked so far numbers continuously: its codes are its numbers.
    op.execute(_view.update().values(code=sa.cast(_view.c.number, sa.String())))
    with op.batch_alter_table("work_point_view", schema=None) as batch_op:
        batch_op.alter_column("code", nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("work_point_view", schema=None) as batch_op:
        batch_op.drop_column("code")
