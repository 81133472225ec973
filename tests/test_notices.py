"""Supervision notices (督办单) end to end on real Kafka, PostgreSQL (or SQLite) and an SMTP sink:
the office issues one, the lead agency replies (or does not), the sweeper marks a late one
overdue once, and the notifier tells the lead and escalates to the coordinating office."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

import docx
from duban_shared import topics
from duban_shared.events import NoticeTransition
from notifier.consumers import NoticeConsumer
from notifier.store import alerts as alert_store
from notifier.store.models import NotificationLog
from progress.api.board.session import COOKIE, csrf_token
from progress.store.models import OutboxMessage, WorkPointView
from sqlmodel import col, select

from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack
from tests.test_metrics import scrape, value

NOTICE = {
    "reason": "林分优化用地审批滞后,连续两个报送周期进度未变",
    "required_action": "说明滞后原因,提出整改措施和完成时限",
    "reply_within_working_days": 3,
}


async def issue(stack: Stack, code: str = "35", **body: Any) -> dict[str, Any]:
    """Issue a notice on a work point of the 2024 plan as the office; return it."""
    response = await stack.progress_http.post(
        f"/v1/work-points/{PLAN}/{code}/notices",
        json={**NOTICE, **body},
        headers=await stack.auth(stack.office),
    )
    assert response.status_code == 201, response.text
    notice: dict[str, Any] = response.json()
    return notice


async def notice_events(stack: Stack) -> list[NoticeTransition]:
    """The notice transitions progress queued, oldest first."""
    async with stack.progress.sessions() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.topic) == topics.NOTICES)
            .order_by(col(OutboxMessage.id))
        )
        return [NoticeTransition.model_validate_json(r.payload) for r in rows.all()]


async def test_a_notice_is_numbered_due_on_the_calendar_replied_once_and_has_a_history(
    stack: Stack,
) -> None:
    # Mon 2 Sep 2024, 09:00: three working days are Tue 3, Wed 4, Thu 5 Sep.
    first = await issue(stack)
    assert first["number"] == "督办〔2024〕1号"
    assert first["status"] == "issued"
    assert first["reply_due_on"] == "2024-09-05"
    assert datetime.fromisoformat(first["reply_due"]) == datetime.fromisoformat(
        "2024-09-06T00:00:00+08:00"
    )
    assert first["lead_agencies"] == [{"agency_id": str(stack.forestry_id), "name": "市林业局"}]
    second = await issue(stack, "41", reply_within_working_days=5)
    assert second["number"] == "督办〔2024〕2号"

    # Refusals: an agency cannot issue; a stranger, or the office, cannot reply.
    forestry = await stack.auth(stack.forestry)
    refused = await stack.progress_http.post(
        f"/v1/work-points/{PLAN}/35/notices", json=NOTICE, headers=forestry
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "office_only")
    reply = {"text": "已完成用地审批,本月底前完成林分优化", "evidence_url": "https://a.example/1"}
    path = f"/v1/notices/{first['id']}/reply"
    stranger = await stack.auth(await stack.client_for("市公安局"))
    hidden = await stack.progress_http.post(path, json=reply, headers=stranger)
    assert (hidden.status_code, hidden.json()["code"]) == (403, "not_lead_agency")
    office = await stack.progress_http.post(
        path, json=reply, headers=await stack.auth(stack.office)
    )
    assert (office.status_code, office.json()["code"]) == (403, "not_lead_agency")
    bad = await stack.progress_http.post(
        f"/v1/work-points/{PLAN}/35/notices",
        json={**NOTICE, "reply_within_working_days": 31},
        headers=await stack.auth(stack.office),
    )
    assert bad.status_code == 422

    stack.clock.advance(timedelta(hours=5))
    forestry = await stack.auth(stack.forestry)
    replied = await stack.progress_http.post(path, json=reply, headers=forestry)
    assert replied.status_code == 200, replied.text
    assert (replied.json()["status"], replied.json()["reply_text"]) == ("replied", reply["text"])
    again = await stack.progress_http.post(path, json=reply, headers=forestry)
    assert (again.status_code, again.json()["code"]) == (409, "notice_not_open")
    assert "已反馈" in again.json()["message"]

    stranger = await stack.auth(await stack.client_for("市公安局"))
    closed = await stack.progress_http.post(
        f"/v1/notices/{first['id']}/close",
        json={"note": "整改措施可行"},
        headers=await stack.auth(stack.office),
    )
    assert closed.json()["status"] == "closed"
    detail = (await stack.office_get(f"/v1/notices/{first['id']}")).json()
    assert [(h["status"], h["by"], h["note"]) for h in detail["history"]] == [
        ("issued", stack.office.client_id, None),
        ("replied", stack.forestry.client_id, reply["text"]),
        ("closed", stack.office.client_id, "整改措施可行"),
    ]
    # The audit trail has each step with its actor, the status before and after.
    audit = await stack.office_get("/v1/audit", subject=first["number"])
    assert audit.status_code == 200, audit.text
    entries = sorted(audit.json()["items"], key=lambda e: e["id"])
    assert [
        (e["action"], e["actor_client_id"], e["before"], e["after"]["status"]) for e in entries
    ] == [
        ("notice.issued", stack.office.client_id, None, "issued"),
        ("notice.replied", stack.forestry.client_id, {"status": "issued"}, "replied"),
        ("notice.closed", stack.office.client_id, {"status": "replied"}, "closed"),
    ]

    # Printed: the .docx reads back with the number, the work point, the deadline and the reply.
    printed = await stack.progress_http.get(f"/v1/notices/{first['id']}.docx", headers=forestry)
    assert printed.status_code == 200, printed.text
    assert printed.headers["content-type"].startswith("application/vnd.openxmlformats")
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(printed.content)).paragraphs)
    for expected in (
        "督办通知单",
        "督办〔2024〕1号",
        "第三十五项“加强林业数字化应用”",
        NOTICE["reason"],
        NOTICE["required_action"],
        "请于2024年9月5日前",
        reply["text"],
        "2024年9月2日",
    ):
        assert str(expected) in text, expected
    hidden_docx = await stack.progress_http.get(f"/v1/notices/{first['id']}.docx", headers=stranger)
    assert (hidden_docx.status_code, hidden_docx.json()["code"]) == (404, "unknown_notice")

    # The lists: the office sees both, filtered by state; the forestry bureau only its own.
    assert (await stack.office_get("/v1/notices")).json()["total"] == 2
    open_ones = (await stack.office_get("/v1/notices", status="issued")).json()
    assert [n["number"] for n in open_ones["items"]] == ["督办〔2024〕2号"]
    own = await stack.progress_http.get("/v1/notices", headers=forestry)
    assert [n["number"] for n in own.json()["items"]] == ["督办〔2024〕1号"]
    assert (await stack.progress_http.get("/v1/notices", headers=stranger)).json()["total"] == 0
    by_agency = await stack.office_get("/v1/notices", agency=str(stack.forestry_id))
    assert by_agency.json()["total"] == 1

    # Traced and counted: a span per change, the counter by state.
    named = {(s.name, (s.attributes or {}).get("duban.notice.state")) for s in stack.spans.all()}
    for span in ("issue notice", "reply to notice", "closed notice"):
        assert any(name == span for name, _ in named), span
    samples = await scrape(stack.progress_http)
    for state, count in (("issued", 2), ("replied", 1), ("closed", 1)):
        assert value(samples, "duban_notices_total", duban_notice_state=state) == count

    kinds = [(e.number, e.kind.value) for e in await notice_events(stack)]
    assert kinds == [
        ("督办〔2024〕1号", "issued"),
        ("督办〔2024〕2号", "issued"),
        ("督办〔2024〕1号", "replied"),
        ("督办〔2024〕1号", "closed"),
    ]


async def test_the_sweeper_marks_a_late_notice_overdue_exactly_once(stack: Stack) -> None:
    notice = await issue(stack)
    stack.clock.set(datetime.fromisoformat("2024-09-05T23:59:00+08:00"))
    await stack.progress.sweeper.sweep_once()
    assert (await stack.office_get(f"/v1/notices/{notice['id']}")).json()["status"] == "issued"

    stack.clock.set(datetime.fromisoformat("2024-09-06T00:00:00+08:00"))
    await stack.progress.sweeper.sweep_once()
    await stack.progress.sweeper.sweep_once()
    detail = (await stack.office_get(f"/v1/notices/{notice['id']}")).json()
    assert detail["status"] == "overdue"
    assert [(h["status"], h["by"]) for h in detail["history"]][1:] == [("overdue", "sweeper")]
    overdue = [e for e in await notice_events(stack) if e.kind.value == "overdue"]
    assert len(overdue) == 1
    samples = await scrape(stack.progress_http)
    assert value(samples, "duban_notices_total", duban_notice_state="overdue") == 1
    assert any(s.name == "notice overdue" for s in stack.spans.all())
    async with stack.progress.sessions() as session:
        view = await session.get(WorkPointView, f"{PLAN}/35")
    assert view is not None
    assert overdue[0].coordinating_agency_id == view.coordinating_agency_id
    assert overdue[0].work_point_title == view.title

    # A late reply is still taken, and the notice is then replied.
    late = await stack.progress_http.post(
        f"/v1/notices/{notice['id']}/reply",
        json={"text": "逾期说明:审批延误,已于本周完成"},
        headers=await stack.auth(stack.forestry),
    )
    assert (late.status_code, late.json()["status"]) == (200, "replied")
    withdraw = await stack.progress_http.post(
        f"/v1/notices/{notice['id']}/withdraw", json={}, headers=await stack.auth(stack.office)
    )
    assert (withdraw.status_code, withdraw.json()["code"]) == (409, "notice_not_open")
    unknown = await stack.office_get(f"/v1/notices/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_notice")


OFFICE_MAIL = "duban@zhaoqing.example.cn"


async def office_mail(stack: Stack) -> uuid.UUID:
    """Give the plan's coordinating office an email contact; return its id."""
    async with stack.progress.sessions() as session:
        view = await session.get(WorkPointView, f"{PLAN}/35")
    assert view is not None and view.coordinating_agency_id is not None
    response = await stack.notifier_http.put(
        f"/v1/agencies/{view.coordinating_agency_id}/contacts/email",
        json={"addresses": [OFFICE_MAIL]},
        headers=await stack.auth(stack.operator),
    )
    assert response.status_code == 200, response.text
    return view.coordinating_agency_id


