"""The report history's hash chain: each row hashes its content with the previous row's hash.

One chain per work point (reports of a work point arrive in order on one partition, so one
writer extends it at a time). Changing, removing or reordering any stored row breaks the chain
at that row; verification names the first broken row and why.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

GENESIS = "0" * 64


class ChainRow(Protocol):
    """A stored report as its hash covers it (a status_report row, or one about to be)."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def work_point_id(self) -> str: ...
    @property
    def agency_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def percent(self) -> int | None: ...
    @property
    def kpis(self) -> dict[str, float]: ...
    @property
    def note(self) -> str | None: ...
    @property
    def evidence(self) -> list[str]: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime | None: ...
    @property
    def stored_at(self) -> datetime: ...
    @property
    def out_of_order(self) -> bool: ...
    @property
    def late(self) -> bool: ...
    @property
    def delay_working_days(self) -> int | None: ...
    @property
    def chain_seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def row_hash(self) -> str: ...
    @property
    def reported_by(self) -> str | None: ...


class ChainHead(Protocol):
    """Where a work point's chain ends (kept on its state row)."""

    report_seq: int
    chain_head: str | None


@dataclass
class NewReport:
    """A status_report row about to be written, as plain attributes (the columns, by name).

    The status consumer builds one per event; a model instance costs several times more to make,
    and the batch's rows are inserted with one executemany anyway (store.rows.write).
    """

    event_id: uuid.UUID
    work_point_id: str
    agency_id: uuid.UUID
    status: str
    percent: int | None
    kpis: dict[str, float]
    note: str | None
    evidence: list[str]
    occurred_at: datetime
    received_at: datetime | None
    stored_at: datetime
    out_of_order: bool
    late: bool
    delay_working_days: int | None
    reported_by: str | None = None
    chain_seq: int = 0
    prev_hash: str = ""
    row_hash: str = ""


def row_content(row: ChainRow) -> dict[str, Any]:
    """The fields a row's hash covers.

    Fields added after the first rows were written join only when set (non-empty, true, not
    null), so rows written before them still verify.
    """
    content: dict[str, Any] = {
        "event_id": str(row.event_id),
        "work_point_id": row.work_point_id,
        "agency_id": str(row.agency_id),
        "status": row.status,
        "percent": row.percent,
        "note": row.note,
        "occurred_at": _utc(row.occurred_at),
        "received_at": _utc(row.received_at) if row.received_at else None,
        "stored_at": _utc(row.stored_at),
        "out_of_order": row.out_of_order,
        "chain_seq": row.chain_seq,
    }
    later = {
        "kpis": row.kpis or None,
        "evidence": row.evidence or None,
        "late": row.late or None,
        "delay_working_days": row.delay_working_days,
        "reported_by": row.reported_by,
    }
    content.update({k: v for k, v in later.items() if v is not None})
    return content


def _utc(moment: datetime) -> str:
    """One spelling per instant, whatever offset it was given with."""
    return moment.astimezone(UTC).isoformat()


def hash_row(prev_hash: str, row: ChainRow) -> str:
    """SHA-256 of the previous hash and the row's canonical JSON."""
    canonical = json.dumps(
        row_content(row), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def extend(state: ChainHead, row: NewReport) -> None:
    """Give a new row its place in its work point's chain, from the head the state keeps."""
    row.chain_seq = state.report_seq + 1
    row.prev_hash = state.chain_head or GENESIS
    row.row_hash = hash_row(row.prev_hash, row)
    state.report_seq, state.chain_head = row.chain_seq, row.row_hash


@dataclass(frozen=True)
class Broken:
    """The first row where a chain does not hold."""

    work_point_id: str
    chain_seq: int
    event_id: str
    problem: str  # content_changed, link_broken, sequence_gap


@dataclass(frozen=True)
class Verification:
    """The result of checking chains."""

    rows_checked: int
    first_broken: Broken | None

    @property
    def ok(self) -> bool:
        """Tell whether every chain holds."""
        return self.first_broken is None


def check_chains(rows: Iterable[ChainRow]) -> Verification:
    """Check chains row by row; stop at the first broken row.

    1. Rows come in (work point, sequence) order.
    2. A sequence must go 1, 2, 3, ... (a gap means a row was removed).
    3. Each row's prev_hash must be the previous row's row_hash (GENESIS for the first).
    4. Each row's row_hash must be the hash of its own content now.
    """
    checked = 0
    current, expected_seq, prev = None, 1, GENESIS
    for row in rows:
        if row.work_point_id != current:
            current, expected_seq, prev = row.work_point_id, 1, GENESIS
        checked += 1
        problem = None
        if row.chain_seq != expected_seq:
            problem = "sequence_gap"
        elif row.prev_hash != prev:
            problem = "link_broken"
        elif row.row_hash != hash_row(row.prev_hash, row):
            problem = "content_changed"
        if problem is not None:
            broken = Broken(row.work_point_id, row.chain_seq, str(row.event_id), problem)
            return Verification(checked, broken)
        expected_seq, prev = row.chain_seq + 1, row.row_hash
    return Verification(checked, None)
