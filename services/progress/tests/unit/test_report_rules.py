"""Progress's pure rules around reports (progress.domain.reports, chain, scorecards): lateness and
delay, the closure review, the work point's KPI actuals, the hash chain, agency scorecards."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from duban_shared.events import ReportStatus
from progress.domain.chain import (
    GENESIS,
    NewReport,
    check_chains,
    extend,
    hash_row,
    row_content,
)
from progress.domain.reports import (
    CLOSED,
    IN_REVIEW,
    closure_after_lead_report,
    delay_working_days,
    is_late,
    work_point_kpis,
)
from progress.domain.scorecards import responsibility_cards, worst_first

LEAD, OTHER_LEAD, CO = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_report_is_late_only_past_the_allowed_lag() -> None:
    occurred = _at("2024-09-02T09:00:00+08:00")
    week = timedelta(days=7)
    assert not is_late(occurred, occurred + week, week)
    assert is_late(occurred, occurred + week + timedelta(seconds=1), week)


def test_the_delay_counts_working_days_past_the_report_period() -> None:
    # Mon 2 Sep 2024 to Fri 20 Sep: 13 working days (Sat 14 Sep worked, 15-17 Sep Mid-Autumn).
    previous, occurred = _at("2024-09-02T09:00:00+08:00"), _at("2024-09-20T10:00:00+08:00")
    assert delay_working_days(previous, occurred, report_every=10) == 3
    assert delay_working_days(previous, occurred, report_every=13) == 0
    assert delay_working_days(previous, occurred, report_every=20) == 0  # early is not negative


def test_done_from_every_lead_starts_review_and_anything_else_withdraws_it() -> None:
    done = ReportStatus.DONE.value
    assert closure_after_lead_report(None, ReportStatus.DONE, [done, done]) == IN_REVIEW
    assert closure_after_lead_report(None, ReportStatus.DONE, [done, None]) is None
    assert closure_after_lead_report(None, ReportStatus.DONE, [done, "on_track"]) is None
    assert closure_after_lead_report(IN_REVIEW, ReportStatus.DONE, [done]) == IN_REVIEW
    assert closure_after_lead_report(IN_REVIEW, ReportStatus.AT_RISK, [done]) is None
    assert closure_after_lead_report(None, ReportStatus.ON_TRACK, [done]) is None
    assert CLOSED != IN_REVIEW


@dataclass(frozen=True)
class _Latest:
    agency_id: uuid.UUID
    kpis: dict[str, float]
    last_report_at: datetime


def test_a_shared_target_sums_its_holders_and_another_takes_the_latest_lead_value() -> None:
    targets = [
        {
            "metric": "基站",
            "value": 8000,
            "shares": [{"agency_id": str(LEAD)}, {"agency_id": str(CO)}],
        },
        {"metric": "林分优化", "value": 13},
        {"metric": "未报", "value": 1},
    ]
    latest = [
        _Latest(LEAD, {"基站": 3000, "林分优化": 5.0}, _at("2024-09-02T09:00:00+08:00")),
        _Latest(OTHER_LEAD, {"林分优化": 6.5}, _at("2024-09-03T09:00:00+08:00")),
        _Latest(CO, {"基站": 1200, "林分优化": 99.0}, _at("2024-09-04T09:00:00+08:00")),
    ]
    kpis = work_point_kpis(targets, [LEAD, OTHER_LEAD], latest)
    # the co-agency's value counts for its share, never as a lead's; nothing for a metric no
    # one reported
    assert kpis == {"基站": 4200, "林分优化": 6.5}


def _report(n: int) -> NewReport:
    at = _at("2024-09-02T09:00:00+08:00") + timedelta(days=n)
    return NewReport(
        event_id=uuid.uuid4(),
        work_point_id="plan/1",
        agency_id=LEAD,
        status="on_track",
        percent=10 * n,
        kpis={},
        note=None,
        evidence=[],
        occurred_at=at,
        received_at=at,
        stored_at=at,
        out_of_order=False,
        late=False,
        delay_working_days=0,
    )


@dataclass
class _Head:
    report_seq: int = 0
    chain_head: str | None = None


def test_a_chain_links_each_report_to_the_last_and_names_the_first_broken_row() -> None:
    head = _Head()
    rows = [_report(n) for n in range(1, 4)]
    for row in rows:
        extend(head, row)
    assert [r.chain_seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS and rows[1].prev_hash == rows[0].row_hash
    assert (head.report_seq, head.chain_head) == (3, rows[2].row_hash)
    assert rows[1].row_hash == hash_row(rows[0].row_hash, rows[1])
    intact = check_chains(rows)
    assert (intact.ok, intact.rows_checked) == (True, 3)

    changed = [rows[0], replace(rows[1], percent=99), rows[2]]
    broken = check_chains(changed).first_broken
    assert broken is not None
    assert (broken.chain_seq, broken.problem) == (2, "content_changed")
    gap = check_chains([rows[0], rows[2]]).first_broken
    assert gap is not None and (gap.chain_seq, gap.problem) == (3, "sequence_gap")


def test_the_person_who_filed_a_report_is_covered_by_the_chain_only_when_there_is_one() -> None:
    row = _report(1)
    assert "reported_by" not in row_content(row)  # rows written before it still verify
    by_person = replace(row, reported_by="lin.xiaoming")
    assert row_content(by_person)["reported_by"] == "lin.xiaoming"
    assert hash_row(GENESIS, by_person) != hash_row(GENESIS, row)
    extend(_Head(), by_person)
    forged = replace(by_person, reported_by="someone.else")
    broken = check_chains([forged]).first_broken
    assert broken is not None and broken.problem == "content_changed"


def test_scorecards_count_roles_and_open_stalls_and_put_the_most_red_first() -> None:
    def refs(lead: uuid.UUID, co: uuid.UUID) -> list[dict[str, str]]:
        return [
            {"agency_id": str(lead), "name": f"lead {lead}", "role": "lead"},
            {"agency_id": str(co), "name": f"co {co}", "role": "co"},
        ]

    work_points = [
        (refs(LEAD, CO), "red", ["silent"]),
        (refs(LEAD, CO), None, []),
        (refs(OTHER_LEAD, LEAD), "yellow", ["behind_pace"]),
        (refs(OTHER_LEAD, CO), "red", ["blocked"]),
        (refs(OTHER_LEAD, CO), "red", ["overdue"]),
    ]
    cards = responsibility_cards(work_points)
    lead, other, co = cards[LEAD], cards[OTHER_LEAD], cards[CO]
    assert (lead.lead_of, lead.co_of, lead.open_stalls, lead.silent_now) == (2, 1, {"red": 1}, 1)
    assert (other.lead_of, other.open_stalls) == (3, {"yellow": 1, "red": 2})
    assert (co.lead_of, co.co_of, co.open_stalls) == (0, 4, {})
    lead.add_reports(4, 3, 1, 0.504)
    assert (lead.on_time_rate, lead.average_delay_working_days) == (0.75, 0.5)
    assert co.on_time_rate is None  # no reports: no rate
    assert [c.agency_id for c in worst_first(cards.values())] == [OTHER_LEAD, LEAD, CO]
    assert list(responsibility_cards(work_points, only=CO)) == [CO]