def subjects(stack: Stack, address: str) -> list[str]:
    return [str(m["Subject"]) for m in stack.smtp.mailbox(address)]


async def test_issued_notices_mail_the_lead_and_an_unreplied_one_escalates_to_the_office(
    stack: Stack,
) -> None:
    await office_mail(stack)
    replied_in_time = await issue(stack)
    left_unanswered = await issue(stack, reply_within_working_days=1)

    async def both_mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) == 2

    await wait_for(both_mailed, what="the two notices mailed to the lead")
    first, second = sorted(stack.smtp.mailbox(FORESTRY_MAIL), key=lambda m: str(m["Subject"]))
    assert str(first["Subject"]).startswith("【督办通知】督办〔2024〕1号 第三十五项")
    body = first.get_content()
    assert "请于2024年9月5日前(含当日)反馈办理情况" in body
    assert "林分优化用地审批滞后" in body
    assert "请于2024年9月3日前(含当日)反馈" in second.get_content()

    stack.clock.advance(timedelta(hours=2))
    reply = await stack.progress_http.post(
        f"/v1/notices/{replied_in_time['id']}/reply",
        json={"text": "已完成用地审批,月底前完成林分优化"},
        headers=await stack.auth(stack.forestry),
    )
    assert reply.status_code == 200, reply.text

    # Wed 4 Sep 00:00: the one-day notice is late; the other was replied.
    stack.clock.set(datetime.fromisoformat("2024-09-04T00:00:00+08:00"))
    await stack.progress.sweeper.sweep_once()

    async def escalated() -> bool:
        return (
            len(stack.smtp.mailbox(OFFICE_MAIL)) >= 1
            and len(stack.smtp.mailbox(FORESTRY_MAIL)) >= 3
        )

    await wait_for(escalated, what="the overdue notice escalated to the office")
    [to_office] = stack.smtp.mailbox(OFFICE_MAIL)
    assert str(to_office["Subject"]).startswith("【督办逾期】督办〔2024〕2号")
    assert "要求于2024年9月3日前反馈,至今未收到反馈" in to_office.get_content()
    assert "牵头单位:市林业局" in to_office.get_content()
    reminder = stack.smtp.mailbox(FORESTRY_MAIL)[2]
    assert str(reminder["Subject"]).startswith("【督办逾期】督办〔2024〕2号")

    # Fri 6 Sep: the replied notice's deadline passed too, and it stays replied; the office is
    # reminded of the unanswered one (every 2 working days) until its reply.
    stack.clock.set(datetime.fromisoformat("2024-09-06T00:00:01+08:00"))
    await stack.progress.sweeper.sweep_once()
    await stack.notifier.escalator.escalate_once()  # the escalator's loop may be there first

    async def reminded() -> bool:
        return len(stack.smtp.mailbox(OFFICE_MAIL)) == 2

    await wait_for(reminded, what="the office reminded again")
    late = await stack.progress_http.post(
        f"/v1/notices/{left_unanswered['id']}/reply",
        json={"text": "逾期说明:审批延误,已于本周完成"},
        headers=await stack.auth(stack.forestry),
    )
    assert late.status_code == 200, late.text

    async def resolved() -> bool:
        async with stack.notifier.sessions() as session:
            found = await alert_store.alert_of_episode(session, uuid.UUID(left_unanswered["id"]))
        return found is not None and found.state == "resolved"

    await wait_for(resolved, what="the notifier to hear of the reply")
    stack.clock.set(datetime.fromisoformat("2024-09-20T10:00:00+08:00"))
    assert await stack.notifier.escalator.escalate_once() == 0
    assert all("督办〔2024〕1号" not in s for s in subjects(stack, OFFICE_MAIL))
    assert len(stack.smtp.mailbox(OFFICE_MAIL)) == 2
    # Notices are not stall alerts: the alert list stays empty.
    alerts = await stack.notifier_http.get("/v1/alerts", headers=await stack.auth(stack.office))
    assert alerts.json()["total"] == 0


