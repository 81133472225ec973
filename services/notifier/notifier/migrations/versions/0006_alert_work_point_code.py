"""work point codes on alerts: '35', '3.2' (messages and the alerts API name the work point by
its code; `number` stays its ordinal)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_alert = sa.table("alert", sa.column("number", sa.Integer()), sa.column("code"))


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=19), nullable=True)
        )
    # Every alert so far is on a continuously numbered plan: its code is its number.
    op.execute(_alert.update().values(code=sa.cast(_alert.c.number, sa.String())))
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("code", nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("code")
