"""The services' clock moved into a year the installed calendar does not know (4 January 2027,
past chinese-calendar's last year, 2026): nothing halts. Reports are applied, stalls are
judged on the provisional calendar and said to be provisional (API, board, metric), alerts go
out, and every service's /healthz answers 200. On the broker and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from progress.api.board.session import COOKIE

from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack
from tests.test_metrics import scrape, value

MONDAY = datetime.fromisoformat("2027-01-04T09:30:00+08:00")


async def test_a_year_without_an_arrangement_is_judged_provisionally_and_nothing_halts(
    stack: Stack,
) -> None:
    stack.clock.set(MONDAY)

    # 1. An agency's report dated in 2027 is accepted and applied.
    accepted = await stack.post_event(stack.forestry, 35, "at_risk", percent=70, note="年初推进")
    await stack.until_applied(accepted)

    # 2. The sweeper judges every work point on the provisional 2027 (all are past their due
    #    day, 31 December 2024): each turns red, and none fails.
    assert await stack.progress.sweeper.sweep_once() >= 49  # 35 turned red with its report
    summary = await stack.office_get(f"/v1/plans/{PLAN}/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["totals"]["by_level"]["red"] == 50, summary.json()

    answer = await stack.get_progress(stack.forestry, 35)
    assert answer.status_code == 200, answer.text
    progress = answer.json()
    assert (progress["percent"], progress["status"]) == (70, "at_risk")
    assert progress["reasons"][0] == "overdue"
    assert (progress["calendar"], progress["provisional_years"]) == ("provisional", [2027])

    # 3. The stall reached the lead agency by email (the notifier counts on 2027 too).
    async def mailed() -> bool:
        return any("第三十五项" in m["Subject"] for m in stack.smtp.mailbox(FORESTRY_MAIL))

    await wait_for(mailed, within=60, what="the alert about work point 35 to be mailed")

    # 4. The board marks provisional judgements and says why.
    office = {"Cookie": f"{COOKIE}={await stack.token(stack.office)}"}
    board = await stack.progress_http.get(f"/board/plans/{PLAN}", headers=office)
    assert board.status_code == 200, board.text
    assert board.text.count('<span class="p" title="按暂行日历计算') == 50
    assert "50 项工作要点按暂行日历计算（当年国务院放假安排未发布）" in board.text
    page = await stack.progress_http.get(f"/board/work-points/{PLAN}/35", headers=office)
    assert page.status_code == 200, page.text
    assert "2027年的工作日按双休日和法定节假日计" in page.text

    # 5. Operators see it in a metric, and every service is healthy.
    metrics = await scrape(stack.progress_http)
    gauge = "duban_calendar_provisional_judgements"
    assert value(metrics, gauge, duban_calendar_year="2027") == 50
    for http in (stack.registry_http, stack.progress_http, stack.notifier_http):
        health = await http.get("/healthz")
        assert health.status_code == 200, health.text
