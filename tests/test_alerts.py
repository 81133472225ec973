"""Alerts follow stall episodes (firing -> acknowledged -> resolved) and are acknowledged with a
token by the agency alerted or the office, or with the signed single-use link in the email."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from progress.store.models import AlertAck

from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack


async def _alerts(stack: Stack, **params: object) -> list[dict[str, object]]:
    response = await stack.notifier_http.get(
        "/v1/alerts", params=params, headers=await stack.auth(stack.office)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def _stall_35(stack: Stack) -> tuple[dict[str, object], str]:
    """Block work point 35; return its alert and the acknowledgement link in the email."""
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=70)
    await stack.until_applied(blocked)

    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1

    await wait_for(mailed, what="the stall email")
    [alert] = await _alerts(stack)
    body = stack.smtp.mailbox(FORESTRY_MAIL)[0].get_content()
    match = re.search(r"确认已知悉请点击:(\S+)", body)
    assert match, body
    link = match.group(1)
    assert link.startswith("http://127.0.0.1:8003/a/")
    return alert, link.removeprefix("http://127.0.0.1:8003")


async def test_an_alert_fires_is_acknowledged_by_its_agency_and_resolves_on_recovery(
    stack: Stack,
) -> None:
    alert, _ = await _stall_35(stack)
    assert (alert["state"], alert["level"], alert["reasons"]) == ("firing", "red", ["blocked"])
    assert alert["work_point_id"] == f"{PLAN}/35"
    path = f"/v1/alerts/{alert['id']}/ack"

    stranger = await stack.client_for("市公安局")
    refused = await stack.notifier_http.post(path, headers=await stack.auth(stranger))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_your_alert")
    own = await stack.progress_http.get(  # the stranger sees none of it in the list either
        "/v1/alerts", headers=await stack.auth(stranger)
    )
    assert own.status_code == 404  # the list lives on the notifier, not progress
    listed = await stack.notifier_http.get("/v1/alerts", headers=await stack.auth(stranger))
    assert listed.json()["total"] == 0

    acked = await stack.notifier_http.post(path, headers=await stack.auth(stack.forestry))
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == stack.forestry.client_id
    again = await stack.notifier_http.post(path, headers=await stack.auth(stack.office))
    assert (again.status_code, again.json()["acknowledged_by"]) == (200, stack.forestry.client_id)

    recovered = await stack.post_event(stack.forestry, 35, "on_track", percent=75)
    await stack.until_applied(recovered)

    async def resolved() -> bool:
        return (await _alerts(stack))[0]["state"] == "resolved"

    await wait_for(resolved, what="the alert to resolve")
    [alert] = await _alerts(stack)
    assert alert["resolution"] == "recovered"
    late = await stack.notifier_http.post(path, headers=await stack.auth(stack.forestry))
    assert (late.status_code, late.json()["code"]) == (409, "alert_resolved")


async def test_the_link_in_the_email_acknowledges_once_and_expires(stack: Stack) -> None:
    _, path = await _stall_35(stack)
    tampered = await stack.notifier_http.post(path[:-3] + "xyz")
    assert tampered.status_code == 400
    page = await stack.notifier_http.get(path)  # what a mail scanner's prefetch would do
    assert page.status_code == 200 and "确认已知悉" in page.text and 'method="post"' in page.text
    assert (await _alerts(stack))[0]["state"] == "firing"

    used = await stack.notifier_http.post(path)
    assert used.status_code == 200 and "已确认" in used.text
    [acked] = await _alerts(stack)
    assert (acked["state"], acked["acknowledged_by"]) == (
        "acknowledged",
        f"link:{stack.forestry_id}",
    )
    twice = await stack.notifier_http.post(path)
    assert twice.status_code == 410 and "这个确认链接已经使用过" in twice.text

    # Progress learns it from the notifier's event: acknowledged through a link, when.
    async def progress_row() -> AlertAck | None:
        async with stack.progress.sessions() as session:
            return await session.get(AlertAck, uuid.UUID(str(acked["id"])))

    async def learned() -> bool:
        row = await progress_row()
        return row is not None and row.state == "acknowledged"

    await wait_for(learned, what="progress to learn of the acknowledgement")
    row = await progress_row()
    assert row is not None
    assert (row.acknowledged_via, row.acknowledged_by) == ("link", f"link:{stack.forestry_id}")
    assert row.acknowledged_at == datetime.fromisoformat(str(acked["acknowledged_at"]))

    stack.clock.advance(timedelta(hours=stack.notifier.settings.ack_link_hours))
    expired = await stack.notifier_http.get(path)
    assert expired.status_code == 410 and "这个确认链接已过期" in expired.text


async def test_done_resolves_the_alert_and_the_approved_closure_is_announced(
    stack: Stack,
) -> None:
    alert, _ = await _stall_35(stack)
    done = await stack.post_event(stack.forestry, 35, "done", percent=100)
    await stack.until_applied(done)
    approved = await stack.progress_http.post(
        f"/v1/work-points/{PLAN}/35/closure/approve",
        json={"note": "验收通过"},
        headers=await stack.auth(stack.office),
    )
    assert approved.status_code == 200, approved.text

    async def closed() -> bool:
        return any(a["resolution"] == "closed" for a in await _alerts(stack))

    await wait_for(closed, what="the closure to reach the notifier")
    by_id = {a["id"]: a for a in await _alerts(stack)}
    # `done` ended the episode (recovered, review pending); the approval is a closure record of
    # its own, resolved from the start, so the lead is told.
    episode = by_id.pop(alert["id"])
    assert (episode["state"], episode["resolution"]) == ("resolved", "recovered")
    [closure] = by_id.values()
    assert (closure["state"], closure["resolution"]) == ("resolved", "closed")

    async def announced() -> bool:
        subjects = [m["Subject"] for m in stack.smtp.mailbox(FORESTRY_MAIL)]
        return any(s.endswith("已办结销号") for s in subjects)

    await wait_for(announced, what="the closure email")


async def test_a_note_with_headers_and_links_reaches_the_mail_only_as_a_quotation(
    stack: Stack,
) -> None:
    note = (
        "林分优化用地审批未完成\r\nBcc: evil@attacker.example\r\n"
        "[点此确认](http://evil.example/a/x)\n\u202e—— 督办系统(自动发送,请勿回复)"
    )
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=70, note=note)
    await stack.until_applied(blocked)

    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1

    await wait_for(mailed, what="the stall email")
    assert all("attacker" not in m["X-Rcpt-To"] for m in stack.smtp.messages)
    [mail] = stack.smtp.mailbox(FORESTRY_MAIL)
    assert mail["Bcc"] is None and mail.get_all("To") == [FORESTRY_MAIL]
    body = mail.get_content().replace("\r\n", "\n")
    quoted = body.split("报送说明,原文引用】\n", 1)[1].split("\n\n", 1)[0]
    assert quoted.split("\n") == [
        "｜ 林分优化用地审批未完成",
        "｜ Bcc: evil@attacker[.]example",
        "｜ [点此确认](hxxp://evil[.]example/a/x)",
        "｜ －－ 督办系统(自动发送,请勿回复)",
    ]
    [link] = re.findall(r"https?://\S+", body)  # the one live link is the notifier's own
    assert link.startswith("http://127.0.0.1:8003/a/")
