"""The status consumer's plain rows (progress.store.rows) stay the columns of their tables, with
the same defaults, and behave as the models' methods do; a batch span links to its records'
traces."""

from __future__ import annotations

import uuid
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from duban_shared.kafka import batch_span, traceparent_of
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from progress.store.models import WorkPointState, WorkPointView
from progress.store.rows import ROW_CLASSES, StateRow, ViewRow, column_names


@pytest.mark.parametrize("row_class", list(ROW_CLASSES), ids=lambda c: c.__name__)
def test_a_plain_row_has_the_columns_of_its_table(row_class: type[Any]) -> None:
    table, model = ROW_CLASSES[row_class]
    assert set(column_names(row_class)) == {c.name for c in table.columns}
    for f in fields(row_class):
        declared = model.model_fields[f.name]
        if f.default is not MISSING:
            assert declared.default == f.default, f.name
        elif f.default_factory is not MISSING:
            assert declared.default_factory is not None, f.name
            assert declared.default_factory() == f.default_factory(), f.name


def test_plain_rows_answer_as_the_models_do() -> None:
    lead, co, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    responsibilities = [
        {"agency_id": str(lead), "name": "甲局", "role": "lead"},
        {"agency_id": str(co), "name": "乙局", "role": "co"},
    ]
    view = WorkPointView(
        id="plan/1",
        plan_slug="plan",
        number=1,
        code="1",
        title="要点",
        responsibilities=responsibilities,
        report_every_working_days=10,
        grace_working_days=3,
        snapshot_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    row = ViewRow(**{name: getattr(view, name) for name in column_names(ViewRow)})
    for agency in (lead, co, other):
        assert row.role_of(agency) == view.role_of(agency)
    for role in ("lead", "co", None):
        assert row.agency_ids(role) == view.agency_ids(role)

    since = datetime(2025, 1, 1, tzinfo=UTC)
    episode = uuid.uuid4()
    model = WorkPointState(
        work_point_id="plan/1", tracking_since=since, level="red", reasons=["blocked"]
    )
    state = StateRow(work_point_id="plan/1", tracking_since=since, level="red", reasons=["blocked"])
    for with_episode in (None, episode):
        model.stall_episode_id = state.stall_episode_id = with_episode
        assert (state.open_level, state.stall_reason, state.last_heard()) == (
            model.open_level,
            model.stall_reason,
            model.last_heard(),
        )


def _record(offset: int, traceparent: str | None) -> ConsumerRecord[bytes, bytes]:
    headers = [("traceparent", traceparent.encode())] if traceparent else []
    return ConsumerRecord("status", 0, offset, 0, 0, b"k", b"{}", None, 1, 2, headers)


def test_a_batch_is_one_span_linked_to_its_records_traces() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sent = [f"00-{i:032x}-{i:016x}-01" for i in range(1, 4)]
    records = [_record(0, sent[0]), _record(1, None), _record(2, "junk"), _record(3, sent[1])]
    records.append(_record(4, sent[2]))
    parents = [traceparent_of(r) for r in records]
    assert parents[1] is None and parents[2] == "junk"
    with batch_span(provider.get_tracer("t"), records, parents):
        pass
    [span] = exporter.get_finished_spans()
    assert span.name == "process status" and span.parent is None
    assert span.attributes is not None and span.attributes["messaging.batch.message_count"] == 5
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
        (1, 1),
        (2, 2),
        (3, 3),
    ]

    dropped = TracerProvider(sampler=ALWAYS_OFF)
    with batch_span(dropped.get_tracer("t"), records, parents) as unsampled:
        assert not unsampled.is_recording()
