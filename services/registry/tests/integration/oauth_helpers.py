"""What the registry's OAuth tests share: the time they start at, a token request, and the
RFC 6749 answer to a client that failed to authenticate."""

from __future__ import annotations

from datetime import datetime

import httpx
from duban_shared.clock import ManualClock
from registry.service import RegistryService

from tests.stack import Client

START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")
FORESTRY = "市林业局"


def manual_clock(registry: RegistryService) -> ManualClock:
    assert isinstance(registry.clock, ManualClock)
    return registry.clock


async def token_request(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


async def bearer(http: httpx.AsyncClient, client: Client) -> dict[str, str]:
    response = await token_request(http, client.client_id, client.secret)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == body["code"] == "invalid_client"
    assert body["error_description"] == body["message"]
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["cache-control"] == "no-store"
