"""The read API on the stall model: a plan's summary and scorecards as each caller may see them,
and a late report marked late and counted (the in-process stack; progress's answers only).

The stack's clock starts on Mon 2 Sep 2024 09:00; work point 35 is led by 市林业局.
"""

from __future__ import annotations

from datetime import datetime

from tests.stack import PLAN, Stack

WP35 = f"/v1/work-points/{PLAN}/35"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_summary_and_scorecards_show_each_caller_what_it_may_see(stack: Stack) -> None:
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40)
    await stack.until_applied(blocked)

    summary = (await stack.office_get(f"/v1/plans/{PLAN}/summary")).json()
    assert summary["scope"] == "all"
    assert summary["totals"]["work_points"] == 50
    assert summary["totals"]["by_level"] == {"green": 49, "blue": 0, "yellow": 0, "red": 1}
    assert summary["totals"]["by_reason"] == {"blocked": 1, "behind_pace": 1}
    assert len(summary["sections"]) == 13
    assert sum(s["work_points"] for s in summary["sections"]) == 50

    own = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/summary", headers=await stack.auth(stack.forestry)
    )
    assert own.json()["scope"] == "own"
    assert own.json()["totals"]["by_level"]["red"] == 1
    assert own.json()["totals"]["work_points"] < 50

    red = await stack.office_get(f"/v1/plans/{PLAN}/progress", level="red")
    assert [wp["number"] for wp in red.json()["items"]] == [35]

    cards = (await stack.office_get(f"/v1/plans/{PLAN}/scorecards")).json()
    assert cards[0]["name"] == "市林业局"  # the one with a red work point comes first
    assert (cards[0]["open_stalls"], cards[0]["reports"], cards[0]["reports_on_time"]) == (
        {"red": 1},
        1,
        1,
    )
    mine = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/agencies/{stack.forestry_id}/scorecard",
        headers=await stack.auth(stack.forestry),
    )
    assert (mine.status_code, mine.json()["lead_of"]) == (200, cards[0]["lead_of"])
    other = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/agencies/{cards[1]['agency_id']}/scorecard",
        headers=await stack.auth(stack.forestry),
    )
    assert (other.status_code, other.json()["code"]) == (403, "not_your_agency")
    forbidden = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/scorecards", headers=await stack.auth(stack.forestry)
    )
    assert forbidden.status_code == 403


async def test_a_late_report_is_accepted_marked_late_and_counted_in_the_scorecard(
    stack: Stack,
) -> None:
    stack.clock.set(_at("2024-10-15T09:00:00+08:00"))
    old = await stack.post_event(
        stack.forestry, 35, "on_track", percent=75, occurred_at="2024-09-20T10:00:00+08:00"
    )
    assert (old.status_code, old.json()["late"]) == (202, True)
    await stack.until_applied(old)
    timeline = (await stack.office_get(f"{WP35}/timeline")).json()["items"]
    [entry] = [e for e in timeline if e["kind"] == "report"]
    # Tracked since Mon 2 Sep; Fri 20 Sep is the 13th working day after it (3-6, 9-13, Sat 14
    # worked, 15-17 off, 18-20): 3 past the 10-day report period.
    assert (entry["detail"]["late"], entry["detail"]["delay_working_days"]) == (True, 3)
    card = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/agencies/{stack.forestry_id}/scorecard",
        headers=await stack.auth(stack.forestry),
    )
    assert card.json()["late_reports"] == 1
    assert card.json()["reports_on_time"] == 0
    assert card.json()["average_delay_working_days"] == 3.0
