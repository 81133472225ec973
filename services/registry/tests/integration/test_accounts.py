"""Personal accounts on the registry's HTTP app and PostgreSQL (or SQLite): the office creates,
disables, enables and resets them (audited); people log in with a one-time password they must
replace, change their password, enrol TOTP; sessions carry the `person` claim and last a
working day; disabling or a reset queues the revocation that ends the sessions everywhere."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import timedelta

import httpx
import jwt
import pyotp
import pytest
from duban_shared.revocations import SECRET_AT_CLAIM
from registry.cli import main as cli
from registry.service import RegistryService
from registry.store.models import AuditLog, OutboxMessage
from sqlmodel import col, select

from services.registry.tests.integration.oauth_helpers import FORESTRY, bearer, manual_clock
from tests.stack import create_client, create_person, import_plan_into


async def _login(
    http: httpx.AsyncClient, username: str, password: str, **more: str
) -> httpx.Response:
    return await http.post(
        "/v1/sessions", json={"username": username, "password": password, **more}
    )


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def _revocations(registry: RegistryService) -> list[dict[str, object]]:
    async with registry.sessions() as session:
        rows = (
            await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.topic).contains("revocations"))
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_the_office_creates_an_account_and_the_person_replaces_the_one_time_password(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    office = await bearer(http, await create_client(registry, "coordinator"))
    made = await http.post(
        "/v1/accounts",
        json={
            "username": "lin.forest",
            "display_name": "林小森",
            "role": "agency",
            "agency_name": FORESTRY,
        },
        headers=office,
    )
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    body = made.json()
    one_time = body["one_time_password"]
    assert body["must_change_password"] and body["agency_name"] == FORESTRY
    again = await http.post(
        "/v1/accounts",
        json={"username": "lin.forest", "display_name": "x", "role": "coordinator"},
        headers=office,
    )
    assert (again.status_code, again.json()["code"]) == (409, "username_taken")

    # The one-time password must be replaced in the login that uses it.
    first = await _login(http, "lin.forest", one_time)
    assert (first.status_code, first.json()["code"]) == (409, "password_change_required")
    weak = await _login(http, "lin.forest", one_time, new_password="short")
    assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")
    done = await _login(http, "Lin.Forest", one_time, new_password="林业 数字化 2024")
    assert done.status_code == 201, done.text
    session = done.json()
    assert session["expires_in"] == 10 * 3600  # a working day (DUBAN_REGISTRY_SESSION_HOURS)
    claims = _claims(session["access_token"])
    assert claims["person"] == "lin.forest" and claims["sub"] == "person:lin.forest"
    assert claims["role"] == "agency" and claims["name"] == "林小森"
    assert SECRET_AT_CLAIM in claims
    assert (await _login(http, "lin.forest", one_time)).json()["code"] == "invalid_credentials"

    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "lin.forest" and not me.json()["must_change_password"]
    # The session works as a token for reads, and is not the office.
    mine = {"Authorization": f"Bearer {session['access_token']}"}
    assert (await http.get("/v1/accounts", headers=mine)).json()["code"] == "office_only"
    # A machine client has no account.
    machine = await http.get("/v1/me", headers=office)
    assert (machine.status_code, machine.json()["code"]) == (403, "person_only")

    async with registry.sessions() as db:
        audit = (await db.exec(select(AuditLog).order_by(col(AuditLog.id)))).all()
    actions = [(a.action, a.subject, a.actor_role, a.actor_person) for a in audit]
    assert ("account.created", "lin.forest", "coordinator", None) in actions
    assert ("account.password_changed", "lin.forest", "agency", "lin.forest") in actions


async def test_a_session_lasts_a_working_day(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    person, _ = await create_person(registry, "li.duban", "coordinator")
    token = (await _login(http, person.username, person.password)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    clock = manual_clock(registry)
    clock.advance(timedelta(hours=9, minutes=59))
    assert (await http.get("/v1/me", headers=headers)).status_code == 200
    clock.advance(timedelta(minutes=2))
    expired = await http.get("/v1/me", headers=headers)
    assert (expired.status_code, expired.json()["code"]) == (401, "token_expired")
    metrics = (await http.get("/metrics")).text
    assert re.search(r'duban_logins_total\{[^}]*outcome="ok"\} 1\.0', metrics), metrics


async def test_wrong_passwords_lock_the_account_and_the_office_unlocks_it_by_a_reset(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    person, _ = await create_person(registry, "lin.forest", "agency", FORESTRY)
    office = await bearer(http, await create_client(registry, "coordinator"))
    unknown = await _login(http, "nobody.here", "whatever password")
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_credentials")
    for _ in range(5):
        wrong = await _login(http, person.username, "wrong password")
        assert wrong.json()["code"] == "invalid_credentials"
    shown = (await http.get(f"/v1/accounts/{person.username}", headers=office)).json()
    assert shown["locked_until"] is not None
    manual_clock(registry).advance(timedelta(seconds=5))  # the throttle's wait, not the lock's
    locked = await _login(http, person.username, person.password)
    assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
    assert 800 < int(locked.headers["retry-after"]) <= 900

    reset = await http.post(
        f"/v1/accounts/{person.username}/reset-password", json={}, headers=office
    )
    assert reset.status_code == 201, reset.text
    one_time = reset.json()["one_time_password"]
    assert reset.json()["locked_until"] is None and reset.json()["must_change_password"]
    manual_clock(registry).advance(timedelta(seconds=301))  # the address's throttle waits
    old = await _login(http, person.username, person.password)
    assert old.json()["code"] == "invalid_credentials"
    manual_clock(registry).advance(timedelta(seconds=301))
    new = await _login(http, person.username, one_time, new_password="another good one")
    assert new.status_code == 201, new.text
    revoked = [r for r in await _revocations(registry) if r["client_id"] == "person:lin.forest"]
    assert [r["reason"] for r in revoked] == ["rotated", "rotated"]  # the reset, the change


async def test_totp_is_enrolled_with_a_first_code_and_then_asked_at_every_login(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    person, _ = await create_person(registry, "li.duban", "coordinator")
    token = (await _login(http, person.username, person.password)).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    clock = manual_clock(registry)

    started = await http.post("/v1/me/totp", headers=mine)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(secret)
    wrong = await http.post("/v1/me/totp/confirm", json={"code": "000000"}, headers=mine)
    if totp.at(clock.now()) != "000000":
        assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_totp")
    confirmed = await http.post(
        "/v1/me/totp/confirm", json={"code": totp.at(clock.now())}, headers=mine
    )
    assert confirmed.status_code == 200 and confirmed.json()["totp"], confirmed.text

    clock.advance(timedelta(seconds=30))
    asked = await _login(http, person.username, person.password)
    assert (asked.status_code, asked.json()["code"]) == (401, "totp_required")
    code = totp.at(clock.now())
    done = await _login(http, person.username, person.password, totp=code)
    assert done.status_code == 201, done.text
    replay = await _login(http, person.username, person.password, totp=code)
    assert (replay.status_code, replay.json()["code"]) == (401, "invalid_totp")

    off = await http.post("/v1/me/totp/disable", json={"password": "not it"}, headers=mine)
    assert (off.status_code, off.json()["code"]) == (403, "wrong_password")
    off = await http.post("/v1/me/totp/disable", json={"password": person.password}, headers=mine)
    assert off.status_code == 200 and not off.json()["totp"]


async def test_disabling_refuses_logins_and_queues_the_revocation_of_every_session(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    person, _ = await create_person(registry, "lin.forest", "agency", FORESTRY)
    office = await bearer(http, await create_client(registry, "coordinator"))
    disabled = await http.post(f"/v1/accounts/{person.username}/disable", headers=office)
    assert disabled.status_code == 200 and disabled.json()["disabled"], disabled.text
    refused = await _login(http, person.username, person.password)
    assert (refused.status_code, refused.json()["code"]) == (403, "account_disabled")
    enabled = await http.post(f"/v1/accounts/{person.username}/enable", headers=office)
    assert enabled.status_code == 200 and not enabled.json()["disabled"]
    assert (await _login(http, person.username, person.password)).status_code == 201
    revoked = [r for r in await _revocations(registry) if r["client_id"] == "person:lin.forest"]
    assert [(r["kind"], r["reason"]) for r in revoked] == [
        ("client", "revoked"),
        ("client", "rotated"),
    ]
    listed = await http.get("/v1/accounts", headers=office)
    assert [a["username"] for a in listed.json()] == ["lin.forest"]
    missing = await http.post("/v1/accounts/nobody.here/disable", headers=office)
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_account")


def test_the_first_office_account_is_made_on_the_command_line(
    make_database: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUBAN_REGISTRY_DATABASE_URL", make_database("registry"))
    plan = str(import_plan_into.__globals__["PLAN_PATH"])
    assert cli(["import-plan", plan, "--slug", "zhaoqing-digital-2024"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("duban local pw 1\n"))
    office = ["create-account", "--username", "office", "--name", "督办办公室"]
    assert cli([*office, "--role", "coordinator", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert "username=office" in out and "one_time_password" not in out
    forestry = ["create-account", "--username", "lin.forest", "--role", "agency"]
    assert cli([*forestry, "--agency-name", FORESTRY]) == 0
    out = capsys.readouterr().out
    assert "one_time_password=" in out and f"agency_name={FORESTRY}" in out
    with pytest.raises(SystemExit, match="username_taken"):
        cli([*forestry, "--agency-name", FORESTRY])
    with pytest.raises(SystemExit, match="invalid_username"):
        cli(["create-account", "--username", "林", "--role", "operator"])
    assert cli(["list-accounts"]) == 0
    listing = capsys.readouterr().out
    assert "office\t督办办公室\tcoordinator" in listing and "lin.forest" in listing
