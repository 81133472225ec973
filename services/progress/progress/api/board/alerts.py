"""Alerts for the board, from the notifier's `GET /v1/alerts`, asked with the user's own token
(so an agency sees the alerts it was sent, the office all). When the notifier does not answer
the pages still render and say so."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import httpx

log = logging.getLogger(__name__)

PAGE = 500


@dataclass(frozen=True)
class BoardAlert:
    """An alert as the board shows it."""

    id: str
    work_point_id: str
    number: int
    title: str
    level: str
    reasons: list[str]
    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    lead_agencies: list[str]
    trace_id: str | None


def _parse(item: dict[str, object]) -> BoardAlert:
    def when(key: str) -> datetime | None:
        value = item.get(key)
        return datetime.fromisoformat(str(value)) if value else None

    fired = when("fired_at")
    assert fired is not None
    return BoardAlert(
        id=str(item["id"]),
        work_point_id=str(item["work_point_id"]),
        number=int(str(item["number"])),
        title=str(item["title"]),
        level=str(item["level"]),
        reasons=[str(r) for r in item.get("reasons") or []],  # type: ignore[attr-defined]
        state=str(item["state"]),
        fired_at=fired,
        acknowledged_at=when("acknowledged_at"),
        acknowledged_by=str(item["acknowledged_by"]) if item.get("acknowledged_by") else None,
        resolved_at=when("resolved_at"),
        resolution=str(item["resolution"]) if item.get("resolution") else None,
        lead_agencies=[str(a) for a in item.get("lead_agencies") or []],  # type: ignore[attr-defined]
        trace_id=str(item["trace_id"]) if item.get("trace_id") else None,
    )


async def fetch_alerts(
    http: httpx.AsyncClient, notifier_url: str, token: str, **filters: str
) -> list[BoardAlert] | None:
    """Every alert matching the filters, newest first; None when the notifier cannot be asked."""
    found: list[BoardAlert] = []
    offset = 0
    try:
        while True:
            response = await http.get(
                f"{notifier_url.rstrip('/')}/v1/alerts",
                params={**filters, "limit": str(PAGE), "offset": str(offset)},
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code != 200:
                log.warning("board: notifier answered %s to GET /v1/alerts", response.status_code)
                return None
            body = response.json()
            found += [_parse(item) for item in body["items"]]
            offset += PAGE
            if offset >= int(body["total"]):
                return found
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("board: alerts from %s unavailable: %r", notifier_url, exc)
        return None
