"""The board's pages over the in-process stack (the browser tests drive them in Chromium)."""

from __future__ import annotations

import re

from progress.api.board.session import COOKIE

from tests.stack import PLAN, Stack, plan_2025_text

PLAN_2025 = "zhaoqing-digital-2025"


async def test_the_board_names_the_plan_and_its_sections_from_the_registrys_snapshots(
    stack: Stack,
) -> None:
    office = {"Cookie": f"{COOKIE}={await stack.token(stack.office)}"}
    page = await stack.progress_http.get(f"/board/plans/{PLAN}", headers=office)
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>数字肇庆建设2024年工作要点 督办看板" in html
    assert ">一、积极参与“数字湾区”建设,推动重点任务建设落地 <small>" in html
    assert ">十一、夯实数字基础设施建设,打造数字化发展坚实底座 <small>" in html
    assert html.count('class="cell c-') == 50


async def test_the_board_index_lists_two_plans_with_counts_and_the_scorecards_across_plans(
    stack: Stack,
) -> None:
    await stack.add_plan(plan_2025_text(), PLAN_2025)
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40)
    await stack.until_applied(blocked)
    office = {"Cookie": f"{COOKIE}={await stack.token(stack.office)}"}

    index = await stack.progress_http.get("/board", headers=office)
    assert index.status_code == 200, index.text  # two plans: the list, no redirect
    html = index.text
    assert html.count('<li class="plan"') == 2
    assert '<a href="/board/plans/zhaoqing-digital-2024">数字肇庆建设2024年工作要点</a>' in html
    assert '<a href="/board/plans/zhaoqing-digital-2025">数字肇庆建设2025年工作要点</a>' in html
    assert '<a href="/board/scorecards">全部计划的单位记分卡</a>' in html
    for slug, red in ((PLAN, 1), (PLAN_2025, 0)):
        summary = (await stack.office_get(f"/v1/plans/{slug}/summary")).json()["totals"]
        assert summary["by_level"]["red"] == red
        item = html.split(f'<li class="plan" data-plan="{slug}">')[1].split("</ul>")[0]
        assert f"共 <strong>{summary['work_points']}</strong> 项" in item
        for colour, count in summary["by_level"].items():
            assert f'data-colour="{colour}"' in item
            assert re.search(rf'data-colour="{colour}"[^>]*>[^<]*<strong>{count}</strong>', item)

    across = await stack.progress_http.get("/board/scorecards", headers=office)
    assert across.status_code == 200, across.text
    api = (await stack.office_get("/v1/scorecards")).json()
    assert across.text.count("<tbody data-agency=") == len(api)
    forestry = across.text.split(f'<tbody data-agency="{stack.forestry_id}">')[1].split("</tbody>")
    assert forestry[0].count('<tr data-plan="') == 2
    assert "合计(2 个计划)" in forestry[0]
    # The per-plan pages still work beside it.
    for slug in (PLAN, PLAN_2025):
        page = await stack.progress_http.get(f"/board/plans/{slug}", headers=office)
        assert page.text.count('class="cell c-') == 50

    agency = {"Cookie": f"{COOKIE}={await stack.token(stack.forestry)}"}
    own = await stack.progress_http.get("/board/scorecards", headers=agency)
    assert own.status_code == 200
    assert own.text.count("<tbody data-agency=") == 1
    assert f'<tbody data-agency="{stack.forestry_id}">' in own.text
    own_index = (await stack.progress_http.get("/board", headers=agency)).text
    assert own_index.count('<li class="plan"') == 2
    assert "(本单位负责的工作)" in own_index
