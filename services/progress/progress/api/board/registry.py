"""Extension requests (延期申请) for the board, from the registry's API, asked and changed with
the user's own token (as alerts are read from the notifier's): the registry decides who may do
what, and the board says its refusals in Chinese (`EXTENSION_REFUSALS`). When the registry does
not answer, reads give None (the page still renders and says so) and changes a `Refused` with
the code `registry_unavailable`."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

PAGE = 500


class Extension(BaseModel):
    """An extension request as the registry answers it (`ExtensionPublic`); `code` and `title`
    only in a plan's list."""

    id: int
    work_point_id: str
    agency_id: str
    state: str
    state_label: str
    requested_due_on: date
    previous_due_on: date
    reason: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    code: str | None = None
    title: str | None = None


UNAVAILABLE = "延期申请服务(注册中心)暂不可用,请稍后再试。"

EXTENSION_REFUSALS: dict[str, str] = {
    "not_lead_agency": "只有该项工作的牵头单位可以申请或撤回延期。",
    "office_only": "只有督办协调部门可以审批延期申请。",
    "extension_already_open": "该项工作已有待审批的延期申请,请等待审批结果或先撤回该申请。",
    "extension_not_later": "申请的新完成时限须晚于现行完成时限。",
    "extension_not_open": "该延期申请已经审批或撤回,不能再次处理。请刷新页面查看最新状态。",
    "unknown_extension": "没有找到该延期申请,请刷新页面。",
    "unknown_work_point": "没有找到该工作要点。",
    "unknown_plan": "没有找到该工作计划。",
    "due_on_out_of_range": "申请的新完成时限超出该工作计划允许的范围,请选择更近的日期。",
    "due_before_issue": "申请的新完成时限早于工作计划印发日期。",
    "invalid_request": "请填写新的完成时限(日期)和延期理由(1至2000字);审批意见不超过2000字。",
    "registry_unavailable": UNAVAILABLE,
}
"""The registry's error codes of extension requests, as the board says them."""


class Refused(Exception):
    """A change the registry refused (or could not be asked about), said in Chinese."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message = status, code, message


def refusal_of(response: httpx.Response) -> Refused:
    """The registry's error answer as a Refused with the board's Chinese words."""
    try:
        body = response.json()
        code = str(body.get("code", "")) or "unexpected"
        details = body.get("details") or {}
    except (ValueError, AttributeError):
        code, details = "unexpected", {}
    message = EXTENSION_REFUSALS.get(code)
    if message is None:
        log.warning("board: registry answered %s %s", response.status_code, code)
        message = "注册中心拒绝了该操作,请刷新页面后重试。"
    elif (
        code == "extension_not_later"
        and isinstance(details, dict)
        and details.get("current_due_on")
    ):
        message = f"申请的新完成时限须晚于现行完成时限({details['current_due_on']})。"
    status = response.status_code if 400 <= response.status_code < 500 else 502
    return Refused(status, code, message)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _path(plan_slug: str, code: str) -> str:
    return f"/v1/plans/{plan_slug}/work-points/{code}/extensions"


async def extensions_of(
    http: httpx.AsyncClient, registry_url: str, token: str, plan_slug: str, code: str
) -> list[Extension] | None:
    """A work point's requests, oldest first; None when the registry cannot be asked."""
    try:
        response = await http.get(f"{registry_url}{_path(plan_slug, code)}", headers=_auth(token))
        if response.status_code != 200:
            log.warning("board: registry answered %s to extensions", response.status_code)
            return None
        return [Extension.model_validate(item) for item in response.json()]
    except (httpx.HTTPError, ValueError, ValidationError) as exc:
        log.warning("board: extensions from %s unavailable: %r", registry_url, exc)
        return None


async def pending_of(
    http: httpx.AsyncClient, registry_url: str, token: str, plan_slug: str
) -> list[Extension] | None:
    """The plan's requests waiting for a decision, oldest first; None when the registry cannot
    be asked."""
    found: list[Extension] = []
    try:
        while True:
            response = await http.get(
                f"{registry_url}/v1/plans/{plan_slug}/extensions",
                params={"state": "requested", "limit": str(PAGE), "offset": str(len(found))},
                headers=_auth(token),
            )
            if response.status_code != 200:
                log.warning("board: registry answered %s to pending", response.status_code)
                return None
            body = response.json()
            found += [Extension.model_validate(item) for item in body["items"]]
            if len(found) >= int(body["total"]) or not body["items"]:
                return found
    except (httpx.HTTPError, ValueError, KeyError, ValidationError) as exc:
        log.warning("board: pending extensions from %s unavailable: %r", registry_url, exc)
        return None


async def change(
    http: httpx.AsyncClient,
    registry_url: str,
    token: str,
    plan_slug: str,
    code: str,
    step: str,
    body: dict[str, Any],
) -> Extension:
    """Request (`step` ""), or withdraw, approve or reject (`step` "<id>/<verb>") an extension
    at the registry; raises Refused with the Chinese words of what the registry said."""
    url = f"{registry_url}{_path(plan_slug, code)}" + (f"/{step}" if step else "")
    try:
        response = await http.post(url, json=body, headers=_auth(token))
    except httpx.HTTPError as exc:
        log.warning("board: registry at %s unreachable: %r", registry_url, exc)
        raise Refused(503, "registry_unavailable", UNAVAILABLE) from None
    if response.status_code not in (200, 201):
        raise refusal_of(response)
    try:
        return Extension.model_validate(response.json())
    except (ValueError, ValidationError):
        raise Refused(502, "registry_unavailable", UNAVAILABLE) from None
