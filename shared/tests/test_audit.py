"""The audit trail's shared pieces: an entry records the actor, the states as JSON and the
trace; pages filter and count; the workbook reads back with the same rows."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from duban_shared.audit import (
    XLSX_COLUMNS,
    Actor,
    AuditFields,
    AuditFilter,
    audit_page,
    audit_xlsx,
    changed_fields,
    entry_out,
    record_audit,
)
from duban_shared.auth import Principal
from duban_shared.db import create_engine, session_factory
from openpyxl import load_workbook
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.orm import registry
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class _Base(SQLModel, registry=registry()):
    pass


class _Audit(AuditFields, _Base, table=True):
    __tablename__ = "audit_log"


T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
AGENCY = uuid.UUID("00000000-0000-0000-0000-00000000000a")


@pytest.fixture
async def session(tmp_path: object) -> AsyncIterator[AsyncSession]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    async with engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    async with session_factory(engine)() as s:
        yield s
    await engine.dispose()


def test_changed_fields_keeps_only_differences() -> None:
    before = {"due_on": "2024-06-30", "grace_working_days": 3, "title": "x"}
    after = {"due_on": "2024-09-30", "grace_working_days": 3, "title": "x"}
    assert changed_fields(before, after) == ({"due_on": "2024-06-30"}, {"due_on": "2024-09-30"})


def test_actor_of_a_principal() -> None:
    actor = Actor.of(Principal(client_id="linye", role="agency", agency_id=AGENCY))
    assert actor == Actor("linye", "agency", AGENCY, None)


async def test_record_filter_page_and_workbook(session: AsyncSession) -> None:
    office = Actor("office", "coordinator")
    tracer = TracerProvider().get_tracer("test")
    async with session.begin():
        with tracer.start_as_current_span("change") as span:
            record_audit(
                session,
                _Audit,
                actor=office,
                action="policy.changed",
                subject="2024/35",
                at=T0,
                before={"due_on": date(2024, 6, 30)},
                after={"due_on": date(2024, 9, 30)},
            )
            trace_id = format(span.get_span_context().trace_id, "032x")
        record_audit(
            session,
            _Audit,
            actor=Actor("linye", "agency", AGENCY),
            action="extension.requested",
            subject="2024/35",
            at=T0 + timedelta(hours=1),
            after={"requested_due_on": date(2024, 9, 30), "agency_id": AGENCY},
        )
        record_audit(
            session,
            _Audit,
            actor=office,
            action="client.revoked",
            subject="x",
            at=T0 + timedelta(days=1),
        )

    rows, total = await audit_page(session, _Audit, AuditFilter(subject="2024/35"), 10, 0)
    assert total == 2
    assert [r.action for r in rows] == ["extension.requested", "policy.changed"]  # newest first
    changed = entry_out(rows[1])
    assert changed.before == {"due_on": "2024-06-30"}
    assert changed.after == {"due_on": "2024-09-30"}
    assert changed.trace_id == trace_id
    assert entry_out(rows[0]).after == {
        "requested_due_on": "2024-09-30",
        "agency_id": str(AGENCY),
    }

    by_actor, n = await audit_page(session, _Audit, AuditFilter(actor="office"), 1, 1)
    assert n == 2 and [r.action for r in by_actor] == ["policy.changed"]
    window = AuditFilter(since=T0 + timedelta(minutes=30), until=T0 + timedelta(days=1))
    assert [r.action for r in (await audit_page(session, _Audit, window, 10, 0))[0]] == [
        "extension.requested"
    ]

    everything, _ = await audit_page(session, _Audit, AuditFilter(), 10, 0)
    entries = [entry_out(r) for r in everything]
    book = load_workbook(io.BytesIO(audit_xlsx(entries)))
    sheet = book.active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == tuple(heading for _, heading in XLSX_COLUMNS)
    assert [row[0] for row in values[1:]] == [e.id for e in entries]
    assert [row[6] for row in values[1:]] == [e.action for e in entries]
    last = values[-1]
    assert last[1] == T0.replace(tzinfo=None)
    assert json.loads(str(last[8])) == {"due_on": "2024-06-30"}
    assert json.loads(str(last[9])) == {"due_on": "2024-09-30"}
