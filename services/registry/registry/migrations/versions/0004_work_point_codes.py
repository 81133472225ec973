"""work point codes: a work point's code ('35', '3.2') is its id's last part and unique in its
plan; its number becomes the ordinal (1..N in reading order), no longer unique

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Unnamed constraints of 0001 get these names when SQLite's batch mode reflects the table.
_BATCH_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
_PG_NUMBER_UNIQUE = "workpoint_plan_id_number_key"  # PostgreSQL's name for 0001's constraint
_CODE_UNIQUE = "uq_workpoint_plan_code"

_workpoint = sa.table("workpoint", sa.column("number", sa.Integer()), sa.column("code"))


def upgrade() -> None:
    with op.batch_alter_table("workpoint", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=19), nullable=True)
        )
    # Every plan stored so far numbers continuously: its codes are its numbers.
    op.execute(_workpoint.update().values(code=sa.cast(_workpoint.c.number, sa.String())))
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_PG_NUMBER_UNIQUE, "workpoint", type_="unique")
        op.alter_column("workpoint", "code", nullable=False)
        op.create_unique_constraint(_CODE_UNIQUE, "workpoint", ["plan_id", "code"])
        return
    with op.batch_alter_table("workpoint", schema=None, naming_convention=_BATCH_NAMES) as batch_op:
        batch_op.drop_constraint("uq_workpoint_plan_id_number", type_="unique")
        batch_op.alter_column("code", nullable=False)
        batch_op.create_unique_constraint(_CODE_UNIQUE, ["plan_id", "code"])


def downgrade() -> None:
    # Only possible while every work point's ordinal is unique in its plan (always true of
    # plans imported from their text, which numbers them 1..N).
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_CODE_UNIQUE, "workpoint", type_="unique")
        op.create_unique_constraint(_PG_NUMBER_UNIQUE, "workpoint", ["plan_id", "number"])
        op.drop_column("workpoint", "code")
        return
    with op.batch_alter_table("workpoint", schema=None) as batch_op:
        batch_op.drop_constraint(_CODE_UNIQUE, type_="unique")
        batch_op.create_unique_constraint("uq_workpoint_plan_id_number", ["plan_id", "number"])
        batch_op.drop_column("code")
