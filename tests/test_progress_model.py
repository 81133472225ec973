"""The stall model end to end: reports and the clock move a work point through its colours, each
transition reaches the lead agency by email (the notifier), and the read API shows what happened.
Progress's read API alone: services/progress/tests/integration/test_progress_model.py.

Work point 35 (加强林业数字化应用, led by 市林业局) has two targets: 林分优化 13万亩 and 森林抚育
15万亩. The plan runs from 1 Jan to 31 Dec 2024; the stack's clock starts on Mon 2 Sep 2024 09:00,
when the pace line stands at 245/365 = 67.1%.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack

WP35 = f"/v1/work-points/{PLAN}/35"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _mails(stack: Stack, count: int) -> list[EmailMessage]:
    async def arrived() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) >= count

    await wait_for(arrived, what=f"{count} email(s) to 市林业局")
    mails = stack.smtp.mailbox(FORESTRY_MAIL)
    assert len(mails) == count, [m["Subject"] for m in mails]
    return mails


async def _progress(stack: Stack) -> dict[str, object]:
    response = await stack.get_progress(stack.office, 35)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_kpi_behind_pace_is_yellow_blocked_raises_it_to_red_and_progress_recovers(
    stack: Stack,
) -> None:
    behind = await stack.post_event(
        stack.forestry, 35, "on_track", percent=70, kpis={"林分优化": 3.0}, note="雨季施工受限"
    )
    await stack.until_applied(behind)
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("yellow", ["behind_pace"])
    assert state["expected_percent"] == 67.1
    [trees, tending] = state["targets"]  # type: ignore[misc]
    assert (trees["metric"], trees["actual"], trees["achieved_pct"]) == ("林分优化", 3.0, 23.1)
    assert tending["actual"] is None
    [yellow] = await _mails(stack, 1)
    assert yellow["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”进度滞后"
    assert "进度或指标未达序时进度" in yellow.get_content()

    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=70)
    await stack.until_applied(blocked)
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("red", ["blocked", "behind_pace"])
    red = (await _mails(stack, 2))[1]
    assert red["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    assert "督办颜色由黄色(滞后)调整为红色(停滞)" in red.get_content()

    # 9.5 of 13 (73%) is on the line, as is 72% (a third 70% would have been a flatline).
    caught_up = await stack.post_event(
        stack.forestry, 35, "on_track", percent=72, kpis={"林分优化": 9.5}
    )
    await stack.until_applied(caught_up)
    state = await _progress(stack)
    assert (state["level"], state["reasons"], state["stalled"]) == ("green", [], False)
    recovered = (await _mails(stack, 3))[2]
    assert recovered["Subject"] == "【督办】第三十五项“加强林业数字化应用”已恢复正常"

    timeline = await stack.office_get(f"{WP35}/timeline")
    entries = timeline.json()["items"]
    assert timeline.json()["total"] == 6
    assert [(e["kind"], e["detail"].get("transition")) for e in reversed(entries)] == [
        ("report", None),
        ("transition", "opened"),
        ("report", None),
        ("transition", "level_changed"),
        ("report", None),
        ("transition", "recovered"),
    ]
    episode = {e["detail"]["episode_id"] for e in entries if e["kind"] == "transition"}
    assert len(episode) == 1  # one episode from yellow to green
    assert entries[-1]["detail"]["kpis"] == {"林分优化": 3.0}
    assert entries[-1]["detail"]["note"] == "雨季施工受限"


async def test_due_soon_turns_blue_and_overdue_red_on_the_official_calendar(
    stack: Stack,
) -> None:
    # Work point 35 due Fri 20 Sep 2024, 5 working days' warning. Counting back: 20, 19, 18,
    # (15-17 Sep: Mid-Autumn holidays), Sat 14 Sep (调休, a working day), Fri 13 Sep: blue from
    # the start of Fri 13 Sep; red (overdue) from Sat 21 Sep.
    policy = await stack.registry_http.put(
        f"/v1/plans/{PLAN}/work-points/35/policy",
        json={"due_on": "2024-09-20", "warn_before_due_working_days": 5},
        headers=await stack.auth(stack.office),
    )
    assert policy.status_code == 200, policy.text

    async def due_known() -> bool:
        return (await _progress(stack))["due_on"] == "2024-09-20"

    await wait_for(due_known, what="progress to learn the new due day")
    report = await stack.post_event(stack.forestry, 35, "on_track", percent=90)
    await stack.until_applied(report)
    assert (await _progress(stack))["next_check_at"] == "2024-09-12T16:00:00Z"

    stack.clock.set(_at("2024-09-12T23:59:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 0
    stack.clock.set(_at("2024-09-13T00:00:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 1
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("blue", ["due_soon"])
    [blue] = await _mails(stack, 1)
    assert blue["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”临近时限"

    stack.clock.set(_at("2024-09-21T00:00:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 1
    state = await _progress(stack)
    assert (state["level"], state["reasons"]) == ("red", ["overdue"])
    assert "已超过完成时限仍未办结" in (await _mails(stack, 2))[1].get_content()


async def test_closure_review_rejected_then_approved_stops_the_checks(stack: Stack) -> None:
    done = await stack.post_event(stack.forestry, 35, "done", percent=100)
    await stack.until_applied(done)
    state = await _progress(stack)
    assert (state["closure"], state["level"], state["next_check_at"]) == (
        "in_review",
        "green",
        None,
    )
    queue = await stack.office_get(f"/v1/plans/{PLAN}/progress", closure="in_review")
    assert [wp["number"] for wp in queue.json()["items"]] == [35]

    agency = await stack.progress_http.post(
        f"{WP35}/closure/approve", json={}, headers=await stack.auth(stack.forestry)
    )
    assert (agency.status_code, agency.json()["code"]) == (403, "office_only")
    empty = await stack.progress_http.post(
        f"{WP35}/closure/reject", json={"reason": ""}, headers=await stack.auth(stack.office)
    )
    assert empty.status_code == 422

    rejected = await stack.progress_http.post(
        f"{WP35}/closure/reject",
        json={"reason": "缺少验收材料"},
        headers=await stack.auth(stack.office),
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["closure"] is None
    assert rejected.json()["next_check_at"] is not None  # judged again: back in progress
    again = await stack.progress_http.post(
        f"{WP35}/closure/reject", json={"reason": "重复"}, headers=await stack.auth(stack.office)
    )
    assert (again.status_code, again.json()["code"]) == (409, "not_in_review")

    done_again = await stack.post_event(stack.forestry, 35, "done", percent=100)
    await stack.until_applied(done_again)
    approved = await stack.progress_http.post(
        f"{WP35}/closure/approve",
        json={"note": "验收材料齐全"},
        headers=await stack.auth(stack.office),
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["closure"], approved.json()["next_check_at"]) == ("closed", None)
    [closed] = await _mails(stack, 1)
    assert closed["Subject"] == "【督办】第三十五项“加强林业数字化应用”已办结销号"
    body = closed.get_content().replace("\r\n", "\n")
    assert "【督办协调部门 审核意见,原文引用】\n｜ 验收材料齐全\n" in body

    # Closed: a later report is kept in the history but changes nothing; no check ever comes.
    late_word = await stack.post_event(stack.forestry, 35, "blocked", percent=100)
    await stack.until_applied(late_word)
    state = await _progress(stack)
    assert (state["closure"], state["level"], state["status"]) == ("closed", "green", "done")
    stack.clock.set(_at("2025-03-01T09:00:00+08:00"))
    await stack.progress.sweeper.sweep_once()
    assert (await _progress(stack))["closure"] == "closed"
    timeline = (await stack.office_get(f"{WP35}/timeline")).json()["items"]
    decisions = [e["detail"]["decision"] for e in timeline if e["kind"] == "closure_decision"]
    assert decisions == ["approved", "rejected"]
    assert sum(1 for e in timeline if e["kind"] == "report") == 3
