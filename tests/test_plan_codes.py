"""A plan numbered per section ((一) restarting in each section): its work points are named by
codes like '2.1' in the registry, in progress (reports, progress, the board) and in the
notifier's alerts and emails, next to the 2024 plan whose codes are its numbers.

The plan's text is services/registry/tests/data/per-section-2024.txt; until the parser reads
per-section numbering, the test builds the ParsedPlan that text stands for by hand."""

from __future__ import annotations

from datetime import date

import httpx
from progress.store.models import WorkPointView
from registry.domain.plan_import import Defaults, sha256_text
from registry.domain.plan_parser import Agency, ParsedPlan, PlanInfo, Section, WorkPoint
from registry.domain.targets import Target
from registry.use_cases.plans import import_plan
from sqlmodel import col, func, select

from tests.harness import ROOT, wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack, board_login

SLUG = "data-pilot-2024"
TEXT = ROOT / "services" / "registry" / "tests" / "data" / "per-section-2024.txt"
DATA_OFFICE = "市政务服务和数据管理局"


def _work_point(
    number: int, code: str, section: int, title: str, leads: list[str], cos: list[str], line: int
) -> WorkPoint:
    targets = []
    if code == "2.1":
        targets = [
            Target(metric="林分优化提升", value=8, unit="万亩", comparator=">=", source="8万亩")
        ]
    return WorkPoint(
        number=number,
        code=code,
        section=section,
        title=title,
        text=title + "。",
        lead_agencies=leads,
        co_agencies=cos,
        lead_inferred=False,
        with_other_units=False,
        targets=targets,
        responsibility="",
        line=line,
    )


def per_section_plan() -> ParsedPlan:
    """What per-section-2024.txt says: two sections, (一) restarting in the second."""
    return ParsedPlan(
        plan=PlanInfo(
            title="肇庆市数据要素试点2024年行动方案",
            issuer=DATA_OFFICE,
            issued_on=date(2024, 3, 1),
            year=2024,
            preface="为推进数据要素市场化配置改革,结合我市实际,制定本方案。",
        ),
        sections=[
            Section(number=1, title="夯实数据基础", line=8),
            Section(number=2, title="拓展数据应用", line=11),
        ],
        work_points=[
            _work_point(1, "1.1", 1, "建设公共数据资源目录", [DATA_OFFICE], [], 9),
            _work_point(2, "1.2", 1, "推进林业数据归集", ["市林业局"], ["市资源局"], 10),
            _work_point(3, "2.1", 2, "推进智慧林业应用", ["市林业局"], ["市应急局"], 12),
        ],
        agencies=[
            Agency(name=DATA_OFFICE, kind="city_bureau"),
            Agency(name="市林业局", kind="city_bureau"),
            Agency(name="市资源局", kind="city_bureau"),
            Agency(name="市应急局", kind="city_bureau"),
        ],
    )


async def _import(stack: Stack) -> None:
    text = TEXT.read_text(encoding="utf-8")
    async with stack.registry.sessions() as session, session.begin():
        await import_plan(
            session,
            per_section_plan(),
            slug=SLUG,
            source_sha256=sha256_text(text),
            now=stack.clock.now(),
            defaults=Defaults(),
            source_text=text,
        )
    stack.registry.relay.wake()

    async def tracked() -> bool:
        async with stack.progress.sessions() as session:
            query = select(func.count()).where(col(WorkPointView.plan_slug) == SLUG)
            return int((await session.exec(query)).one()) == 3

    await wait_for(tracked, within=60, what="progress to track the per-section plan")


