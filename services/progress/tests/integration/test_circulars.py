"""Circulars (通报) on the in-process stack (real Kafka, PostgreSQL, SMTP; one ManualClock):

- made on demand through the API, read back with python-docx and openpyxl, and every number
  compared with what the API answers at the same clock (summary, scorecards, progress);
- a second circular counts the changes since the first and the days overdue;
- the scheduled weekly circular is made once at 09:00 on the first working day of the week,
  again by a restarted scheduler never;
- the notifier mails both files to the configured list, once;
- acknowledgement times: a stall fires an alert, the agency acknowledges it after a known delay,
  the notifier's AlertTransition reaches progress, and the next circular's .docx, .xlsx and JSON
  give that time, equal to what the notifier's GET /v1/alerts says.
"""

from __future__ import annotations

import asyncio
import io
import re
import statistics
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from docx import Document
from duban_shared import topics
from duban_shared.deadletters import read_dead_letters
from duban_shared.events import AlertTransition, AlertTransitionKind, CircularPublished
from duban_shared.workdays import local_day
from notifier.store.models import OutboxMessage as NotifierOutbox
from openpyxl import load_workbook
from progress.domain.acks import ACK_RULE_TEXT
from progress.domain.circulars import Kind, period_start
from progress.store.models import AlertAck, Circular, OutboxMessage, WorkPointState
from progress.use_cases.circulars import Circulars
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col, func, select

from tests.harness import ROOT, wait_for
from tests.stack import FORESTRY, LEADERS_MAIL, OFFICE_MAIL, PLAN, Stack, board_login

ARTIFACTS = ROOT / "test-artifacts" / "circulars"


async def _report(stack: Stack, code: int, status: str, percent: int) -> None:
    response = await stack.post_event(stack.forestry, code, status, percent=percent)
    await stack.until_applied(response)


