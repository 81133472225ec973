"""The board's pure pieces for extension requests and the audit trail: the registry's error
codes said in Chinese, and the audit page's filters (days in Zhaoqing's time)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from progress.api.board.audit import _query
from progress.api.board.registry import EXTENSION_REFUSALS, refusal_of


def _answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_the_registry_codes_are_said_in_chinese() -> None:
    refused = refusal_of(
        _answer(
            422,
            {
                "code": "extension_not_later",
                "message": "...",
                "details": {"current_due_on": "2024-12-31"},
            },
        )
    )
    assert (refused.status, refused.code) == (422, "extension_not_later")
    assert refused.message == "申请的新完成时限须晚于现行完成时限(2024-12-31)。"
    already = refusal_of(_answer(409, {"code": "extension_already_open", "message": "..."}))
    assert already.message == EXTENSION_REFUSALS["extension_already_open"]


def test_an_unknown_code_or_a_server_error_is_still_said_in_chinese() -> None:
    odd = refusal_of(_answer(400, {"code": "something_new", "message": "x"}))
    assert (odd.status, odd.code) == (400, "something_new") and "注册中心" in odd.message
    broken = refusal_of(httpx.Response(500, text="oops"))
    assert (broken.status, broken.code) == (502, "unexpected")


def test_the_audit_filters_read_days_in_zhaoqing_time() -> None:
    query, error = _query("registry", " policy.changed ", "", "2024-09-02", "2024-09-02", "3")
    assert error is None and query.page == 3 and query.action == "policy.changed"
    where = query.where()
    assert where.since == datetime(2024, 9, 1, 16, 0, tzinfo=UTC)
    assert where.until == datetime(2024, 9, 2, 16, 0, tzinfo=UTC)
    assert "service=registry" in query.link(page=1) and "page=" not in query.link(page=1)


def test_wrong_audit_filters_are_said_and_ignored() -> None:
    query, error = _query("nowhere", None, None, "2024-13-01", None, "x")
    assert error is not None and "年-月-日" in error
    assert (query.service, query.day_from, query.page) == ("", "", 1)
    _, backwards = _query(None, None, None, "2024-09-03", "2024-09-02", None)
    assert backwards == "起始日期不能晚于截止日期。"
