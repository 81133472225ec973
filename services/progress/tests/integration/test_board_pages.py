"""The board's pages over the in-process stack (the browser tests drive them in Chromium)."""

from __future__ import annotations

from progress.api.board.session import COOKIE

from tests.stack import PLAN, Stack


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