async def _circular(stack: Stack, kind: str = "weekly") -> dict[str, Any]:
    response = await stack.progress_http.post(
        f"/v1/plans/{PLAN}/circulars", json={"kind": kind}, headers=await stack.auth(stack.office)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _files(stack: Stack, circular: dict[str, Any]) -> tuple[Any, Any]:
    """The circular's .docx and .xlsx as downloaded, read back; a copy of each is kept under
    test-artifacts/circulars/ (kept by CI) for a person to open."""
    docx = await stack.office_get(circular["docx_url"])
    xlsx = await stack.office_get(circular["xlsx_url"])
    assert docx.status_code == 200 and xlsx.status_code == 200
    assert docx.headers["content-type"].endswith("wordprocessingml.document")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = f"{circular['plan_slug']}-{circular['period']}-v{circular['version']}"
    (ARTIFACTS / f"{name}.docx").write_bytes(docx.content)
    (ARTIFACTS / f"{name}.xlsx").write_bytes(xlsx.content)
    return Document(io.BytesIO(docx.content)), load_workbook(io.BytesIO(xlsx.content))


async def _api(stack: Stack) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    summary = await stack.office_get(f"/v1/plans/{PLAN}/summary")
    cards = await stack.office_get(f"/v1/plans/{PLAN}/scorecards")
    progress = await stack.office_get(f"/v1/plans/{PLAN}/progress", limit=500)
    assert summary.status_code == cards.status_code == progress.status_code == 200
    return summary.json(), cards.json(), progress.json()["items"]


def _overdue_by_agency(items: list[dict[str, Any]], today: date) -> dict[str, tuple[int, int]]:
    """(overdue work points led, days overdue summed) per agency id, from the progress list."""
    result: dict[str, tuple[int, int]] = {}
    for item in items:
        if "overdue" not in item["reasons"] or item["closure"] is not None:
            continue
        days = (today - date.fromisoformat(item["due_on"])).days
        for agency in item["agencies"]:
            if agency["role"] == "lead":
                count, total = result.get(agency["agency_id"], (0, 0))
                result[agency["agency_id"]] = (count + 1, total + days)
    return result


def _check_against_api(
    doc: Any,
    book: Any,
    summary: dict[str, Any],
    cards: list[dict[str, Any]],
    items: list[dict[str, Any]],
    today: date,
) -> None:
    """Every number of the circular's files equals the API's answer."""
    totals = summary["totals"]
    levels = totals["by_level"]
    text = "\n".join(p.text for p in doc.paragraphs)
    assert (
        f"共跟踪工作要点{totals['work_points']}项，其中红色{levels['red']}项、"
        f"黄色{levels['yellow']}项、蓝色{levels['blue']}项、绿色{levels['green']}项，"
        f"办结待审核{totals['in_review']}项，已办结销号{totals['closed']}项"
    ) in text

    overview = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert overview["工作要点"] == totals["work_points"]
    assert overview["红色（停滞）"] == levels["red"]
    assert overview["黄色（滞后）"] == levels["yellow"]
    assert overview["蓝色（临期预警）"] == levels["blue"]
    assert overview["绿色（正常推进）"] == levels["green"]
    reasons = {k.removeprefix("原因："): v for k, v in overview.items() if k.startswith("原因：")}
    words = {
        "blocked": "工作受阻",
        "overdue": "超过完成时限",
        "silent": "逾期未报送进展",
        "behind_pace": "未达序时进度",
        "flatline": "连续报送进度无变化",
        "due_soon": "临近完成时限",
    }
    assert reasons == {words[k]: v for k, v in totals["by_reason"].items()}

    sheet = list(book["单位"].iter_rows(values_only=True))
    header, rows = sheet[0], [dict(zip(sheet[0], r, strict=True)) for r in sheet[1:]]
    assert header[0] == "单位"
    assert [r["单位编号"] for r in rows] == [c["agency_id"] for c in cards]  # same order
    overdue = _overdue_by_agency(items, today)
    for row, card in zip(rows, cards, strict=True):
        assert row["单位"] == card["name"]
        assert row["牵头事项"] == card["lead_of"]
        assert row["报送次数"] == card["reports"]
        assert row["按时报送次数"] == card["reports_on_time"]
        assert row["按时报送率"] == card["on_time_rate"]
        assert row["停滞事项"] == sum(card["open_stalls"].values())
        assert row["红色"] == card["open_stalls"].get("red", 0)
        assert row["黄色"] == card["open_stalls"].get("yellow", 0)
        assert row["未报送事项"] == card["silent_now"]
        assert (row["超期事项"], row["逾期天数"]) == overdue.get(card["agency_id"], (0, 0))

    reds = [i for i in items if i["level"] == "red" and i["closure"] is None]
    red_rows = list(book["红色事项"].iter_rows(min_row=2, values_only=True))
    assert sorted(r[0] for r in red_rows) == sorted(i["code"] for i in reds)
    for code, *_, days in red_rows:
        item = next(i for i in reds if i["code"] == code)
        expected = (
            (today - date.fromisoformat(item["due_on"])).days if "overdue" in item["reasons"] else 0
        )
        assert days == expected
    for item in reds:  # each red work point is in the document with its reasons
        assert f"第{item['code']}项 {item['title']}" in text


async def _alerts(stack: Stack) -> list[dict[str, Any]]:
    """Every alert, as the notifier's API answers the office."""
    response = await stack.notifier_http.get(
        "/v1/alerts", params={"limit": 500}, headers=await stack.auth(stack.office)
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


STATES = {"firing": "fired", "acknowledged": "acknowledged", "resolved": "resolved"}


def _to_acknowledge(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts there were to acknowledge: not a closure's record, resolved from the start."""
    return [a for a in alerts if a["resolved_at"] is None or a["resolved_at"] != a["fired_at"]]


async def _acks_caught_up(stack: Stack) -> None:
    """Wait until the notifier has an open alert for each open stall episode of progress (and
    none else), and progress knows every alert in the state the notifier's API answers."""

    async def caught_up() -> bool:
        alerts = await _alerts(stack)
        async with stack.progress.sessions() as session:
            rows = (await session.exec(select(AlertAck))).all()
            episodes = (
                await session.exec(
                    select(WorkPointState.stall_episode_id).where(
                        col(WorkPointState.stall_episode_id).is_not(None)
                    )
                )
            ).all()
        open_alerts = {a["episode_id"] for a in alerts if a["state"] != "resolved"}
        told = {a["id"]: STATES[a["state"]] for a in _to_acknowledge(alerts)}
        return open_alerts == {str(e) for e in episodes} and told == {
            str(r.alert_id): r.state for r in rows
        }

    await wait_for(caught_up, within=30, what="progress to learn the notifier's alerts")


def _acks_from_alerts(
    alerts: list[dict[str, Any]], name: str, since: datetime, as_of: datetime
) -> tuple[int, int, float | None, int]:
    """An agency's acknowledgement figures from the notifier's alerts, by the rule the
    document prints: fired in the period, acknowledged of those, the median wall-clock hours,
    still unacknowledged (whenever fired)."""
    fired, hours, open_ = 0, [], 0
    for alert in _to_acknowledge(alerts):
        if name not in alert["lead_agencies"]:
            continue
        fired_at = datetime.fromisoformat(alert["fired_at"])
        if alert["state"] == "firing":
            open_ += 1
        if not since <= fired_at <= as_of:
            continue
        fired += 1
        if alert["acknowledged_at"] is not None:
            acked_at = datetime.fromisoformat(alert["acknowledged_at"])
            hours.append((acked_at - fired_at).total_seconds() / 3600)
    median = round(statistics.median(hours), 1) if hours else None
    return fired, len(hours), median, open_


def _check_acks(
    doc: Any, book: Any, circular: dict[str, Any], alerts: list[dict[str, Any]]
) -> dict[str, tuple[int, int, float | None, int]]:
    """The acknowledgement figures of the .docx table, the .xlsx sheet and the circular's JSON
    agree with each other and with the notifier's alerts; return them by agency name."""
    summary = circular["summary"]
    as_of = datetime.fromisoformat(summary["as_of"])
    since = period_start(Kind(circular["kind"]), local_day(as_of))
    assert summary["alerts_since"] == since.isoformat()
    assert ACK_RULE_TEXT in [p.text for p in doc.paragraphs]
    table = [[c.text for c in row.cells] for row in doc.tables[1].rows]
    assert table[0] == ["单位", "本期预警", "已确认", "确认时长中位数（小时）", "未确认"]
    in_docx = {r[0]: (int(r[1]), int(r[2]), None if r[3] == "—" else float(r[3]), int(r[4]))
               for r in table[1:]}  # fmt: skip
    sheet = list(book["单位"].iter_rows(values_only=True))
    in_xlsx = {
        row["单位"]: (row["本期预警"], row["已确认"], row["确认时长中位数（小时）"], row["未确认"])
        for row in (dict(zip(sheet[0], r, strict=True)) for r in sheet[1:])
    }
    in_json = {
        a["name"]: (
            a["alerts_fired"],
            a["alerts_acknowledged"],
            a["median_ack_hours"],
            a["alerts_unacknowledged"],
        )
        for a in summary["agencies"]
    }
    assert in_xlsx == in_json
    assert in_docx == {n: f for n, f in in_json.items() if n in in_docx}
    assert set(in_docx) == {a["name"] for a in summary["agencies"] if a["lead_of"]}
    for name, figures in in_json.items():
        assert figures == _acks_from_alerts(alerts, name, since, as_of), name
    return in_json


async def test_an_on_demand_circular_reads_back_with_the_apis_numbers(stack: Stack) -> None:
    stack.clock.set(datetime.fromisoformat("2024-09-10T10:00:00+08:00"))
    await _report(stack, 35, "blocked", 20)
    await stack.progress.sweeper.sweep_once()
    await _acks_caught_up(stack)

    first = await _circular(stack)
    assert re.fullmatch(r"肇数督通〔2024〕1号", first["number"])
    assert (first["period"], first["version"], first["trigger"]) == ("2024-W37", 1, "on_demand")
    doc, book = await _files(stack, first)
    summary, cards, items = await _api(stack)
    _check_against_api(doc, book, summary, cards, items, local_day(stack.clock.now()))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "肇数督通〔2024〕1号" in text and "本期为首期通报" in text
    assert "红榜：1. 市林业局" in text  # its blocked work point is the plan's only red one
    acks = _check_acks(doc, book, first, await _alerts(stack))
    assert acks[FORESTRY] == (1, 0, None, 1)  # its stall's alert, not acknowledged yet

    # Months later: work points past their due dates are red; the second circular says what
    # changed since the first and how many days each is overdue.
    stack.clock.set(datetime.fromisoformat("2025-01-07T10:00:00+08:00"))
    await stack.progress.sweeper.sweep_once()
    await _acks_caught_up(stack)
    second = await _circular(stack)
    assert (second["number"], second["period"], second["version"]) == (
        "肇数督通〔2025〕1号",
        "2025-W02",
        1,
    )
    doc, book = await _files(stack, second)
    summary, cards, items = await _api(stack)
    assert summary["totals"]["by_reason"].get("overdue", 0) > 0
    _check_against_api(doc, book, summary, cards, items, local_day(stack.clock.now()))
    _check_acks(doc, book, second, await _alerts(stack))
    changes = list(book["变化"].iter_rows(min_row=2, values_only=True))
    before = first["summary"]["colours"]
    now = {i["code"]: i["level"] if i["closure"] is None else i["closure"] for i in items}
    assert sorted(str(c[0]) for c in changes) == sorted(k for k in now if now[k] != before[k])
    assert "与上期（肇数督通〔2024〕1号）相比" in "\n".join(p.text for p in doc.paragraphs)

    # Again in the same week: its next version, listed newest first.
    third = await _circular(stack)
    assert (third["period"], third["version"]) == ("2025-W02", 2)
    listed = await stack.office_get(f"/v1/plans/{PLAN}/circulars")
    assert [c["id"] for c in listed.json()["items"]] == [third["id"], second["id"], first["id"]]
    audit = await stack.office_get("/v1/audit", action="circular.issued")
    assert [(e["actor_client_id"], e["after"]["number"]) for e in audit.json()["items"]] == [
        (stack.office.client_id, c["number"]) for c in (third, second, first)
    ]

    # An agency may not; an unknown plan or circular is a 404 with a code.
    refused = await stack.progress_http.post(
        f"/v1/plans/{PLAN}/circulars", json={}, headers=await stack.auth(stack.forestry)
    )
    assert refused.status_code == 403
    unknown = await stack.progress_http.post(
        "/v1/plans/no-such-plan/circulars", json={}, headers=await stack.auth(stack.office)
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_plan")
    missing = await stack.office_get(f"/v1/circulars/{uuid.uuid4()}.docx")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_circular")

    spans = [s for s in stack.spans.all() if s.name == "circular"]
    made = {str((s.attributes or {}).get("duban.circular.id")) for s in spans}
    assert made >= {first["id"], second["id"], third["id"]}
    assert len(spans) == 4  # and the refused unknown plan's, an error
    assert sum(1 for s in spans if not s.status.is_ok) == 1


async def test_the_weekly_circular_is_made_once_at_nine_on_the_first_working_day(
    stack: Stack,
) -> None:
    progress = stack.progress

    def scheduler() -> Circulars:  # a fresh one: a restarted process
        return Circulars(
            progress.sessions,
            stack.clock,
            progress.tracer,
            progress.relay,
            progress.metrics,
            progress.calendar,
            "肇数督通",
            (Kind.WEEKLY,),
        )

    # The week of 7 October 2024: Monday is a holiday (National Day), Tuesday the first
    # working day.
    stack.clock.set(datetime.fromisoformat("2024-10-08T08:59:00+08:00"))
    assert await scheduler().run_due() == []
    stack.clock.set(datetime.fromisoformat("2024-10-08T09:00:00+08:00"))
    made = await scheduler().run_due()
    assert [(c.plan_slug, c.period, c.trigger) for c in made] == [(PLAN, "2024-W41", "scheduled")]
    stack.clock.set(datetime.fromisoformat("2024-10-10T15:00:00+08:00"))
    assert await scheduler().run_due() == []  # restarted later that week: nothing again

    stack.clock.set(datetime.fromisoformat("2024-10-14T09:00:00+08:00"))
    assert [c.period for c in await scheduler().run_due()] == ["2024-W42"]
    async with progress.sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Circular))).one()
    assert count == 2

    # The background loop (as `DUBAN_PROGRESS_CIRCULAR_MONTHLY=true` runs it) on the same
    # clock: November's monthly circular at 09:00 on Friday 1 November, once.
    settings = progress.settings.model_copy(update={"circular_monthly": True})
    assert settings.circular_kinds == ("monthly",)
    loop = scheduler()
    loop.scheduled_kinds = tuple(Kind(k) for k in settings.circular_kinds)
    stack.clock.set(datetime.fromisoformat("2024-11-01T09:00:00+08:00"))
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop, 0.05))

    async def monthly() -> int:
        async with progress.sessions() as session:
            query = select(func.count()).where(Circular.kind == "monthly")
            return int((await session.exec(query)).one())

    await wait_for(lambda: _is(monthly, 1), what="the loop's monthly circular")
    for _ in range(3):  # more rounds of the loop make no other
        await loop.run_due()
    stop.set()
    await running
    assert await monthly() == 1


