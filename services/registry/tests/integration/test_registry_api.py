"""The registry's REST API over the imported plan: who may read and change what, pagination
and filters, versions with confirmation, agencies, policies, responsibilities and shares."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from registry.service import RegistryService

from tests.stack import bearer

PLAN = "zhaoqing-digital-2024"
TEXT = (Path(__file__).resolve().parents[4] / "data" / "plans" / f"{PLAN}.txt").read_text()
WP = f"/v1/plans/{PLAN}/work-points"


@pytest.fixture
async def office(registry: RegistryService) -> dict[str, str]:
    return await bearer(registry, "coordinator")


@pytest.fixture
async def forestry(registry: RegistryService) -> dict[str, str]:
    return await bearer(registry, "agency", "市林业局")


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    assert body["code"] == code and body["message"], body
    return body


async def _agency_id(http: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    response = await http.get("/v1/agencies/resolve", params={"name": name}, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_reading_needs_a_token_and_any_agency_may_read_the_plan(
    http: httpx.AsyncClient, forestry: dict[str, str]
) -> None:
    _error(await http.get(WP), 401, "missing_token")
    page = (await http.get(WP, params={"limit": 10, "offset": 40}, headers=forestry)).json()
    assert (page["total"], page["limit"], page["offset"]) == (50, 10, 40)
    assert [wp["number"] for wp in page["items"]] == list(range(41, 51))
    assert page["items"][0]["targets"][0]["value"] == 8000
    assert page["items"][0]["policy"]["due_on"] == "2024-12-31"


async def test_work_points_filter_by_agency_role_and_section(
    http: httpx.AsyncClient, forestry: dict[str, str]
) -> None:
    office_id = await _agency_id(http, forestry, "肇庆市政务服务和数据管理局")
    leads = (
        await http.get(
            WP, params={"agency_id": office_id, "role": "lead", "limit": 500}, headers=forestry
        )
    ).json()
    assert leads["total"] == len(leads["items"]) >= 15
    assert all(
        any(r["agency_id"] == office_id and r["role"] == "lead" for r in wp["responsibilities"])
        for wp in leads["items"]
    )
    section_9 = (await http.get(WP, params={"section": 9}, headers=forestry)).json()
    assert [wp["number"] for wp in section_9["items"]] == [35, 36, 37]


async def test_an_agency_cannot_change_the_plan(
    http: httpx.AsyncClient, forestry: dict[str, str]
) -> None:
    policy = {
        "report_every_working_days": 5,
        "grace_working_days": 2,
        "warn_before_due_working_days": 10,
        "pace_tolerance_pct": 10,
        "flatline_reports": 3,
    }
    _error(
        await http.put(f"/v1/plans/{PLAN}/policy", json=policy, headers=forestry),
        403,
        "office_only",
    )


async def test_the_office_sets_policies_with_validation_and_overrides(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    bad = {
        "report_every_working_days": 0,
        "grace_working_days": 2,
        "warn_before_due_working_days": 10,
        "pace_tolerance_pct": 10,
        "flatline_reports": 3,
    }
    body = _error(
        await http.put(f"/v1/plans/{PLAN}/policy", json=bad, headers=office),
        422,
        "invalid_request",
    )
    assert "report_every_working_days" in str(body["details"])
    good = {**bad, "report_every_working_days": 5}
    plan = await http.put(f"/v1/plans/{PLAN}/policy", json=good, headers=office)
    assert plan.json()["policy"]["report_every_working_days"] == 5

    override = await http.put(
        f"{WP}/41/policy", json={"grace_working_days": 0, "due_on": "2024-11-30"}, headers=office
    )
    assert override.status_code == 200, override.text
    policy = override.json()["policy"]
    assert (policy["report_every_working_days"], policy["grace_working_days"]) == (5, 0)
    assert policy["due_on"] == "2024-11-30"
    _error(
        await http.put(f"{WP}/41/policy", json={"due_on": "2024-01-01"}, headers=office),
        422,
        "due_before_issue",
    )


async def test_a_due_date_outside_the_plan_year_and_the_next_is_refused_on_every_path(
    http: httpx.AsyncClient, office: dict[str, str], registry: RegistryService
) -> None:
    # A due date in 2030 was once accepted and then failed in progress, whose calendar cannot
    # count working days that far; the 2024 plan may set due dates in 2024 and 2025.
    for due_on in ("2030-12-31", "2026-01-01", "2023-12-31", "0001-01-01", "9999-12-31"):
        body = _error(
            await http.put(f"{WP}/41/policy", json={"due_on": due_on}, headers=office),
            422,
            "due_on_out_of_range",
        )
        assert due_on in str(body["message"])
        assert body["details"] == {"earliest": "2024-01-01", "latest": "2025-12-31"}
        _error(
            await http.patch(f"/v1/plans/{PLAN}", json={"due_on": due_on}, headers=office),
            422,
            "due_on_out_of_range",
        )
    latest = await http.put(f"{WP}/41/policy", json={"due_on": "2025-12-31"}, headers=office)
    assert latest.status_code == 200, latest.text
    assert latest.json()["policy"]["due_on"] == "2025-12-31"
    plan = await http.patch(f"/v1/plans/{PLAN}", json={"due_on": "2025-06-30"}, headers=office)
    assert plan.status_code == 200, plan.text
    assert plan.json()["due_on"] == "2025-06-30"
    work_point = (await http.get(f"{WP}/41", headers=office)).json()
    assert work_point["policy"]["due_on"] == "2025-12-31"  # the refused ones changed nothing
    registry.settings.latest_due_years_after_plan = 0  # DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN
    body = _error(
        await http.put(f"{WP}/41/policy", json={"due_on": "2025-01-01"}, headers=office),
        422,
        "due_on_out_of_range",
    )
    assert body["details"] == {"earliest": "2024-01-01", "latest": "2024-12-31"}


async def test_a_new_text_shows_its_diff_and_applies_only_when_confirmed(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    url = f"/v1/plans/{PLAN}/versions"
    same = await http.post(url, json={"text": TEXT}, headers=office)
    assert same.status_code == 200 and same.json()["applied"] is False
    changed = TEXT.replace("(市林业局牵头)", "(市林业局牵头,市资源局按职责分工负责)")
    body = _error(
        await http.post(url, json={"text": changed}, headers=office), 409, "confirmation_required"
    )
    assert body["details"]["responsibilities_changed"] == ["35"]  # type: ignore[index]
    applied = await http.post(url, json={"text": changed, "confirm": True}, headers=office)
    assert applied.status_code == 200, applied.text
    assert (applied.json()["applied"], applied.json()["version"]) == (True, 2)
    versions = (await http.get(url, headers=office)).json()
    assert [v["version"] for v in versions] == [2, 1]
    _error(
        await http.post(url, json={"text": "这段文字不是计划。"}, headers=office),
        422,
        "no_plan_title",
    )


async def test_agencies_resolve_take_aliases_rename_and_merge(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    forestry_id = await _agency_id(http, office, "肇庆市林业局")
    office_id = await _agency_id(http, office, "市政务服务和数据管理局")
    added = await http.post(
        f"/v1/agencies/{office_id}/aliases", json={"name": "市政数局"}, headers=office
    )
    assert "市政数局" in added.json()["aliases"]
    assert await _agency_id(http, office, "市政数局") == office_id
    _error(
        await http.post(
            f"/v1/agencies/{forestry_id}/aliases", json={"name": "市政数局"}, headers=office
        ),
        409,
        "alias_taken",
    )
    renamed = await http.post(
        f"/v1/agencies/{forestry_id}/rename", json={"name": "市林业和草原局"}, headers=office
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["aliases"] == ["市林业局"]
    assert [h["action"] for h in renamed.json()["history"]] == ["created", "renamed"]
    wp35 = (await http.get(f"{WP}/35", headers=office)).json()
    assert wp35["responsibilities"][0]["agency_name"] == "市林业和草原局"

    resources_id = await _agency_id(http, office, "市资源局")
    merged = await http.post(
        f"/v1/agencies/{resources_id}/merge", json={"into": forestry_id}, headers=office
    )
    assert merged.status_code == 200, merged.text
    assert "市资源局" in merged.json()["aliases"]
    listed = (await http.get("/v1/agencies", params={"name": "资源"}, headers=office)).json()
    assert listed["total"] == 0
    _error(
        await http.post(
            f"/v1/agencies/{forestry_id}/merge", json={"into": forestry_id}, headers=office
        ),
        422,
        "merge_into_itself",
    )


async def test_target_shares_must_add_up_and_go_to_responsible_agencies(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    it_id = await _agency_id(http, office, "市工信局")
    office_id = await _agency_id(http, office, "市政务服务和数据管理局")
    forestry_id = await _agency_id(http, office, "市林业局")
    url = f"{WP}/41/targets/0/shares"
    body = _error(
        await http.put(
            url,
            json={
                "shares": [
                    {"agency_id": it_id, "share": 0.5},
                    {"agency_id": office_id, "share": 0.4},
                ]
            },
            headers=office,
        ),
        422,
        "invalid_request",
    )
    assert "add up to 1" in str(body["details"])
    _error(
        await http.put(
            url, json={"shares": [{"agency_id": forestry_id, "share": 1}]}, headers=office
        ),
        422,
        "share_to_unresponsible_agency",
    )
    ok = await http.put(
        url,
        json={
            "shares": [{"agency_id": it_id, "share": 0.75}, {"agency_id": office_id, "share": 0.25}]
        },
        headers=office,
    )
    assert ok.status_code == 200, ok.text
    assert sorted(s["share"] for s in ok.json()["targets"][0]["shares"]) == [0.25, 0.75]
    assert ok.json()["revision"] == 2
    _error(
        await http.put(
            f"{WP}/41/targets/9/shares",
            json={"shares": [{"agency_id": it_id, "share": 1}]},
            headers=office,
        ),
        404,
        "unknown_target",
    )


async def test_responsibilities_need_a_lead_and_known_agencies(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    forestry_id = await _agency_id(http, office, "市林业局")
    resources_id = await _agency_id(http, office, "市资源局")
    url = f"{WP}/35/responsibilities"
    _error(
        await http.put(url, json={"lead": [], "co": [forestry_id]}, headers=office),
        422,
        "invalid_request",
    )
    _error(
        await http.put(
            url, json={"lead": ["00000000-0000-0000-0000-000000000000"]}, headers=office
        ),
        404,
        "unknown_agency",
    )
    ok = await http.put(url, json={"lead": [forestry_id], "co": [resources_id]}, headers=office)
    assert [(r["agency_name"], r["role"]) for r in ok.json()["responsibilities"]] == [
        ("市林业局", "lead"),
        ("市资源局", "co"),
    ]
