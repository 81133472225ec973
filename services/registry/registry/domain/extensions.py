"""Extension requests (延期申请): a lead agency asks for a later due date of a work point with
a reason; the office approves or rejects it, or the agency withdraws it while it is open.

    requested -> approved | rejected | withdrawn

A work point has at most one open (requested) request. An approved request sets the work
point's due date, as the office's policy override would.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from registry.domain.errors import Refusal

ExtensionState = Literal["requested", "approved", "rejected", "withdrawn"]
OPEN: ExtensionState = "requested"
DECISIONS: dict[str, ExtensionState] = {
    "approve": "approved",
    "reject": "rejected",
    "withdraw": "withdrawn",
}
DECISION_LABELS = {"approve": "批准", "reject": "驳回", "withdraw": "撤回"}
STATE_LABELS: dict[str, str] = {
    "requested": "待审批",
    "approved": "已批准",
    "rejected": "已驳回",
    "withdrawn": "已撤回",
}


def check_later(requested: date, current: date) -> None:
    """Refuse (422 `extension_not_later`) a date that does not move the due date later."""
    if requested <= current:
        raise Refusal(
            422,
            "extension_not_later",
            f"申请的新完成时限 {requested} 不晚于现行时限 {current}；延期申请须提出更晚的日期。",
            {"current_due_on": current.isoformat()},
        )


def next_state(state: str, decision: str, extension_id: int) -> ExtensionState:
    """The state a decision leads to; refused (409 `extension_not_open`) unless the request
    is still open."""
    if state != OPEN:
        raise Refusal(
            409,
            "extension_not_open",
            f"延期申请 {extension_id} 已{STATE_LABELS.get(state, state)}，"
            f"不能再{DECISION_LABELS[decision]}。",
            {"state": state},
        )
    return DECISIONS[decision]


def already_open(work_point_id: str, extension_id: int | None) -> Refusal:
    """The refusal (409) of a second open request for one work point."""
    which = f" {extension_id}" if extension_id is not None else ""
    return Refusal(
        409,
        "extension_already_open",
        f"工作要点 {work_point_id} 已有待审批的延期申请{which}；请等待审批结果或先撤回该申请。",
        {"open_extension_id": extension_id},
    )


def not_lead(work_point_id: str) -> Refusal:
    """The refusal (403) of a request by an agency that does not lead the work point."""
    return Refusal(
        403,
        "not_lead_agency",
        f"只有工作要点 {work_point_id} 的牵头单位可以申请或撤回延期；请由牵头单位的客户端提出。",
    )
