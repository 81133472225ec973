"""Revoked clients, rotated secrets and logged-out sessions on the running system: the registry
publishes each revocation through its outbox to duban.registry.revocations.v1 on the broker, and
progress and the notifier refuse the tokens concerned within seconds, long before they expire."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from progress.api.board.session import COOKIE, LOGIN_COOKIE

from tests.harness import wait_for
from tests.stack import FORESTRY, PLAN, Client, Stack, board_login


async def _answers(stack: Stack, token: str) -> dict[str, tuple[int, str | None]]:
    """What each service answers a read with this token: (status, error code)."""
    headers = {"Authorization": f"Bearer {token}"}
    answers = {
        "registry": await stack.registry_http.get(f"/v1/plans/{PLAN}", headers=headers),
        "progress": await stack.progress_http.get(
            f"/v1/work-points/{PLAN}/35/progress", headers=headers
        ),
        "notifier": await stack.notifier_http.get("/v1/alerts", headers=headers),
    }
    return {
        name: (r.status_code, r.json().get("code") if r.status_code >= 400 else None)
        for name, r in answers.items()
    }


async def _until_refused_everywhere(stack: Stack, token: str) -> None:
    async def refused() -> bool:
        return set((await _answers(stack, token)).values()) == {(401, "token_revoked")}

    await wait_for(refused, within=15, what="every service to refuse the revoked token")


async def test_a_revoked_clients_tokens_are_refused_by_every_service_within_seconds(
    stack: Stack,
) -> None:
    forestry = await stack.client_for(FORESTRY)
    token = await stack.token(forestry)
    assert set((await _answers(stack, token)).values()) == {(200, None)}

    revoked = await stack.registry_http.post(
        f"/v1/clients/{forestry.client_id}/revoke", headers=await stack.auth(stack.office)
    )
    assert revoked.status_code == 200, revoked.text
    await _until_refused_everywhere(stack, token)
    report = await stack.post_event(token, 35, "on_track", percent=30)
    assert (report.status_code, report.json()["code"]) == (401, "token_revoked")
    assert "revoked" in report.json()["message"]
    # Other clients are not concerned.
    assert (await stack.get_progress(stack.forestry, 35)).status_code == 200


async def test_a_rotated_secret_refuses_the_old_tokens_and_keeps_the_new_ones(
    stack: Stack,
) -> None:
    forestry = await stack.client_for(FORESTRY)
    old = await stack.token(forestry)
    stack.clock.advance(timedelta(seconds=1))
    rotated = await stack.registry_http.post(
        f"/v1/clients/{forestry.client_id}/rotate", headers=await stack.auth(stack.operator)
    )
    assert rotated.status_code == 201, rotated.text
    renewed = Client(forestry.client_id, rotated.json()["client_secret"], "agency")
    new = await stack.token(renewed)  # issued in the same (manual) second as the rotation
    await _until_refused_everywhere(stack, old)
    assert set((await _answers(stack, new)).values()) == {(200, None)}


async def test_logout_revokes_the_session_token_everywhere(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    logged_in = await board_login(board, stack.office_person)
    assert logged_in.status_code == 303, logged_in.text
    token = board.cookies[COOKIE]
    assert set((await _answers(stack, token)).values()) == {(200, None)}
    home = await board.get(f"/board/plans/{PLAN}")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', home.text)
    assert csrf is not None

    out = await board.post("/board/logout", data={"csrf": csrf.group(1)})
    assert (out.status_code, out.headers["location"]) == (303, "/board/login?why=logout")
    # Refused at once by progress (the board's own service), within seconds by the others,
    # the cookie's token replayed as a bearer token too.
    refused = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/summary", headers={"Authorization": f"Bearer {token}"}
    )
    assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    await _until_refused_everywhere(stack, token)
    async with httpx.AsyncClient(
        transport=board._transport,
        base_url="http://test",
        headers={"Cookie": f"{COOKIE}={token}"},  # the cookie kept by someone else
    ) as replay:
        replayed = await replay.get(f"/board/plans/{PLAN}")
    assert replayed.status_code == 303 and "/board/login" in replayed.headers["location"]
    # Logging in again gives a new session.
    assert (await board_login(board, stack.office_person)).status_code == 303
    assert board.cookies[COOKIE] != token
    assert LOGIN_COOKIE not in board.cookies  # spent with the login


async def test_a_disabled_accounts_sessions_end_everywhere_and_a_reset_ends_the_old_ones(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    forestry = stack.forestry_person
    assert (await board_login(board, forestry)).status_code == 303
    on_board = board.cookies[COOKIE]
    opened = await stack.registry_http.post(
        "/v1/sessions", json={"username": forestry.username, "password": forestry.password}
    )
    api_session = opened.json()["access_token"]
    for token in (on_board, api_session):
        assert set((await _answers(stack, token)).values()) == {(200, None)}

    stack.clock.advance(timedelta(seconds=1))
    office = await stack.auth(stack.office)
    disabled = await stack.registry_http.post(
        f"/v1/accounts/{forestry.username}/disable", headers=office
    )
    assert disabled.status_code == 200, disabled.text
    await _until_refused_everywhere(stack, on_board)
    await _until_refused_everywhere(stack, api_session)
    page = await board.get(f"/board/plans/{PLAN}")
    assert page.status_code == 303 and "why=revoked" in page.headers["location"]
    refused = await board_login(board, forestry)
    assert refused.status_code == 403 and "该账号已停用" in refused.text

    # Enabled again and reset: the old sessions stay refused, the new login works.
    stack.clock.advance(timedelta(seconds=1))
    enabled = await stack.registry_http.post(
        f"/v1/accounts/{forestry.username}/enable", headers=office
    )
    assert enabled.status_code == 200, enabled.text
    reset = await stack.registry_http.post(
        f"/v1/accounts/{forestry.username}/reset-password", json={}, headers=office
    )
    one_time = reset.json()["one_time_password"]
    again = await stack.registry_http.post(
        "/v1/sessions",
        json={
            "username": forestry.username,
            "password": one_time,
            "new_password": "new password 2024",
        },
    )
    assert again.status_code == 201, again.text
    fresh = again.json()["access_token"]

    async def fresh_works_old_refused() -> bool:
        answers = set((await _answers(stack, fresh)).values())
        return answers == {(200, None)} and set((await _answers(stack, on_board)).values()) == {
            (401, "token_revoked")
        }

    await wait_for(fresh_works_old_refused, within=15, what="the new session to work everywhere")
