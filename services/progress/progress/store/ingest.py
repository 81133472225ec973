"""The database work of status ingestion, kept to as few round trips as it can be.

A report costs two short statements, each on a connection taken from the pool for that statement
only and in autocommit (no BEGIN/COMMIT round trips), never held while the broker answers:
- before producing, one SELECT finds both the answer already given for its `event_id` (a
  replay) and the work point it is about;
- after the broker acknowledged it, one `INSERT ... ON CONFLICT DO NOTHING` records the answer;
  the `event_id`s it did not insert were accepted meanwhile by a concurrent request.
A batch does the same with one statement per step for all its reports.

Concurrent single reports share those statements (`IngestStore`): while one round of look-ups
or records is with the database, the next requests' questions wait, and the next round asks them
all at once. Under load a round serves many requests (one pool checkout, one statement, one span
for all); a request alone is served at once, as before. A round is traced as its own trace (its
database spans below it), linked both ways with the requests it answered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from duban_shared import attributes as attr
from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy import Table, bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from progress.store.models import IngestedEvent, WorkPointView
from progress.store.sql import among

_EVENTS: Table = IngestedEvent.__table__  # type: ignore[attr-defined]
_VIEWS: Table = WorkPointView.__table__  # type: ignore[attr-defined]


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection on which each statement commits on its own (no BEGIN, no COMMIT).

    Set per connection: an option engine (`engine.execution_options`) costs more to make than
    the statements it would run.
    """
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


def _view(row: Any) -> WorkPointView:
    return WorkPointView(**{c.name: getattr(row, f"v_{c.name}") for c in _VIEWS.columns})


def _event(row: Any) -> IngestedEvent:
    return IngestedEvent(**{c.name: getattr(row, f"e_{c.name}") for c in _EVENTS.columns})


_ONE = select(literal(1).label("one")).subquery("one")
_LOOK_UP = select(
    *(c.label(f"e_{c.name}") for c in _EVENTS.columns),
    *(c.label(f"v_{c.name}") for c in _VIEWS.columns),
).select_from(
    _ONE.outerjoin(_EVENTS, _EVENTS.c.event_id == bindparam("event_id")).outerjoin(
        _VIEWS, _VIEWS.c.id == bindparam("work_point_id")
    )
)


async def look_up(
    engine: AsyncEngine, event_id: uuid.UUID, work_point_id: str
) -> tuple[IngestedEvent | None, WorkPointView | None]:
    """The answer recorded for `event_id` (None if new) and the work point (None if unknown),
    in one statement."""
    async with _autocommit(engine) as conn:
        result = await conn.execute(
            _LOOK_UP, {"event_id": event_id, "work_point_id": work_point_id}
        )
        row = result.one()
    event = _event(row) if row.e_event_id is not None else None
    view = _view(row) if row.v_id is not None else None
    return event, view


async def look_up_many(
    engine: AsyncEngine, event_ids: Collection[uuid.UUID], work_point_ids: Collection[str]
) -> tuple[dict[uuid.UUID, IngestedEvent], dict[str, WorkPointView]]:
    """The recorded answers of some event_ids and some work points, for a batch."""
    async with _autocommit(engine) as conn:
        seen: dict[uuid.UUID, IngestedEvent] = {}
        if event_ids:
            events = await conn.execute(
                select(_EVENTS).where(among(conn, _EVENTS.c.event_id, event_ids))
            )
            for row in events:
                seen[row.event_id] = IngestedEvent(**row._mapping)
        views: dict[str, WorkPointView] = {}
        if work_point_ids:
            rows = await conn.execute(
                select(_VIEWS).where(among(conn, _VIEWS.c.id, work_point_ids))
            )
            for row in rows:
                views[row.id] = WorkPointView(**row._mapping)
    return seen, views


