"""hash-chained report history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 00:37:00.421799
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GENESIS = "0" * 64
_reports = sa.table(
    "status_report",
    sa.column("event_id", sa.Uuid()),
    sa.column("work_point_id", sa.String()),
    sa.column("agency_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("percent", sa.Integer()),
    sa.column("note", sa.String()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("stored_at", sa.DateTime(timezone=True)),
    sa.column("out_of_order", sa.Boolean()),
    sa.column("chain_seq", sa.Integer()),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


def _hash(prev_hash: str, row: Any, seq: int) -> str:
    """As progress.history.hash_row at this revision."""
    content = {
        "event_id": str(row.event_id),
        "work_point_id": row.work_point_id,
        "agency_id": str(row.agency_id),
        "status": row.status,
        "percent": row.percent,
        "note": row.note,
        "occurred_at": _utc(row.occurred_at),
        "received_at": _utc(row.received_at),
        "stored_at": _utc(row.stored_at),
        "out_of_order": bool(row.out_of_order),
        "chain_seq": seq,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("status_report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    # Chain the reports already stored, per work point, in the order they were stored.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_reports).order_by(
            _reports.c.work_point_id, _reports.c.stored_at, _reports.c.event_id
        )
    ).all()
    current, seq, prev = None, 0, _GENESIS
    for row in rows:
        if row.work_point_id != current:
            current, seq, prev = row.work_point_id, 0, _GENESIS
        seq += 1
        digest = _hash(prev, row, seq)
        bind.execute(
            _reports.update()
            .where(_reports.c.event_id == row.event_id)
            .values(chain_seq=seq, prev_hash=prev, row_hash=digest)
        )
        prev = digest
    with op.batch_alter_table("status_report", schema=None) as batch_op:
        batch_op.alter_column("chain_seq", existing_type=sa.Integer(), nullable=False)
        for name in ("prev_hash", "row_hash"):
            batch_op.alter_column(
                name, existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
            )
        batch_op.create_unique_constraint("uq_status_report_chain", ["work_point_id", "chain_seq"])


def downgrade() -> None:
    with op.batch_alter_table("status_report", schema=None) as batch_op:
        batch_op.drop_constraint("uq_status_report_chain", type_="unique")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("chain_seq")
