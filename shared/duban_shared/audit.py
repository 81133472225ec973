"""The audit trail: who did what to which subject, when, with the state before and after.

Each service keeps its own `audit_log` table built from `AuditFields` (each service owns its
data) and records an entry with `record_audit` IN THE SAME TRANSACTION as the change it
describes: the entry exists exactly when the change does. The office reads a service's trail
through `GET /v1/audit` (filters, pages) and `GET /v1/audit.xlsx` (the same rows as a
workbook), both built by `duban_shared.audit_api.audit_router`.

Actions are stable dotted strings (`policy.changed`, `extension.approved`, `contact.replaced`):
filter on them, never on the Chinese label shown beside them.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from pydantic import BaseModel
from pydantic import Field as PydanticField
from pydantic_core import to_jsonable_python
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.db import utc_column

if TYPE_CHECKING:
    from duban_shared.auth import Principal

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 50_000
"""The most rows one export holds; narrow the filters (from, to, action) for more."""


@dataclass(frozen=True)
class Actor:
    """Who acted: the API client (id, role, agency), and the person once people log in.

    A command run by an operator on the host has the client id `cli:<command>` and the role
    `operator`; a rule the service applies by itself has the role `system`."""

    client_id: str
    role: str
    agency_id: uuid.UUID | None = None
    person: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The actor of a request, as its verified token says."""
        return cls(principal.client_id, principal.role, principal.agency_id, principal.person)


class AuditFields(SQLModel):
    """Columns of an audit table; a service's `audit_log` model inherits them."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column(index=True)
    actor_client_id: str = Field(max_length=200, index=True)
    actor_role: str = Field(max_length=40)
    actor_agency_id: uuid.UUID | None = Field(default=None)
    actor_person: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=80, index=True)
    subject: str = Field(max_length=300, index=True)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    trace_id: str | None = Field(default=None, max_length=32)


def jsonable(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A state as plain JSON (dates and times ISO 8601, UUIDs as text)."""
    if state is None:
        return None
    value: dict[str, Any] = to_jsonable_python(dict(state))
    return value


def current_trace_id() -> str | None:
    """The id of the trace the change is made in (32 hex digits), to find its spans."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def record_audit(
    session: AsyncSession,
    model: type[Any],
    *,
    actor: Actor,
    action: str,
    subject: str,
    at: datetime,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> Any:
    """Add an audit entry to the session's open transaction (commit it with the change)."""
    row = model(
        at=at,
        actor_client_id=actor.client_id,
        actor_role=actor.role,
        actor_agency_id=actor.agency_id,
        actor_person=actor.person,
        action=action,
        subject=subject,
        before=jsonable(before),
        after=jsonable(after),
        trace_id=current_trace_id(),
    )
    session.add(row)
    return row


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, before and after (what an entry needs to show)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


class AuditEntry(BaseModel):
    """One audit entry."""

    id: int
    at: datetime
    actor_client_id: str = PydanticField(description="The API client that acted.")
    actor_role: str = PydanticField(description="coordinator, operator, agency or system.")
    actor_agency_id: uuid.UUID | None
    actor_person: str | None
    action: str = PydanticField(examples=["policy.changed"])
    subject: str = PydanticField(examples=["2024/35"])
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    trace_id: str | None


@dataclass(frozen=True)
class AuditFilter:
    """What to keep of a trail (every given condition holds)."""

    action: str | None = None
    subject: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(model: type[Any], query: Any, where: AuditFilter) -> Any:
    if where.action is not None:
        query = query.where(col(model.action) == where.action)
    if where.subject is not None:
        query = query.where(col(model.subject) == where.subject)
    if where.actor is not None:
        query = query.where(col(model.actor_client_id) == where.actor)
    if where.since is not None:
        query = query.where(col(model.at) >= where.since)
    if where.until is not None:
        query = query.where(col(model.at) < where.until)
    return query


async def audit_page(
    session: AsyncSession, model: type[Any], where: AuditFilter, limit: int, offset: int
) -> tuple[list[Any], int]:
    """A page of a trail, newest first, and how many entries match in all."""
    rows = await session.exec(
        _filtered(model, select(model), where)
        .order_by(col(model.at).desc(), col(model.id).desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.exec(_filtered(model, select(func.count()).select_from(model), where))
    return list(rows.all()), int(total.one())


def entry_out(row: Any) -> AuditEntry:
    """Shape a stored entry for the API."""
    return AuditEntry.model_validate(row, from_attributes=True)


XLSX_COLUMNS = (
    ("id", "序号"),
    ("at", "时间(UTC)"),
    ("actor_client_id", "操作客户端"),
    ("actor_role", "角色"),
    ("actor_agency_id", "所属单位"),
    ("actor_person", "操作人"),
    ("action", "操作"),
    ("subject", "对象"),
    ("before", "变更前"),
    ("after", "变更后"),
    ("trace_id", "追踪号"),
)
"""The workbook's columns: field name, Chinese heading."""


def audit_xlsx(entries: Sequence[AuditEntry], *, title: str = "审计日志") -> bytes:
    """The entries as a workbook: one sheet, a heading row, one row per entry (JSON states as
    compact text, times as naive UTC since Excel has no time zones)."""
    import json

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    sheet.append([heading for _, heading in XLSX_COLUMNS])
    for entry in entries:
        cells: list[Any] = []
        for name, _ in XLSX_COLUMNS:
            value = getattr(entry, name)
            if isinstance(value, dict):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            elif isinstance(value, datetime):
                value = value.replace(tzinfo=None)
            elif isinstance(value, uuid.UUID):
                value = str(value)
            cells.append(value)
        sheet.append(cells)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