# Parameters apart from the statement, so it is compiled once (several rows: one INSERT of many
# VALUES with RETURNING, SQLAlchemy's "insertmanyvalues").
_INSERT = {
    name: dialect.insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=["event_id"])
    .returning(_EVENTS.c.event_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


async def record(engine: AsyncEngine, rows: Sequence[IngestedEvent]) -> set[uuid.UUID]:
    """Insert the answers given; return the event_ids already there (accepted concurrently by
    another request), whose rows were left as they were."""
    if not rows:
        return set()
    values = [{c.name: getattr(row, c.name) for c in _EVENTS.columns} for row in rows]
    async with _autocommit(engine) as conn:
        statement = _INSERT[conn.dialect.name]
        inserted = set((await conn.execute(statement, values)).scalars())
    return {row.event_id for row in rows} - inserted


Q = TypeVar("Q")
A = TypeVar("A")


_Asked = tuple[Q, "asyncio.Future[A]", trace.Span]  # a question, its answer, the asker's span
_TO_REQUEST = {attr.LINK_KIND: "ingest request"}
_TO_ROUND = {attr.LINK_KIND: "ingest round"}


class Rounds(Generic[Q, A]):
    """Answers questions in rounds: a question asked while a round is with the database waits
    for the next round, which takes every waiting question (up to `most`) at once.

    `answer_all` answers a list of questions in order; if it raises, every question of that
    round gets the error. Each round runs in a span `name` of its own trace (the database spans
    of `answer_all` below it), linked to the span of every request it answered, and each such
    request's span links back to it: the round's work belongs to no single request.
    """

    def __init__(
        self,
        answer_all: Callable[[list[Q]], Awaitable[list[A]]],
        *,
        name: str = "ingest round",
        tracer: trace.Tracer | None = None,
        most: int = 500,
    ) -> None:
        self._answer_all = answer_all
        self._name = name
        self._tracer = tracer or trace.get_tracer(__name__)
        self._most = most
        self._waiting: list[_Asked[Q, A]] = []
        self._runner: asyncio.Task[None] | None = None

    async def ask(self, question: Q) -> A:
        """The answer to one question, from the next round."""
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._waiting.append((question, future, trace.get_current_span()))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="ingest-rounds")
        return await future

    async def _run(self) -> None:
        batch: list[_Asked[Q, A]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                try:
                    answers = await self._round(batch)
                except Exception as exc:  # every asker of the round gets the database's error
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future, _), answer in zip(batch, answers, strict=True):
                    if not future.done():  # an asker that went away (client gone) is skipped
                        future.set_result(answer)
        finally:
            self._runner = None
            left, self._waiting = [*batch, *self._waiting], []
            for _, future, _ in left:  # undone only if this task was cancelled (shutdown)
                if not future.done():
                    future.cancel()

    async def _round(self, batch: list[_Asked[Q, A]]) -> list[A]:
        askers = [span for _, _, span in batch if span.is_recording()]
        links = [trace.Link(s.get_span_context(), _TO_REQUEST) for s in askers]
        with self._tracer.start_as_current_span(
            self._name,
            context=otel_context.Context(),  # a trace of its own, not the first asker's
            links=links,
            attributes={attr.ROUND_SIZE: len(batch)},
        ) as span:
            for asker in askers:
                asker.add_link(span.get_span_context(), _TO_ROUND)
            return await self._answer_all([question for question, _, _ in batch])


LookUp = tuple[IngestedEvent | None, WorkPointView | None]


class IngestStore:
    """Ingestion's two statements for concurrent requests, asked in shared rounds (`Rounds`)."""

    def __init__(self, engine: AsyncEngine, tracer: trace.Tracer | None = None) -> None:
        self._engine = engine
        self._look_ups: Rounds[tuple[uuid.UUID, str], LookUp] = Rounds(
            self._look_up_round, name="ingest look-up round", tracer=tracer
        )
        self._records: Rounds[IngestedEvent, bool] = Rounds(
            self._record_round, name="ingest record round", tracer=tracer
        )

    async def look_up(self, event_id: uuid.UUID, work_point_id: str) -> LookUp:
        """The answer recorded for `event_id` (None if new) and the work point (None if
        unknown)."""
        return await self._look_ups.ask((event_id, work_point_id))

    async def record(self, row: IngestedEvent) -> bool:
        """Record an answer; False if its event_id was recorded already (by a concurrent
        request, maybe in the same round), leaving that row as it was."""
        return await self._records.ask(row)

    async def _look_up_round(self, keys: list[tuple[uuid.UUID, str]]) -> list[LookUp]:
        if len(keys) == 1:
            return [await look_up(self._engine, *keys[0])]
        seen, views = await look_up_many(
            self._engine, {event_id for event_id, _ in keys}, {wp for _, wp in keys}
        )
        return [(seen.get(event_id), views.get(wp)) for event_id, wp in keys]

    async def _record_round(self, rows: list[IngestedEvent]) -> list[bool]:
        first: dict[uuid.UUID, int] = {}
        for index, row in enumerate(rows):
            first.setdefault(row.event_id, index)
        raced = await record(self._engine, [rows[index] for index in first.values()])
        return [
            first[row.event_id] == index and row.event_id not in raced
            for index, row in enumerate(rows)
        ]
