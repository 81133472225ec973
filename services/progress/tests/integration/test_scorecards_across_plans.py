"""Scorecards across plans: two plans tracked side by side, agencies shared by both, reports on
each; `GET /v1/scorecards` and `GET /v1/agencies/{id}/scorecard` give each agency once, with
each plan's card exactly as the per-plan read answers it and totals that are their sums.

The in-process stack (real Kafka and PostgreSQL); the second plan is the 2024 text made 2025
(tests/stack.py), so every agency is shared by both plans.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tests.stack import PLAN, Client, Stack, plan_2025_text, plan_data_2025_text

PLAN_2025 = "zhaoqing-digital-2025"
COUNTS = ("lead_of", "co_of", "reports", "reports_on_time", "late_reports", "silent_now")


async def _report(stack: Stack, who: Client, wp_id: str, status: str, percent: int) -> None:
    response = await stack.progress_http.post(
        "/v1/events",
        json={
            "event_id": str(uuid.uuid4()),
            "work_point_id": wp_id,
            "status": status,
            "percent": percent,
            "occurred_at": stack.clock.now().isoformat(),
        },
        headers=await stack.auth(who),
    )
    await stack.until_applied(response)


async def _two_plans_with_reports(stack: Stack) -> Client:
    """The 2025 plan beside the 2024 one; in January 2025 市林业局 (lead of 35 in both)
    reports on both plans and 市资源局 (lead of 36) on the 2025 plan only. Returns the second
    agency's client."""
    await stack.add_plan(plan_2025_text(), PLAN_2025)
    stack.clock.set(datetime.fromisoformat("2025-01-06T09:00:00+08:00"))  # a Monday
    await _report(stack, stack.forestry, f"{PLAN}/35", "blocked", 60)
    await _report(stack, stack.forestry, f"{PLAN_2025}/35", "on_track", 5)
    await _report(stack, stack.forestry, f"{PLAN_2025}/35", "on_track", 8)
    resources = await stack.client_for("市资源局")
    await _report(stack, resources, f"{PLAN_2025}/36", "on_track", 3)
    return resources


def _without_plan(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("plan_slug", "plan_title")}


async def _per_plan_card(stack: Stack, slug: str, agency_id: str) -> dict[str, Any]:
    response = await stack.office_get(f"/v1/plans/{slug}/agencies/{agency_id}/scorecard")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_agency_shared_by_two_plans_appears_once_with_each_plans_card_and_their_sums(
    stack: Stack,
) -> None:
    await _two_plans_with_reports(stack)

    answer = await stack.office_get("/v1/scorecards")
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    ids = [row["agency_id"] for row in rows]
    assert len(ids) == len(set(ids))  # each agency once
    per_plan_lists = {
        slug: (await stack.office_get(f"/v1/plans/{slug}/scorecards")).json()
        for slug in (PLAN, PLAN_2025)
    }
    assert set(ids) == {c["agency_id"] for cards in per_plan_lists.values() for c in cards}
    assert rows[0]["name"] == "市林业局"  # its red work point puts it first, as per plan

    for row in rows:
        cards = {c["plan_slug"]: c for c in row["plans"]}
        assert list(cards) == sorted(cards)
        for slug, card in cards.items():
            # Each plan's card is the per-plan read's answer, figure for figure.
            assert _without_plan(card) == await _per_plan_card(stack, slug, row["agency_id"])
            assert card["plan_title"] == f"数字肇庆建设{slug[-4:]}年工作要点"
        totals = row["totals"]
        for figure in COUNTS:
            assert totals[figure] == sum(c[figure] for c in cards.values()), figure
        for colour in ("red", "yellow", "blue", "green"):
            summed = sum(c["open_stalls"].get(colour, 0) for c in cards.values())
            assert totals["open_stalls"].get(colour, 0) == summed
        if totals["reports"]:
            rate = totals["reports_on_time"] / totals["reports"]
            assert totals["on_time_rate"] == round(rate, 3)
            delays = sum(
                c["average_delay_working_days"] * c["reports"]
                for c in cards.values()
                if c["reports"]
            )
            assert abs(totals["average_delay_working_days"] - delays / totals["reports"]) < 0.01

    forestry = next(row for row in rows if row["agency_id"] == str(stack.forestry_id))
    assert [c["plan_slug"] for c in forestry["plans"]] == [PLAN, PLAN_2025]
    assert [c["reports"] for c in forestry["plans"]] == [1, 2]
    assert forestry["totals"]["reports"] == 3
    assert forestry["totals"]["open_stalls"].get("red") == 1