async def test_the_board_lists_circulars_with_download_links(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    circular = await _circular(stack)
    login = await board_login(board, stack.office_person)
    assert login.status_code in (302, 303), login.text
    page = await board.get(f"/board/plans/{PLAN}")
    assert page.status_code == 200
    assert circular["number"] in page.text and "周通报" in page.text
    link = f"/board/circulars/{circular['id']}.docx"
    assert link in page.text
    served = await board.get(link)
    api = await stack.office_get(circular["docx_url"])
    assert served.status_code == 200 and served.content == api.content
    assert (await board.get(f"/board/circulars/{uuid.uuid4()}.xlsx")).status_code == 404

    await board.post("/board/logout")
    board.cookies.clear()
    await board_login(board, stack.forestry_person)
    page = await board.get(f"/board/plans/{PLAN}")
    assert "通报" not in page.text  # an agency sees no circular
    assert (await board.get(link)).status_code == 403


async def _is(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() == wanted


async def test_the_notifier_mails_the_circular_with_both_files_once(stack: Stack) -> None:
    stack.clock.set(datetime.fromisoformat("2024-09-10T10:00:00+08:00"))
    circular = await _circular(stack)

    async def arrived() -> bool:
        return all(len(stack.smtp.mailbox(a)) >= 1 for a in (LEADERS_MAIL, OFFICE_MAIL))

    await wait_for(arrived, within=30, what="the circular's mail at the SMTP sink")
    docx = await stack.office_get(circular["docx_url"])
    xlsx = await stack.office_get(circular["xlsx_url"])
    for address in (LEADERS_MAIL, OFFICE_MAIL):
        (mail,) = stack.smtp.mailbox(address)
        assert circular["number"] in str(mail["Subject"])
        files = {a.get_filename(): a.get_content() for a in mail.iter_attachments()}
        assert files == {
            f"{circular['number']}.docx": docx.content,
            f"{circular['number']}.xlsx": xlsx.content,
        }

    # The same event again (a redelivery) sends nothing.
    async with stack.progress.sessions() as session:
        rows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.key == circular["id"]))
        ).all()
    (row,) = rows
    event = CircularPublished.model_validate_json(row.payload)
    assert await stack.notifier.circular_mail.apply(event, row.topic) == 0
    assert len(stack.smtp.mailbox(LEADERS_MAIL)) == 1
    mailed = [s for s in stack.spans.all() if s.name == "mail circular"]
    assert len(mailed) == 1