async def test_the_board_issues_a_notice_and_the_lead_replies_there_with_errors_in_chinese(
    stack: Stack,
) -> None:
    office_token = await stack.token(stack.office)
    office = {"Cookie": f"{COOKIE}={office_token}"}
    page = f"/board/work-points/{PLAN}/35"
    before = await stack.progress_http.get(page, headers=office)
    assert "暂无督办单。" in before.text
    assert 'action="/board/work-points/zhaoqing-digital-2024/35/notices"' in before.text

    form = {"csrf": csrf_token(office_token), **{k: str(v) for k, v in NOTICE.items()}}
    short = await stack.progress_http.post(
        f"{page}/notices", data={**form, "reason": "慢"}, headers=office
    )
    assert short.status_code == 422
    assert "请填写督办事由和整改要求(各至少2个字),反馈期限为1至30个工作日。" in short.text
    assert NOTICE["required_action"] in short.text  # the form comes back filled in
    issued = await stack.progress_http.post(f"{page}/notices", data=form, headers=office)
    assert (issued.status_code, issued.headers["location"]) == (303, page)
    [notice] = (await stack.office_get("/v1/notices")).json()["items"]

    forestry_token = await stack.token(stack.forestry)
    forestry = {"Cookie": f"{COOKIE}={forestry_token}"}
    shown = (await stack.progress_http.get(page, headers=forestry)).text
    assert "督办〔2024〕1号" in shown and "已下发" in shown and "反馈期限:2024年9月5日" in shown
    assert f'action="/board/notices/{notice["id"]}/reply"' in shown
    assert "下发督办单</button>" not in shown  # an agency cannot issue
    reply_path = f"/board/notices/{notice['id']}/reply"
    csrf = csrf_token(forestry_token)
    bad = await stack.progress_http.post(
        reply_path, data={"csrf": csrf, "text": "好", "evidence_url": "ftp://x"}, headers=forestry
    )
    assert bad.status_code == 422
    assert "请填写反馈内容(至少2个字)" in bad.text
    done = await stack.progress_http.post(
        reply_path, data={"csrf": csrf, "text": "已完成用地审批"}, headers=forestry
    )
    assert (done.status_code, done.headers["location"]) == (303, page)
    again = await stack.progress_http.post(
        reply_path, data={"csrf": csrf, "text": "再次反馈"}, headers=forestry
    )
    assert again.status_code == 409
    assert "不再接受反馈" in again.text
    after = (await stack.progress_http.get(page, headers=office)).text
    assert "已反馈" in after and "已完成用地审批" in after
    printed = await stack.progress_http.get(f"/board/notices/{notice['id']}.docx", headers=office)
    assert printed.status_code == 200
    assert "已完成用地审批" in "\n".join(
        p.text for p in docx.Document(io.BytesIO(printed.content)).paragraphs
    )
    forged = await stack.progress_http.post(
        reply_path, data={"csrf": "0" * 64, "text": "伪造"}, headers=forestry
    )
    assert forged.status_code == 403


async def test_a_redelivered_notice_transition_plans_and_sends_nothing_twice(stack: Stack) -> None:
    await issue(stack)

    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1

    await wait_for(mailed, what="the notice mailed to the lead")
    [issued] = await notice_events(stack)
    consumer = cast(NoticeConsumer, stack.notifier.notice_consumer)
    await consumer.notices.apply(issued, stack.topic_prefix + topics.NOTICES)  # redelivered
    async with stack.notifier.sessions() as session:
        rows = (await session.exec(select(NotificationLog))).all()
    assert [(r.event, r.role, r.recipient) for r in rows] == [
        ("notice_issued", "lead", FORESTRY_MAIL)
    ]
    await stack.notifier.dispatcher.dispatch_once()
    assert len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1


async def test_notices_issued_at_once_get_consecutive_numbers(stack: Stack) -> None:
    issued = await asyncio.gather(*(issue(stack, code) for code in ("35", "41", "30", "36")))
    assert sorted(n["number"] for n in issued) == [f"督办〔2024〕{i}号" for i in range(1, 5)]
