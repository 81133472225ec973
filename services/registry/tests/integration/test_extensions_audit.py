"""Extension requests (延期申请) over the registry's API, and its audit trail: a lead agency
asks, others are refused, one request is open at a time, the office decides, the due date
moves; every step is in GET /v1/audit with before and after, and the .xlsx has the same rows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from registry.service import RegistryService

from tests.harness import Spans
from tests.stack import bearer

PLAN = "zhaoqing-digital-2024"
WP = f"/v1/plans/{PLAN}/work-points"
TEXT = (Path(__file__).resolve().parents[4] / "data" / "plans" / f"{PLAN}.txt").read_text()


@pytest.fixture
async def office(registry: RegistryService) -> dict[str, str]:
    return await bearer(registry, "coordinator")


@pytest.fixture
async def forestry(registry: RegistryService) -> dict[str, str]:
    return await bearer(registry, "agency", "市林业局")


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["message"], body
    return body


async def _led_and_not_led(
    http: httpx.AsyncClient, headers: dict[str, str], agency: str
) -> tuple[str, str]:
    """A work point the agency leads, and one it has no lead role on."""
    found = await http.get("/v1/agencies/resolve", params={"name": agency}, headers=headers)
    agency_id = found.json()["id"]
    page = (await http.get(WP, params={"limit": 500}, headers=headers)).json()["items"]

    def leads(wp: dict[str, Any]) -> bool:
        return any(
            r["agency_id"] == agency_id and r["role"] == "lead" for r in wp["responsibilities"]
        )

    return next(wp["code"] for wp in page if leads(wp)), next(
        wp["code"] for wp in page if not leads(wp)
    )


async def test_an_extension_cycle_moves_the_due_date_and_is_audited(
    http: httpx.AsyncClient,
    office: dict[str, str],
    forestry: dict[str, str],
    registry: RegistryService,
    spans: Spans,
) -> None:
    led, other = await _led_and_not_led(http, forestry, "市林业局")
    ask = {"due_on": "2025-03-31", "reason": "苗木采购受季节影响，需延后"}
    _error(
        await http.post(f"{WP}/{other}/extensions", json=ask, headers=forestry),
        403,
        "not_lead_agency",
    )
    _error(
        await http.post(f"{WP}/{led}/extensions", json=ask, headers=office), 403, "not_lead_agency"
    )
    early = {"due_on": "2024-12-31", "reason": "x"}
    _error(
        await http.post(f"{WP}/{led}/extensions", json=early, headers=forestry),
        422,
        "extension_not_later",
    )
    far = {"due_on": "2031-01-01", "reason": "x"}
    _error(
        await http.post(f"{WP}/{led}/extensions", json=far, headers=forestry),
        422,
        "due_on_out_of_range",
    )

    asked = await http.post(f"{WP}/{led}/extensions", json=ask, headers=forestry)
    assert asked.status_code == 201, asked.text
    first = asked.json()
    assert (first["state"], first["state_label"]) == ("requested", "待审批")
    assert first["previous_due_on"] == "2024-12-31"
    _error(
        await http.post(f"{WP}/{led}/extensions", json=ask, headers=forestry),
        409,
        "extension_already_open",
    )

    # The agency withdraws, asks again; the office rejects, then approves a third.
    withdrawn = await http.post(f"{WP}/{led}/extensions/{first['id']}/withdraw", headers=forestry)
    assert withdrawn.json()["state"] == "withdrawn", withdrawn.text
    _error(
        await http.post(f"{WP}/{led}/extensions/{first['id']}/approve", json={}, headers=office),
        409,
        "extension_not_open",
    )
    second = (await http.post(f"{WP}/{led}/extensions", json=ask, headers=forestry)).json()
    _error(
        await http.post(
            f"{WP}/{led}/extensions/{second['id']}/reject",
            json={"reason": "不同意"},
            headers=forestry,
        ),
        403,
        "office_only",
    )
    rejected = await http.post(
        f"{WP}/{led}/extensions/{second['id']}/reject",
        json={"reason": "理由不充分"},
        headers=office,
    )
    assert rejected.json()["state"] == "rejected", rejected.text
    assert (await http.get(f"{WP}/{led}", headers=office)).json()["policy"][
        "due_on"
    ] == "2024-12-31"

    third = (await http.post(f"{WP}/{led}/extensions", json=ask, headers=forestry)).json()
    approved = await http.post(
        f"{WP}/{led}/extensions/{third['id']}/approve", json={"note": "同意延期"}, headers=office
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["decision_note"] == "同意延期"
    work_point = (await http.get(f"{WP}/{led}", headers=office)).json()
    assert work_point["policy"]["due_on"] == "2025-03-31"
    assert work_point["revision"] == 2
    _error(
        await http.post(f"{WP}/{led}/extensions/999/approve", json={}, headers=office),
        404,
        "unknown_extension",
    )

    history = (await http.get(f"{WP}/{led}/extensions", headers=forestry)).json()
    assert [(e["id"], e["state"]) for e in history] == [
        (first["id"], "withdrawn"),
        (second["id"], "rejected"),
        (third["id"], "approved"),
    ]
    assert history[1]["decision_note"] == "理由不充分" and history[1]["decided_by"]

    counted = {
        line.split('outcome="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in (await registry.metrics.exposition()).decode().splitlines()
        if line.startswith("duban_extension_requests_total{")
    }
    assert counted == {"requested": 3, "withdrawn": 1, "rejected": 1, "approved": 1}
    traced = [
        (s.attributes or {}).get("duban.extension.state")
        for s in spans.all()
        if (s.attributes or {}).get("duban.extension.id") == third["id"]
    ]
    assert traced == ["requested", "approved"]

    # The audit trail: office only, newest first, with before and after.
    _error(await http.get("/v1/audit", headers=forestry), 403, "office_only")
    _error(await http.get("/v1/audit.xlsx", headers=forestry), 403, "office_only")
    subject = f"{PLAN}/{led}"
    trail = (await http.get("/v1/audit", params={"subject": subject}, headers=office)).json()
    actions = [e["action"] for e in reversed(trail["items"])]
    assert actions == [
        "extension.requested",
        "extension.withdrawn",
        "extension.requested",
        "extension.rejected",
        "extension.requested",
        "extension.approved",
        "due_on.extended",
    ]
    extended = trail["items"][0]
    assert extended["before"] == {"due_on": None} and extended["after"] == {"due_on": "2025-03-31"}
    assert extended["actor_role"] == "coordinator" and extended["trace_id"]
    decision = trail["items"][1]
    assert decision["before"]["state"] == "requested"
    assert decision["after"]["state"] == "approved"
    assert trail["items"][-1]["actor_role"] == "agency"
    assert trail["items"][-1]["actor_agency_id"] is not None

    rejections = await http.get(
        "/v1/audit", params={"action": "extension.rejected", "limit": 1}, headers=office
    )
    assert rejections.json()["total"] == 1
    assert rejections.json()["items"][0]["after"]["decision_note"] == "理由不充分"

    workbook = await http.get("/v1/audit.xlsx", params={"subject": subject}, headers=office)
    assert workbook.status_code == 200
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))[1:]
    assert [(r[0], r[6], r[7]) for r in rows] == [
        (e["id"], e["action"], e["subject"]) for e in trail["items"]
    ]
    assert json.loads(str(rows[0][9])) == extended["after"]


async def test_office_changes_are_audited_with_before_and_after(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    changed = await http.put(
        f"{WP}/41/policy", json={"grace_working_days": 0, "due_on": "2024-11-30"}, headers=office
    )
    assert changed.status_code == 200, changed.text
    rename = await http.get("/v1/agencies/resolve", params={"name": "市林业局"}, headers=office)
    agency_id = rename.json()["id"]
    renamed = await http.post(
        f"/v1/agencies/{agency_id}/rename", json={"name": "肇庆市林业局"}, headers=office
    )
    assert renamed.status_code == 200, renamed.text
    created = await http.post(
        "/v1/clients", json={"role": "coordinator", "label": "督查室"}, headers=office
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    revoked = await http.post(f"/v1/clients/{client_id}/revoke", headers=office)
    assert revoked.status_code == 200, revoked.text

    trail = (await http.get("/v1/audit", params={"limit": 10}, headers=office)).json()
    by_action = {e["action"]: e for e in trail["items"]}
    policy = by_action["policy.changed"]
    assert policy["subject"] == f"{PLAN}/41"
    assert policy["before"] == {"due_on": None, "grace_working_days": None}
    assert policy["after"] == {"due_on": "2024-11-30", "grace_working_days": 0}
    assert by_action["agency.renamed"]["before"]["name"] == "市林业局"
    assert by_action["agency.renamed"]["after"]["name"] == "肇庆市林业局"
    assert by_action["client.created"]["subject"] == client_id
    assert "secret" not in json.dumps(by_action["client.created"])
    assert by_action["client.revoked"]["after"]["revoked_at"]


async def test_audit_filters_are_checked_and_select_by_time(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    changed = await http.put(f"{WP}/41/policy", json={"grace_working_days": 1}, headers=office)
    assert changed.status_code == 200, changed.text
    at = (await http.get("/v1/audit", headers=office)).json()["items"][0]["at"]
    for bad in ({"from": "2024-09-02T09:00:00"}, {"to": "0.5"}, {"subject": "a\x00b"}):
        _error(await http.get("/v1/audit", params=bad, headers=office), 422, "invalid_request")
    # Times UTC cannot hold are its first and last moments: nothing before, everything before.
    edges = {"from": "9999-12-31T23:59:59-14:00", "to": "0001-01-01T00:00:00+14:00"}
    for name, time in edges.items():
        found = await http.get("/v1/audit", params={name: time}, headers=office)
        assert found.json()["total"] == 0, found.text
    assert (
        await http.get("/v1/audit", params={"to": "9999-12-31T23:59:59-14:00"}, headers=office)
    ).json()["total"] == 1
    inside = {"from": at, "to": "2024-09-03T00:00:00+08:00", "action": "policy.changed"}
    assert (await http.get("/v1/audit", params=inside, headers=office)).json()["total"] == 1
    after = {"from": "2024-09-03T00:00:00+08:00"}
    assert (await http.get("/v1/audit", params=after, headers=office)).json()["total"] == 0
    before = {"to": at}
    assert (await http.get("/v1/audit", params=before, headers=office)).json()["total"] == 0


async def test_a_confirmed_new_text_is_audited_and_the_same_text_is_not(
    http: httpx.AsyncClient, office: dict[str, str]
) -> None:
    url = f"/v1/plans/{PLAN}/versions"
    text = TEXT
    same = await http.post(url, json={"text": text}, headers=office)
    assert same.status_code == 200 and same.json()["applied"] is False
    changed = text.replace("(市林业局牵头)", "(市林业局牵头,市资源局按职责分工负责)")
    applied = await http.post(url, json={"text": changed, "confirm": True}, headers=office)
    assert applied.status_code == 200, applied.text
    trail = (await http.get("/v1/audit", params={"subject": PLAN}, headers=office)).json()
    [entry] = trail["items"]
    assert entry["action"] == "plan.imported"
    assert entry["after"]["version"] == 2
    assert entry["after"]["work_points_updated"] == ["35"]
