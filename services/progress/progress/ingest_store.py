"""The database work of status ingestion, kept to as few round trips as it can be.

A report costs two short statements, each on a connection taken from the pool for that statement
only and in autocommit (no BEGIN/COMMIT round trips), never held while the broker answers:
- before producing, one SELECT finds both the answer already given for its `event_id` (a
  replay) and the work point it is about;
- after the broker acknowledged it, one `INSERT ... ON CONFLICT DO NOTHING` records the answer;
  the `event_id`s it did not insert were accepted meanwhile by a concurrent request.
A batch does the same with one statement per step for all its reports.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from progress.models import IngestedEvent, WorkPointView
from progress.store import among

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


def _view(row: Any) -> WorkPointView | None:
    if row is None:
        return None
    return WorkPointView(**{c.name: getattr(row, f"v_{c.name}") for c in _VIEWS.columns})


def _event(row: Any) -> IngestedEvent | None:
    if row is None:
        return None
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
    if row.e_event_id is None:
        return None, _view(row if row.v_id is not None else None)
    return _event(row), _view(row if row.v_id is not None else None)


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
