"""Extension requests end to end and the audit trail of each service, on the running stack
(real Kafka and PostgreSQL): a work point overdue (red) gets an approved extension and
progress judges it again with the new date; closure decisions (progress) and contact changes
(notifier) are audited with before and after, readable as a list and as .xlsx by the office
only.

Work point 35 (加强林业数字化应用) is led by 市林业局; the stack's clock starts on Mon 2 Sep 2024.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import httpx
from openpyxl import load_workbook

from tests.harness import wait_for
from tests.stack import PLAN, Stack

REG35 = f"/v1/plans/{PLAN}/work-points/35"


async def _progress(stack: Stack) -> dict[str, Any]:
    response = await stack.get_progress(stack.office, 35)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _audit(stack: Stack, http: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """The office reads a service's trail; an agency is refused, in the list and the file.
    The workbook holds the same rows as the list."""
    agency = await stack.auth(stack.forestry)
    for path in ("/v1/audit", "/v1/audit.xlsx"):
        refused = await http.get(path, params=params, headers=agency)
        assert (refused.status_code, refused.json()["code"]) == (403, "office_only")
    office = await stack.auth(stack.office)
    page = await http.get("/v1/audit", params=params, headers=office)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    assert page.json()["total"] == len(items)
    workbook = await http.get("/v1/audit.xlsx", params=params, headers=office)
    assert workbook.status_code == 200, workbook.text
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("序号", "时间(UTC)", "操作客户端")
    assert [
        (r[0], r[2], r[6], r[7], json.loads(str(r[8] or "null")), json.loads(str(r[9] or "null")))
        for r in rows[1:]
    ] == [
        (e["id"], e["actor_client_id"], e["action"], e["subject"], e["before"], e["after"])
        for e in items
    ]
    return items


async def _plan_extensions(stack: Stack, slug: str, **params: str) -> httpx.Response:
    return await stack.registry_http.get(
        f"/v1/plans/{slug}/extensions", params=params, headers=await stack.auth(stack.forestry)
    )


async def test_an_approved_extension_ends_an_overdue_red(stack: Stack) -> None:
    office = await stack.auth(stack.office)
    policy = await stack.registry_http.put(
        f"{REG35}/policy", json={"due_on": "2024-09-20"}, headers=office
    )
    assert policy.status_code == 200, policy.text

    async def due(day: str) -> bool:
        return (await _progress(stack))["due_on"] == day

    await wait_for(lambda: due("2024-09-20"), what="progress to learn the due day")
    stack.clock.set(datetime.fromisoformat("2024-09-23T09:00:00+08:00"))
    report = await stack.post_event(stack.forestry, 35, "on_track", percent=90)
    await stack.until_applied(report)
    await stack.progress.sweeper.sweep_once()
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("red", ["overdue"])

    forestry = await stack.auth(stack.forestry)
    asked = await stack.registry_http.post(
        f"{REG35}/extensions",
        json={"due_on": "2024-11-29", "reason": "造林季节推迟，申请延期"},
        headers=forestry,
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["previous_due_on"] == "2024-09-20"
    # The plan's queue of requests to decide names the work point.
    queue = await _plan_extensions(stack, PLAN, state="requested")
    assert (queue.status_code, queue.json()["total"]) == (200, 1), queue.text
    [waiting] = queue.json()["items"]
    assert (waiting["id"], waiting["code"], waiting["title"]) == (
        asked.json()["id"],
        "35",
        "加强林业数字化应用",
    )
    approved = await stack.registry_http.post(
        f"{REG35}/extensions/{asked.json()['id']}/approve",
        json={"note": "同意"},
        headers=await stack.auth(stack.office),
    )
    assert approved.status_code == 200, approved.text

    await wait_for(lambda: due("2024-11-29"), what="progress to learn the extended due day")
    assert (await _plan_extensions(stack, PLAN, state="requested")).json()["total"] == 0
    every = (await _plan_extensions(stack, PLAN)).json()["items"]
    assert [(e["code"], e["state"]) for e in every] == [("35", "approved")]
    unknown = await _plan_extensions(stack, "no-such-plan")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_plan")
    odd = await _plan_extensions(stack, PLAN, state="pending")
    assert (odd.status_code, odd.json()["code"]) == (422, "invalid_request")
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("green", []), state

    trail = await _audit(stack, stack.registry_http, subject=f"{PLAN}/35")
    assert [e["action"] for e in trail] == [
        "due_on.extended",
        "extension.approved",
        "extension.requested",
        "policy.changed",
    ]
    assert trail[0]["before"] == {"due_on": "2024-09-20"}
    assert trail[0]["after"] == {"due_on": "2024-11-29"}
    assert trail[2]["actor_client_id"] == stack.forestry.client_id


async def test_closure_decisions_and_contact_changes_are_audited(stack: Stack) -> None:
    done = await stack.post_event(stack.forestry, 35, "done", percent=100)
    await stack.until_applied(done)
    office = await stack.auth(stack.office)
    rejected = await stack.progress_http.post(
        f"/v1/work-points/{PLAN}/35/closure/reject", json={"reason": "缺少验收材料"}, headers=office
    )
    assert rejected.status_code == 200, rejected.text
    trail = await _audit(stack, stack.progress_http, action="closure.rejected")
    [entry] = trail
    assert (entry["subject"], entry["actor_client_id"]) == (f"{PLAN}/35", stack.office.client_id)
    assert entry["before"]["closure"] == "in_review"
    assert entry["after"]["closure"] is None and entry["after"]["reason"] == "缺少验收材料"

    path = f"/v1/agencies/{stack.forestry_id}/contacts/email"
    before = (await stack.notifier_http.get(path, headers=office)).json()["addresses"]
    changed = await stack.notifier_http.put(
        path, json={"addresses": ["duban@linye.example.cn"]}, headers=office
    )
    assert changed.status_code == 200, changed.text
    contact, *_ = await _audit(stack, stack.notifier_http, subject=str(stack.forestry_id))
    assert contact["action"] == "contacts.replaced"
    assert [c["address"] for c in contact["before"]["contacts"]] == before
    assert [c["address"] for c in contact["after"]["contacts"]] == ["duban@linye.example.cn"]
    assert contact["after"]["channel"] == "email"
