"""Acknowledgement times: the monotone merge of alert transitions, each agency's figures for a
circular's period, and both files printing them with their rule."""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime, timedelta

from docx import Document
from duban_shared.workdays import SHANGHAI
from openpyxl import load_workbook
from progress.adapters.circular_files import render_docx, render_xlsx
from progress.domain.acks import (
    ACK_RULE_TEXT,
    AlertFacts,
    Life,
    figures_of,
    hours_words,
    median_hours,
    merge,
)
from progress.domain.circulars import CardLine, Kind, compose, period_start


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


FIRED = at("2024-09-10T10:00")
ACKED = FIRED + timedelta(hours=5, minutes=30)
RESOLVED = FIRED + timedelta(days=2)


def test_merge_moves_forward_only_and_keeps_the_first_times() -> None:
    fired = Life("fired", FIRED, None, None)
    acknowledged = Life("acknowledged", FIRED, ACKED, None)
    resolved = Life("resolved", FIRED, ACKED, RESOLVED)

    first = merge(None, fired)
    assert (first.state, first.changed) == ("fired", True)
    step = merge(first, acknowledged)
    assert (step.state, step.acknowledged_at, step.changed) == ("acknowledged", ACKED, True)
    # The older event again, or late: nothing goes back.
    stale = merge(step, fired)
    assert (stale.state, stale.acknowledged_at, stale.changed) == ("acknowledged", ACKED, False)
    end = merge(step, resolved)
    assert (end.state, end.resolved_at) == ("resolved", RESOLVED)
    assert merge(end, acknowledged).changed is False
    # Out of order: resolved first (carrying its acknowledgement), then acknowledged.
    backwards = merge(merge(None, resolved), acknowledged)
    assert (backwards.state, backwards.acknowledged_at, backwards.changed) == (
        "resolved",
        ACKED,
        False,
    )
    # A later event never moves a time already known.
    moved = merge(step, Life("resolved", FIRED, ACKED + timedelta(hours=1), RESOLVED))
    assert moved.acknowledged_at == ACKED


def test_figures_count_the_period_and_the_median_on_the_wall_clock() -> None:
    forestry, water = uuid.uuid4(), uuid.uuid4()
    since, as_of = at("2024-09-09T00:00"), at("2024-09-12T09:00")

    def alert(
        fired: datetime,
        acked: datetime | None = None,
        resolved: datetime | None = None,
        leads: frozenset[uuid.UUID] = frozenset({forestry}),
    ) -> AlertFacts:
        return AlertFacts(uuid.uuid4(), leads, fired, acked, resolved)

    alerts = [
        alert(at("2024-09-09T08:00"), at("2024-09-09T10:00")),  # 2 h
        alert(at("2024-09-10T18:00"), at("2024-09-11T09:00")),  # 15 h over the night
        alert(at("2024-09-11T09:00"), at("2024-09-11T13:00"), at("2024-09-11T20:00")),  # 4 h
        alert(at("2024-09-11T10:00")),  # still firing
        alert(at("2024-09-11T11:00"), resolved=at("2024-09-11T12:00")),  # resolved, no ack
        alert(at("2024-09-05T10:00")),  # last week's, still firing: unacknowledged only
        alert(at("2024-09-06T10:00"), at("2024-09-09T10:00")),  # last week's, acknowledged
        alert(at("2024-09-10T10:00"), leads=frozenset({water, forestry})),  # two leads
        alert(at("2024-09-12T10:00")),  # after the moment: not yet
    ]
    figures = figures_of(forestry, alerts, since, as_of)
    assert figures.alerts_fired == 6
    assert figures.alerts_acknowledged == 3
    assert figures.median_ack_hours == 4.0  # of 2, 15 and 4 hours
    assert figures.alerts_unacknowledged == 3  # the firing one, last week's, the shared one
    assert figures_of(water, alerts, since, as_of).alerts_fired == 1
    nobody = figures_of(uuid.uuid4(), alerts, since, as_of)
    assert (nobody.alerts_fired, nobody.median_ack_hours) == (0, None)
    # An acknowledgement after the moment does not count yet.
    later = figures_of(forestry, [alert(at("2024-09-12T08:00"), at("2024-09-12T10:00"))],
                       since, as_of)  # fmt: skip
    assert (later.alerts_acknowledged, later.alerts_unacknowledged) == (0, 1)


def test_median_hours_and_words() -> None:
    assert median_hours([]) is None
    assert median_hours([1.0, 2.0]) == 1.5
    assert median_hours([0.25, 10.0, 26.44]) == 10.0
    assert hours_words(None) == "—" and hours_words(26.44) == "26.4"
    assert period_start(Kind.WEEKLY, date(2024, 9, 12)) == at("2024-09-09T00:00")
    assert period_start(Kind.MONTHLY, date(2024, 9, 12)) == at("2024-09-01T00:00")


def test_both_files_print_the_figures_and_the_rule() -> None:
    forestry, water = uuid.uuid4(), uuid.uuid4()
    alerts = [
        AlertFacts(uuid.uuid4(), frozenset({forestry}), at("2024-09-10T10:00"),
                   at("2024-09-11T12:30"), None),
        AlertFacts(uuid.uuid4(), frozenset({forestry}), at("2024-09-10T11:00"), None, None),
    ]  # fmt: skip
    content = compose(
        plan_slug="p",
        plan_title="数字肇庆2024年工作要点",
        kind=Kind.WEEKLY,
        period="2024-W37",
        now=at("2024-09-11T15:00"),
        totals={
            "work_points": 0,
            "by_level": {},
            "by_reason": {},
            "in_review": 0,
            "closed": 0,
        },
        cards=[
            CardLine(forestry, "市林业局", 1, 0, 0, None, {}, 0),
            CardLine(water, "市水务局", 1, 0, 0, None, {}, 0),
        ],
        points=[],
        previous_colours=None,
        previous_number=None,
        alerts=alerts,
    )
    row = content.agency(str(forestry))
    assert (row.alerts_fired, row.alerts_acknowledged, row.median_ack_hours) == (2, 1, 26.5)
    assert row.alerts_unacknowledged == 1
    assert content.alerts_since == at("2024-09-09T00:00").isoformat()
    assert content.to_json()["agencies"][0]["median_ack_hours"] == 26.5

    docx = Document(io.BytesIO(render_docx(content, "肇数督通〔2024〕2号", date(2024, 9, 11))))
    assert ACK_RULE_TEXT in [p.text for p in docx.paragraphs]
    assert "按自然时间" in ACK_RULE_TEXT  # the wall clock, said in the document
    table = docx.tables[1]
    cells = [[c.text for c in r.cells] for r in table.rows]
    assert cells[0] == ["单位", "本期预警", "已确认", "确认时长中位数（小时）", "未确认"]
    assert cells[1:] == [["市林业局", "2", "1", "26.5", "1"], ["市水务局", "0", "0", "—", "0"]]

    book = load_workbook(io.BytesIO(render_xlsx(content, "肇数督通〔2024〕2号")))
    sheet = list(book["单位"].iter_rows(values_only=True))
    rows = [dict(zip(sheet[0], r, strict=True)) for r in sheet[1:]]
    assert [
        (r["本期预警"], r["已确认"], r["确认时长中位数（小时）"], r["未确认"]) for r in rows
    ] == [
        (2, 1, 26.5, 1),
        (0, 0, None, 0),
    ]
    overview = {r[0]: r[1] for r in book["概况"].iter_rows(values_only=True)}
    assert overview["预警确认口径"] == ACK_RULE_TEXT
