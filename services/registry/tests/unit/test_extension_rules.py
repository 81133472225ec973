"""The pure rules of extension requests: only an open request is decided, a new date must be
later than the one in force, and each refusal has its status, code and a Chinese message."""

from __future__ import annotations

from datetime import date

import pytest
from registry.domain import extensions as rules
from registry.domain.errors import Refusal


@pytest.mark.parametrize(
    ("decision", "state"),
    [("approve", "approved"), ("reject", "rejected"), ("withdraw", "withdrawn")],
)
def test_an_open_request_takes_each_decision(decision: str, state: str) -> None:
    assert rules.next_state("requested", decision, 7) == state


@pytest.mark.parametrize("state", ["approved", "rejected", "withdrawn"])
@pytest.mark.parametrize("decision", ["approve", "reject", "withdraw"])
def test_a_decided_request_takes_no_more_decisions(state: str, decision: str) -> None:
    with pytest.raises(Refusal) as refused:
        rules.next_state(state, decision, 7)
    assert (refused.value.status, refused.value.code) == (409, "extension_not_open")
    assert rules.STATE_LABELS[state] in refused.value.message
    assert refused.value.details == {"state": state}


def test_the_new_date_must_be_later() -> None:
    rules.check_later(date(2024, 11, 29), date(2024, 9, 20))
    for same_or_earlier in (date(2024, 9, 20), date(2024, 9, 1)):
        with pytest.raises(Refusal) as refused:
            rules.check_later(same_or_earlier, date(2024, 9, 20))
        assert (refused.value.status, refused.value.code) == (422, "extension_not_later")
        assert refused.value.details == {"current_due_on": "2024-09-20"}


def test_refusals_of_who_asks_and_of_a_second_open_request() -> None:
    assert (rules.not_lead("p/35").status, rules.not_lead("p/35").code) == (403, "not_lead_agency")
    second = rules.already_open("p/35", 4)
    assert (second.status, second.code, second.details) == (
        409,
        "extension_already_open",
        {"open_extension_id": 4},
    )
    assert "4" in second.message and "撤回" in second.message
