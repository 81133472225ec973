"""who filed a report: status_report.reported_by (a personal account's username), and the same
column in status_report_archive (the archive keeps a report's every field)

Existing rows were reported by agencies' systems: null.

Revision ID: 0014_d_reporter
Revises: 0014_e_retention
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014_d_reporter"
down_revision: str | None = "0014_e_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("status_report", "status_report_archive")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "reported_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
                )
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("reported_by")
