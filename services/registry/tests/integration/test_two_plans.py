"""Two plans side by side in one registry: a 2024 and a 2025 plan share their agencies (one
agency row per agency, whichever plan names it first, and however a plan spells a name the
registry resolves), each plan keeps its own work points, and the agency's work points can be
read from each plan.

The 2025 plan is the 2024 text made 2025 (tests/stack.py), with 市林业局 written out as
肇庆市林业局, as many plans write their city's agencies.
"""

from __future__ import annotations

import httpx
from registry.domain.agency_identity import agency_id_for
from registry.main import RegistryService
from registry.store.models import Agency, Plan, Responsibility, WorkPoint
from sqlmodel import col, func, select

from tests.stack import PLAN, bearer, import_plan_into, plan_2025_text, plan_data_2025_text

PLAN_2025 = "zhaoqing-digital-2025"


def _text_2025() -> str:
    return plan_2025_text().replace("(市林业局牵头)", "(肇庆市林业局牵头)")


async def _agencies_by_plan(registry: RegistryService) -> dict[str, set[str]]:
    async with registry.sessions() as session:
        rows = await session.exec(
            select(Plan.slug, Responsibility.agency_id)
            .join(WorkPoint, col(WorkPoint.id) == col(Responsibility.work_point_id))
            .join(Plan, col(Plan.id) == col(WorkPoint.plan_id))
        )
        found: dict[str, set[str]] = {}
        for slug, agency in rows.all():
            found.setdefault(slug, set()).add(str(agency))
        return found


async def test_a_second_plan_imports_beside_the_first_and_shares_its_agencies(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    async with registry.sessions() as session:
        before = int((await session.exec(select(func.count()).select_from(Agency))).one())
    await import_plan_into(registry, _text_2025(), PLAN_2025)
    async with registry.sessions() as session:
        after = int((await session.exec(select(func.count()).select_from(Agency))).one())
    assert after == before  # no agency twice: the 2025 plan's agencies are the 2024 plan's

    by_plan = await _agencies_by_plan(registry)
    assert set(by_plan) == {PLAN, PLAN_2025}
    assert by_plan[PLAN] == by_plan[PLAN_2025]

    office = await bearer(registry)
    plans = (await http.get("/v1/plans", headers=office)).json()
    assert sorted(p["slug"] for p in plans["items"]) == [PLAN, PLAN_2025]
    forestry = agency_id_for("市林业局")
    for slug in (PLAN, PLAN_2025):
        listed = await http.get(
            f"/v1/plans/{slug}/work-points", params={"agency_id": str(forestry)}, headers=office
        )
        assert listed.status_code == 200, listed.text
        [wp] = listed.json()["items"]
        assert wp["number"] == 35
        assert [(r["agency_id"], r["agency_name"]) for r in wp["responsibilities"]] == [
            (str(forestry), "市林业局")
        ]
        full = await http.get(f"/v1/plans/{slug}/work-points", headers=office)
        assert full.json()["total"] == 50
    agency = await http.get(f"/v1/agencies/{forestry}", headers=office)
    assert (agency.status_code, agency.json()["name"]) == (200, "市林业局")


async def test_a_plan_in_another_layout_imports_beside_the_first_and_shares_its_agencies(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    async with registry.sessions() as session:
        before = int((await session.exec(select(func.count()).select_from(Agency))).one())
    await import_plan_into(registry, plan_data_2025_text(), "zhaoqing-data-2025")
    async with registry.sessions() as session:
        after = int((await session.exec(select(func.count()).select_from(Agency))).one())
    assert after == before  # every agency it names is one of the 2024 plan's

    office = await bearer(registry)
    listed = await http.get("/v1/plans/zhaoqing-data-2025/work-points", headers=office)
    assert listed.json()["total"] == 13
    assert [wp["code"] for wp in listed.json()["items"]][:4] == ["1.1", "1.2", "1.3", "2.1"]
    wp = await http.get("/v1/plans/zhaoqing-data-2025/work-points/2.3", headers=office)
    assert wp.status_code == 200, wp.text
    leads = [r["agency_id"] for r in wp.json()["responsibilities"] if r["role"] == "lead"]
    assert leads == [str(agency_id_for("市林业局"))]  # the same agency as the 2024 plan's 35
    assert wp.json()["policy"]["due_on"] == "2025-09-30"  # its 9月底前