async def test_the_next_circular_tells_how_long_the_agency_took_to_acknowledge(
    stack: Stack,
) -> None:
    fired_at = datetime.fromisoformat("2024-09-10T10:00:00+08:00")  # Tuesday of 2024-W37
    stack.clock.set(fired_at)
    await _report(stack, 35, "blocked", 20)

    async def fired() -> bool:
        return len(await _alerts(stack)) == 1

    await wait_for(fired, within=30, what="the stall's alert")
    [alert] = await _alerts(stack)
    assert datetime.fromisoformat(alert["fired_at"]) == fired_at
    await _acks_caught_up(stack)
    async with stack.progress.sessions() as session:
        row = await session.get(AlertAck, uuid.UUID(alert["id"]))
    assert row is not None and (row.state, row.acknowledged_at) == ("fired", None)
    assert row.lead_agency_ids == [str(stack.forestry_id)]

    # 市林业局 acknowledges 26 hours 30 minutes later, overnight (the wall clock counts).
    stack.clock.advance(timedelta(hours=26, minutes=30))
    acked = await stack.notifier_http.post(
        f"/v1/alerts/{alert['id']}/ack", headers=await stack.auth(stack.forestry)
    )
    assert acked.status_code == 200, acked.text
    await _acks_caught_up(stack)
    async with stack.progress.sessions() as session:
        row = await session.get(AlertAck, uuid.UUID(alert["id"]))
    assert row is not None
    assert (row.state, row.acknowledged_via, row.acknowledged_by) == (
        "acknowledged",
        "api",
        stack.forestry.client_id,
    )
    assert row.acknowledged_at == fired_at + timedelta(hours=26, minutes=30)
    # Counted and traced by the notifier: 26.5 hours waited, acknowledged through the API.
    scraped = await stack.notifier_http.get("/metrics")
    waited = {
        (sample.name, sample.labels.get("duban_alert_acknowledged_via")): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name.startswith("duban_alert_acknowledgement_duration_seconds")
    }
    assert waited["duban_alert_acknowledgement_duration_seconds_count", "api"] == 1
    assert waited["duban_alert_acknowledgement_duration_seconds_sum", "api"] == 26.5 * 3600
    ack_spans = [
        s for s in stack.spans.all() if (s.attributes or {}).get("duban.alert.acknowledged_via")
    ]
    assert [(s.attributes or {})["duban.alert.acknowledged_via"] for s in ack_spans] == ["api"]
    applied = [
        s
        for s in stack.spans.all()
        if (s.attributes or {}).get("duban.alert.id") == alert["id"]
        and s.name.endswith(topics.ALERTS)
    ]
    assert len(applied) == 2  # progress's consumer: fired, acknowledged

    circular = await _circular(stack)
    doc, book = await _files(stack, circular)
    acks = _check_acks(doc, book, circular, await _alerts(stack))
    assert acks[FORESTRY] == (1, 1, 26.5, 0)
    forestry = next(r for r in doc.tables[1].rows if r.cells[0].text == FORESTRY)
    assert [c.text for c in forestry.cells] == [FORESTRY, "1", "1", "26.5", "0"]
    assert "按自然时间" in "\n".join(p.text for p in doc.paragraphs)  # the rule, in the document

    # The events came through the notifier's outbox, keyed by work point: fired, acknowledged.
    async with stack.notifier.sessions() as session:
        outbox = (
            await session.exec(
                select(NotifierOutbox)
                .where(NotifierOutbox.topic == topics.ALERTS)
                .order_by(NotifierOutbox.id)  # type: ignore[arg-type]
            )
        ).all()
    events = [AlertTransition.model_validate_json(r.payload) for r in outbox]
    assert [e.kind for e in events] == [AlertTransitionKind.FIRED, AlertTransitionKind.ACKNOWLEDGED]
    assert {r.key for r in outbox} == {alert["work_point_id"]}
    assert all(r.published_at is not None for r in outbox)

    # A redelivery changes nothing; neither does an older event arriving late.
    apply = stack.progress.alert_consumer.transitions.apply  # type: ignore[attr-defined]
    assert await apply(events[1], stack.topic_prefix + topics.ALERTS) is False
    stale = events[0].model_copy(update={"event_id": uuid.uuid4()})
    assert await apply(stale, stack.topic_prefix + topics.ALERTS) is False
    async with stack.progress.sessions() as session:
        row = await session.get(AlertAck, uuid.UUID(alert["id"]))
    assert row is not None and row.state == "acknowledged"

    # A record that is no alert transition is parked on progress's dead-letter topic.
    await stack.progress.producer.send_and_wait(
        stack.topic_prefix + topics.ALERTS, b"{not an alert", key=b"x"
    )
    bootstrap = stack.progress.settings.kafka_bootstrap_servers
    dlq = stack.topic_prefix + topics.PROGRESS_DLQ

    async def parked() -> bool:
        letters = await read_dead_letters(bootstrap, dlq)
        return any(letter.code == "invalid_alert_transition" for letter in letters)

    await wait_for(parked, within=30, what="the bad alert record on the dead-letter topic")
