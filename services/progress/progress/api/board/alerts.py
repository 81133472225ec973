"""Alerts for the board, from the notifier's `GET /v1/alerts`, asked with the user's own token
(so an agency sees the alerts it was sent, the office all), read as the shared contract
(`duban_shared.contracts.Alert`). When the notifier does not answer, or answers something else,
the pages still render and say so."""

from __future__ import annotations

import logging

import httpx
from duban_shared.contracts import Alert

log = logging.getLogger(__name__)

PAGE = 500


async def fetch_alerts(
    http: httpx.AsyncClient, notifier_url: str, token: str, **filters: str
) -> list[Alert] | None:
    """Every alert matching the filters, newest first; None when the notifier cannot be asked."""
    found: list[Alert] = []
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
            found += [Alert.model_validate(item) for item in body["items"]]
            offset += PAGE
            if offset >= int(body["total"]):
                return found
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("board: alerts from %s unavailable: %r", notifier_url, exc)
        return None