async def test_a_per_section_plan_is_named_by_codes_in_every_service(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    await _import(stack)
    office = await stack.auth(stack.office)

    # Registry: ids are slug/code, the code is the path, the list is in plan order.
    listed = await stack.registry_http.get(f"/v1/plans/{SLUG}/work-points", headers=office)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["code"], i["number"]) for i in items] == [("1.1", 1), ("1.2", 2), ("2.1", 3)]
    one = await stack.registry_http.get(f"/v1/plans/{SLUG}/work-points/2.1", headers=office)
    assert one.status_code == 200, one.text
    assert (one.json()["id"], one.json()["code"]) == (f"{SLUG}/2.1", "2.1")
    assert one.json()["title"] == "推进智慧林业应用"
    missing = await stack.registry_http.get(f"/v1/plans/{SLUG}/work-points/2.2", headers=office)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_work_point")
    for bad in ("3.", ".2", "3..2", "03a", "1.2.3.4.5"):
        refused = await stack.registry_http.get(
            f"/v1/plans/{SLUG}/work-points/{bad}", headers=office
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request"), bad
    # The 2024 plan keeps its ids: the code is the number.
    old = await stack.registry_http.get(f"/v1/plans/{PLAN}/work-points/35", headers=office)
    assert (old.json()["id"], old.json()["code"], old.json()["number"]) == (
        f"{PLAN}/35",
        "35",
        35,
    )

    # Progress: a report on <slug>/2.1 by its lead agency.
    blocked = await stack.post_event(
        stack.forestry, "2.1", "blocked", plan=SLUG, percent=30, note="监测设备采购受阻"
    )
    assert blocked.status_code == 202, blocked.text
    await stack.until_applied(blocked)
    progress = await stack.get_progress(stack.forestry, "2.1", plan=SLUG)
    assert progress.status_code == 200, progress.text
    assert (progress.json()["work_point_id"], progress.json()["code"]) == (f"{SLUG}/2.1", "2.1")
    assert progress.json()["level"] == "red"
    timeline = await stack.progress_http.get(
        f"/v1/work-points/{SLUG}/2.1/timeline", headers=await stack.auth(stack.forestry)
    )
    assert timeline.status_code == 200 and timeline.json()["total"] >= 1, timeline.text
    refused = await stack.progress_http.get(f"/v1/work-points/{SLUG}/3..2/progress", headers=office)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")

    # Notifier: the alert carries the code and the email names 第2.1项.
    async def mailed() -> bool:
        return any("第2.1项" in m["Subject"] for m in stack.smtp.mailbox(FORESTRY_MAIL))

    await wait_for(mailed, what="the stall email on work point 2.1 to 市林业局")
    [mail] = [m for m in stack.smtp.mailbox(FORESTRY_MAIL) if "第2.1项" in m["Subject"]]
    assert mail["Subject"] == "【督办提醒】第2.1项“推进智慧林业应用”进展停滞"
    assert "第3项" not in mail.get_content() and "第三项" not in mail.get_content()
    alerts = await stack.notifier_http.get(
        "/v1/alerts", params={"work_point_id": f"{SLUG}/2.1"}, headers=office
    )
    assert alerts.status_code == 200, alerts.text
    [alert] = [a for a in alerts.json()["items"] if a["work_point_id"] == f"{SLUG}/2.1"]
    assert (alert["code"], alert["number"]) == ("2.1", 3)

    # The board: the cell shows and links the code, the page names 第2.1项.
    assert (await board_login(board, stack.office_person)).status_code == 303
    page = await board.get(f"/board/plans/{SLUG}")
    assert page.status_code == 200, page.text
    assert f'href="/board/work-points/{SLUG}/2.1"' in page.text
    assert 'data-code="2.1"' in page.text and "第2.1项 推进智慧林业应用" in page.text
    assert page.text.index('data-code="1.2"') < page.text.index('data-code="2.1"')
    detail = await board.get(f"/board/work-points/{SLUG}/2.1")
    assert detail.status_code == 200, detail.text
    assert "第2.1项 推进智慧林业应用" in detail.text
    # ... and the 2024 plan looks as before.
    old_board = await board.get(f"/board/plans/{PLAN}")
    assert 'data-code="35"' in old_board.text and "第35项 " in old_board.text
    old_page = await board.get(f"/board/work-points/{PLAN}/35")
    assert "第三十五项" in old_page.text