async def test_an_agency_sees_only_its_own_scorecards_across_plans(stack: Stack) -> None:
    resources = await _two_plans_with_reports(stack)
    office_rows = (await stack.office_get("/v1/scorecards")).json()
    forestry_row = next(r for r in office_rows if r["agency_id"] == str(stack.forestry_id))

    own_list = await stack.progress_http.get(
        "/v1/scorecards", headers=await stack.auth(stack.forestry)
    )
    assert (own_list.status_code, own_list.json()) == (200, [forestry_row])
    own = await stack.progress_http.get(
        f"/v1/agencies/{stack.forestry_id}/scorecard", headers=await stack.auth(stack.forestry)
    )
    assert (own.status_code, own.json()) == (200, forestry_row)
    office_view = await stack.office_get(f"/v1/agencies/{stack.forestry_id}/scorecard")
    assert (office_view.status_code, office_view.json()) == (200, forestry_row)

    other = await stack.progress_http.get(
        f"/v1/agencies/{resources.agency_id}/scorecard", headers=await stack.auth(stack.forestry)
    )
    assert (other.status_code, other.json()["code"]) == (403, "not_your_agency")
    nobody = await stack.office_get(f"/v1/agencies/{uuid.uuid4()}/scorecard")
    assert (nobody.status_code, nobody.json()["code"]) == (404, "no_responsibilities")
    anonymous = await stack.progress_http.get("/v1/scorecards")
    assert anonymous.status_code == 401


async def test_the_scorecard_routes_are_documented_with_their_refusals(stack: Stack) -> None:
    document = (await stack.progress_http.get("/openapi.json")).json()
    across = document["paths"]["/v1/agencies/{agency_id}/scorecard"]["get"]["responses"]
    assert "not_your_agency" in across["403"]["description"]
    assert "no_responsibilities" in across["404"]["description"]
    assert "401" in document["paths"]["/v1/scorecards"]["get"]["responses"]


async def test_plans_in_different_layouts_share_an_agencys_scorecard(stack: Stack) -> None:
    """The 2024 plan (continuous ids) beside the invented 2025 plan numbered per section: 市林业局
    leads 35 in one and 2.3 in the other, and its card across plans has both."""
    await stack.add_plan(plan_data_2025_text(), "zhaoqing-data-2025", work_points=13)
    stack.clock.set(datetime.fromisoformat("2025-01-06T09:00:00+08:00"))
    await _report(stack, stack.forestry, f"{PLAN}/35", "on_track", 60)
    await _report(stack, stack.forestry, "zhaoqing-data-2025/2.3", "on_track", 5)
    card = await stack.office_get(f"/v1/agencies/{stack.forestry_id}/scorecard")
    assert card.status_code == 200, card.text
    plans = {c["plan_slug"]: c for c in card.json()["plans"]}
    assert set(plans) == {PLAN, "zhaoqing-data-2025"}
    assert (plans[PLAN]["reports"], plans["zhaoqing-data-2025"]["reports"]) == (1, 1)
    assert card.json()["totals"]["reports"] == 2
    progress = await stack.office_get("/v1/work-points/zhaoqing-data-2025/2.3/progress")
    assert progress.status_code == 200, progress.text
    assert progress.json()["code"] == "2.3"
