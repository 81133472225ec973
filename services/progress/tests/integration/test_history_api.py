"""The report history's verification over HTTP: the office checks everything, an agency its own
work points, and a report posted through the API is in a chain that holds."""

from __future__ import annotations

from progress.store.models import StatusReport
from sqlmodel import func, select

from tests.harness import wait_for
from tests.stack import PLAN, Stack


async def test_history_verification_is_open_to_the_office_and_to_responsible_agencies(
    stack: Stack,
) -> None:
    forestry = await stack.token(stack.forestry)
    assert (await stack.post_event(forestry, 35, "on_track", percent=20)).status_code == 202

    async def stored() -> bool:
        async with stack.progress.sessions() as session:
            return (await session.exec(select(func.count()).select_from(StatusReport))).one() == 1

    await wait_for(stored, what="the report to be stored")
    office = await stack.auth(stack.office)
    everything = await stack.progress_http.get("/v1/history/verify", headers=office)
    assert everything.json() == {"ok": True, "rows_checked": 1, "first_broken": None}

    own = await stack.progress_http.get(
        f"/v1/work-points/{PLAN}/35/history/verify", headers=await stack.auth(stack.forestry)
    )
    assert (own.status_code, own.json()["ok"]) == (200, True)
    other = await stack.progress_http.get(
        f"/v1/work-points/{PLAN}/41/history/verify", headers=await stack.auth(stack.forestry)
    )
    assert (other.status_code, other.json()["code"]) == (403, "not_your_work_point")
    refused = await stack.progress_http.get(
        "/v1/history/verify", headers=await stack.auth(stack.forestry)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "office_only")
