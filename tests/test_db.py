"""The engines every service makes (duban_shared.db.create_engine) on PostgreSQL."""

from __future__ import annotations

from duban_shared.db import create_engine
from sqlalchemy import text


async def test_statements_are_planned_for_their_own_parameters(pg_admin_url: str) -> None:
    # A generic plan settled on while a table was small stays with a prepared statement; the
    # engine's sessions plan each execution for its parameters instead.
    engine = create_engine(pg_admin_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
    finally:
        await engine.dispose()
    assert mode == "force_custom_plan"
