"""The demo's simulator, played for four weeks against the in-process stack on a moved clock.

The simulator posts through the public APIs as agency systems do (tokens from the registry's
token endpoint); between its actions the test moves the clock, waits until progress has applied
what was posted and runs the sweeper, as the running stack does on its timers.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from duban_shared import topics
from notifier.store.models import Alert
from notifier.store.models import Inbox as NotifierInbox
from progress.domain.circulars import Kind
from progress.store.models import OutboxMessage, StatusReport
from sqlmodel import col, func, select

from scripts.demo.simulator import SHANGHAI, Credentials, Script, Services, Simulator
from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack, plan_data_2025_text

PLAN_2025 = "zhaoqing-data-2025"

# The stack's clock starts on Mon 2 September 2024; the script is moved into the weeks after.
SCRIPT = Script(
    first_day=date(2024, 9, 3),
    last_day=date(2024, 10, 31),
    blocked_on=date(2024, 9, 4),
    unblocked_on=date(2024, 9, 19),
    done_on=date(2024, 9, 20),
    approved_on=date(2024, 9, 25),
    silent_agencies=("市资源局",),  # leads work point 36 and never reports
    silent_from=date(2024, 9, 1),
    quiet_from=date(2024, 9, 1),  # 市卫健局 (work point 30): silent from 23 September
    quiet_until=date(2024, 9, 25),
)


@pytest.mark.timeout(360)  # four simulated weeks of 50 work points through Kafka, 5 circulars
async def test_the_simulated_agencies_cause_alerts_silence_acks_recovery_and_a_closure(
    stack: Stack,
) -> None:
    lines: list[str] = []
    services = Services(stack.registry_http, stack.progress_http, stack.notifier_http, stack.clock)
    office = Credentials(stack.office.client_id, stack.office.secret)

    async def applied(expected: int) -> bool:
        async with stack.progress.sessions() as session:
            stored = (await session.exec(select(func.count()).select_from(StatusReport))).one()
        return int(stored) >= expected

    async def notified() -> bool:
        """The notifier took every stall transition progress wrote so far (alerts are current
        when the agencies look at them)."""
        async with stack.progress.sessions() as session:
            written = (
                await session.exec(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(col(OutboxMessage.topic) == topics.STALLS)
                )
            ).one()
        async with stack.notifier.sessions() as session:
            taken = (
                await session.exec(
                    select(func.count())
                    .select_from(NotifierInbox)
                    .where(col(NotifierInbox.topic).endswith(topics.STALLS))
                )
            ).one()
        return int(taken) >= int(written)

    async def until(moment: datetime) -> None:
        if moment <= stack.clock.now():
            return
        if moment.astimezone(SHANGHAI).date() == stack.clock.now().astimezone(SHANGHAI).date():
            stack.clock.set(moment)  # within a day: the next report
            return
        # A new day: what was posted is applied, then time passes and the sweeper looks.
        await wait_for(lambda: applied(simulator.tally.reports), what="progress to apply reports")
        stack.clock.set(moment)
        await stack.progress.sweeper.sweep_once()
        await stack.progress.circulars.run_due()  # the scheduled circulars, as the loop does
        await wait_for(notified, what="the notifier to take the day's stall transitions")

    # Weekly and monthly circulars on the simulated calendar, as `make demo` configures them.
    stack.progress.circulars.scheduled_kinds = (Kind.WEEKLY, Kind.MONTHLY)
    simulator = Simulator(
        services, office, clock=stack.clock, until=until, script=SCRIPT, say=lines.append
    )
    await simulator.setup()
    assert len(simulator.work_points) == 50 and len(simulator.clients) == 22
    summary = await simulator.run(stop_after=date(2024, 9, 26))
    assert simulator.tally.refused == 0, lines

    # The blocked report of work point 35 reached its lead agency by email at once.
    forestry_mail = FORESTRY_MAIL

    async def blocked_mail() -> bool:
        return any("报告工作受阻" in m.get_content() for m in stack.smtp.mailbox(forestry_mail))

    await wait_for(blocked_mail, what="the blocked alert's email to 市林业局")

    # 市资源局 never reported: its work point is silent, and it was told so.
    land = (await stack.get_progress(stack.office, 36)).json()
    assert "silent" in land["reasons"], land
    land_mail = f"dept-{simulator.agencies['市资源局'].id.hex[:8]}@zhaoqing.example.cn"

    async def silence_mail() -> bool:
        return any("逾期未报送" in m.get_content() for m in stack.smtp.mailbox(land_mail))

    await wait_for(silence_mail, what="the silence email to 市资源局")

    # Work point 38 reported done and the office approved: closed for good.
    closed = (await stack.get_progress(stack.office, 38)).json()
    assert closed["closure"] == "closed", closed

    # Some alerts were acknowledged by their agencies; 35 and 30 recovered.
    async with stack.notifier.sessions() as session:
        alerts = list((await session.exec(select(Alert).where(Alert.kind == "stall"))).all())
    by_point = {}  # the first alert of each work point
    for alert in sorted(alerts, key=lambda a: a.fired_at, reverse=True):
        if alert.work_point_id.startswith(PLAN):
            by_point[alert.code] = alert
    assert simulator.tally.acks >= 1
    assert any(a.acknowledged_by for a in alerts)
    assert by_point["35"].resolution == "recovered"
    assert by_point["30"].resolution == "recovered"
    assert by_point["36"].state != "resolved" and by_point["36"].acknowledged_at is None
    assert any("受阻" in line for line in lines) and any("销号" in line for line in lines)
    assert summary[0].startswith(f"报送 {simulator.tally.reports} 次")

    # The notice on 35 was answered in time; the one on 36 fell overdue.
    notices = (await stack.office_get("/v1/notices", plan=PLAN)).json()["items"]
    assert {n["work_point_code"]: n["status"] for n in notices} == {
        "35": "replied",
        "36": "overdue",
    }
    assert any("下发督办单" in line for line in lines)
    assert any(line.startswith("督办单 2 件") for line in summary), summary
    assert any("逾期未反馈, 升级至督办办公室" in line for line in lines), lines
    notice_line = next(line for line in summary if line.startswith("督办单 2 件"))
    assert "overdue 1" in notice_line and "replied 1" in notice_line, notice_line

    # The scheduled circulars were made while the clock ran: every week's (from the week of
    # 2 September to that of 23 September) and September's, each told as it came out and
    # counted in the summary.
    circulars = (await stack.office_get(f"/v1/plans/{PLAN}/circulars")).json()["items"]
    periods = {(c["kind"], c["period"]) for c in circulars if c["trigger"] == "scheduled"}
    weeks = {f"2024-W{n}" for n in range(36, 40)}
    assert periods == {("weekly", w) for w in weeks} | {("monthly", "2024-09")}, periods
    for circular in circulars:
        assert any(circular["number"] in line and "按期生成" in line for line in lines), circular
    assert f"{PLAN} 通报 5 期 (周通报 4, 月通报 1; 按期 5, 临时 0)" in "\n".join(summary), summary


async def test_the_simulator_plays_every_plan_in_the_registry_with_one_client_per_agency(
    stack: Stack,
) -> None:
    # The second plan is laid out otherwise (numbered per section: ids like 2.3).
    await stack.add_plan(plan_data_2025_text(), PLAN_2025, work_points=13)
    services = Services(stack.registry_http, stack.progress_http, stack.notifier_http, stack.clock)
    office = Credentials(stack.office.client_id, stack.office.secret)
    simulator = Simulator(services, office, clock=stack.clock, until=_never, say=[].append)
    await simulator.setup()  # no plans given: every plan of the registry

    assert simulator.plans == [PLAN, PLAN_2025]
    assert len(simulator.work_points) == 63
    assert "2.3" in {wp.code for wp in simulator.work_points if wp.plan == PLAN_2025}
    leads = {agency.id for wp in simulator.work_points for agency in wp.leads}
    assert (
        len(simulator.clients) == len(leads) == 23
    )  # 22 of 2024, and 人行肇庆市分行 leads in 2025
    assert simulator.last_day == date(2025, 12, 27)  # the last plan's year
    actions = simulator.plan_actions()
    reports = [a for a in actions if a.kind == "report"]
    by_plan = {p: [a for a in reports if a.plan == p] for p in simulator.plans}
    assert by_plan[PLAN] and by_plan[PLAN_2025]
    assert {a.at.year for a in by_plan[PLAN]} == {2024}
    assert {a.at.year for a in by_plan[PLAN_2025]} == {2025}
    # The story (blocked 35, closure of 38) is the 2024 plan's.
    assert {a.plan for a in actions if a.status in ("blocked", "done") or a.kind == "approve"} == {
        PLAN
    }
    reporting = {a.agency.id for a in by_plan[PLAN_2025] if a.agency is not None}
    assert reporting <= set(simulator.clients)

    only = Simulator(
        services, office, clock=stack.clock, until=_never, say=[].append, plans=[PLAN_2025]
    )
    await only.load_plan()
    assert {wp.plan for wp in only.work_points} == {PLAN_2025}
    assert only.story_plan == ""  # no plan of the script's year: routine reports only


async def _never(moment: datetime) -> None:
    raise AssertionError(f"not played here ({moment})")
