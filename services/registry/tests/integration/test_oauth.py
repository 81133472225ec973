"""The registry as OAuth2 authorization server, on PostgreSQL, through its HTTP app and CLI:
client credentials, RFC 6749 errors, throttling, token revocation, JWKS and key rotation."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Literal

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from duban_shared import topics
from duban_shared.auth import AuthError, parse_jwks
from duban_shared.events import Revocation
from registry.domain import client_secrets
from registry.domain.agency_identity import agency_id_for
from registry.service import RegistryService
from registry.store import clients as client_store
from registry.store import keys
from registry.store.auth_models import SigningKey
from registry.store.models import OutboxMessage
from sqlmodel import select

from services.registry.tests.integration.oauth_helpers import (
    FORESTRY,
    START,
    assert_invalid_client,
    bearer,
    manual_clock,
    token_request,
)
from tests.stack import create_client


async def test_client_credentials_give_a_signed_short_lived_token(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    response = await token_request(http, forestry.client_id, forestry.secret)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)

    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert all("d" not in k for k in jwks["keys"])  # public parts only
    header = jwt.get_unverified_header(body["access_token"])
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")
    key = parse_jwks(jwks["keys"])[header["kid"]]
    claims = jwt.decode(
        body["access_token"],
        key,
        algorithms=["ES256"],
        audience="duban",
        issuer="duban-registry",
        options={"verify_exp": False, "verify_iat": False},
    )
    now = int(START.timestamp())
    assert claims["sub"] == forestry.client_id
    assert claims["role"] == "agency"
    assert claims["agency_id"] == str(agency_id_for(FORESTRY))
    assert (claims["iat"], claims["exp"]) == (now, now + 600)
    assert len(claims["jti"]) == 32
    # The registry's own verifier accepts it.
    principal = await registry.verifier.verify(body["access_token"])
    assert (principal.client_id, principal.agency_id) == (
        forestry.client_id,
        agency_id_for(FORESTRY),
    )

    # HTTP Basic works too, and the use is recorded.
    basic = base64.b64encode(f"{forestry.client_id}:{forestry.secret}".encode()).decode()
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    async with registry.sessions() as session:
        client = await client_store.get_client(session, forestry.client_id)
    assert client.last_used_at == START
    assert client.secret_hash.startswith("$argon2id$")
    assert forestry.secret not in client.secret_hash


async def test_wrong_secret_unknown_and_malformed_requests_get_rfc_6749_errors(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    wrong = await token_request(http, forestry.client_id, forestry.secret + "x")
    assert_invalid_client(wrong)
    assert "ask the coordinating office for new credentials" in wrong.json()["message"]
    unknown = await token_request(http, "agency-0000000000000000", forestry.secret)
    assert_invalid_client(unknown)
    assert unknown.json() == wrong.json()  # nothing tells which client ids exist
    assert_invalid_client(
        await http.post("/oauth/token", data={"grant_type": "client_credentials"})
    )

    cases = [
        ({"grant_type": "password", "client_id": forestry.client_id}, "unsupported_grant_type"),
        ({"client_id": forestry.client_id, "client_secret": forestry.secret}, "invalid_request"),
    ]
    for form, error in cases:
        response = await http.post("/oauth/token", data=form)
        assert (response.status_code, response.json()["error"]) == (400, error), response.text
        assert response.json()["code"] == error and response.json()["message"]
    as_json = await http.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    basic = base64.b64encode(f"{forestry.client_id}:{forestry.secret}".encode()).decode()
    both = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": forestry.secret},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


async def test_registry_verifier_follows_the_clock_and_the_keys(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    office = await create_client(registry, "coordinator")
    headers = await bearer(http, office)
    assert (await http.get("/v1/clients", headers=headers)).status_code == 200

    manual_clock(registry).advance(timedelta(minutes=11))
    expired = await http.get("/v1/clients", headers=headers)
    assert (expired.status_code, expired.json()["code"]) == (401, "token_expired")
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


async def test_signing_key_rotation_keeps_old_tokens_valid_until_retention_ends(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    office = await create_client(registry, "coordinator")
    old_token = (await token_request(http, office.client_id, office.secret)).json()["access_token"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    clock = manual_clock(registry)
    async with registry.sessions() as session, session.begin():
        new_key = await keys.rotate(session, clock.now(), registry.keys.retention)
    clock.advance(timedelta(minutes=1))  # the running registry reloads its keys
    new_token = (await token_request(http, office.client_id, office.secret)).json()["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid != old_kid
    published = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
    assert published == [new_key.kid, old_kid]  # newest first; the retired one still there
    for token in (old_token, new_token):
        assert (await registry.verifier.verify(token)).client_id == office.client_id

    clock.advance(timedelta(days=1))  # past the retention of the retired key
    published = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
    assert published == [new_key.kid]
    with pytest.raises(AuthError) as caught:
        await registry.verifier.verify(old_token)
    assert caught.value.code == "unknown_key"
    async with registry.sessions() as session, session.begin():
        await keys.rotate(session, clock.now(), registry.keys.retention)
        remaining = {k.kid for k in (await session.exec(select(SigningKey))).all()}
    assert old_kid not in remaining  # private keys past retention are deleted


class CountingHasher(PasswordHasher):
    """argon2's hasher, counting the secrets it checks."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        CountingHasher.verified += 1
        return super().verify(hash, password)


async def test_failed_token_requests_are_throttled_before_any_argon2_check(
    registry: RegistryService, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_secrets, "_hasher", CountingHasher())
    CountingHasher.verified = 0
    clock = manual_clock(registry)
    forestry = await create_client(registry, "agency", FORESTRY)
    for _ in range(5):  # DUBAN_AUTH_THROTTLE_FREE_FAILURES
        assert_invalid_client(await token_request(http, forestry.client_id, "dcs_wrong"))
    assert CountingHasher.verified == 5

    # The sixth failure makes the client wait 1 s, then 2, 4, ...: refused before hashing,
    # the right secret included.
    assert_invalid_client(await token_request(http, forestry.client_id, "dcs_wrong"))
    waits = []
    for _ in range(6):
        refused = await token_request(http, forestry.client_id, forestry.secret)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == refused.json()["error"] == "too_many_attempts"
        assert refused.headers["cache-control"] == "no-store"
        waits.append(int(refused.headers["retry-after"]))
        assert CountingHasher.verified == 5 + len(waits)  # the refusal checked nothing
        clock.advance(timedelta(seconds=waits[-1]))
        assert_invalid_client(await token_request(http, forestry.client_id, "dcs_wrong"))
    assert waits == [1, 2, 4, 8, 16, 32]
    attempts = CountingHasher.verified
    for _ in range(300):  # a burst is refused without a single hash
        assert (await token_request(http, forestry.client_id, "dcs_wrong")).status_code == 429
    assert CountingHasher.verified == attempts

    # The source address is throttled too: guessing other clients' secrets from it waits.
    office = await create_client(registry, "coordinator")
    assert (await token_request(http, office.client_id, "dcs_wrong")).status_code == 429

    # Failures are forgotten after a quiet while; a good secret clears the client's count.
    clock.advance(timedelta(minutes=16))
    assert (await token_request(http, forestry.client_id, forestry.secret)).status_code == 200
    for _ in range(5):
        assert_invalid_client(await token_request(http, forestry.client_id, "dcs_wrong"))


async def test_credentials_in_the_query_string_are_refused(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    leaked = await http.post(
        "/oauth/token",
        params={"client_id": forestry.client_id, "client_secret": forestry.secret},
        data={"grant_type": "client_credentials"},
    )
    assert (leaked.status_code, leaked.json()["code"]) == (400, "credentials_in_query")
    assert "rotate" in leaked.json()["message"]
    both = await http.post(
        "/oauth/token",
        params={"client_secret": forestry.secret},
        data={
            "grant_type": "client_credentials",
            "client_id": forestry.client_id,
            "client_secret": forestry.secret,
        },
    )
    assert (both.status_code, both.json()["code"]) == (400, "credentials_in_query")
    other = await http.post("/oauth/token?debug=1", data={"grant_type": "client_credentials"})
    assert (other.status_code, other.json()["code"]) == (400, "invalid_request")
    token = (await token_request(http, forestry.client_id, forestry.secret)).json()["access_token"]
    in_url = await http.post("/oauth/revoke", params={"token": token}, data={"x": "1"})
    assert (in_url.status_code, in_url.json()["code"]) == (400, "credentials_in_query")
    bearer_in_url = await http.get("/v1/plans", params={"access_token": token})
    assert (bearer_in_url.status_code, bearer_in_url.json()["code"]) == (
        400,
        "credentials_in_query",
    )


async def test_a_revoked_token_is_refused_by_the_registry_and_published(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    office = await create_client(registry, "coordinator")
    token = (await token_request(http, office.client_id, office.secret)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/v1/clients", headers=headers)).status_code == 200
    revoked = await http.post("/oauth/revoke", data={"token": token})
    assert revoked.status_code == 200, revoked.text
    refused = await http.get("/v1/clients", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "token_revoked")
    # Not a token of ours, or revoked already: nothing to do, still 200 (RFC 7009).
    assert (await http.post("/oauth/revoke", data={"token": "not-a-jwt"})).status_code == 200
    assert (await http.post("/oauth/revoke", data={"token": token})).status_code == 200
    missing = await http.post("/oauth/revoke", data={"token_type_hint": "access_token"})
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid_request")

    claims = jwt.decode(token, options={"verify_signature": False})
    async with registry.sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    published = [
        Revocation.model_validate_json(r.payload) for r in rows if r.topic == topics.REVOCATIONS
    ]
    assert [(r.kind, r.jti, r.client_id, r.reason) for r in published] == [
        ("token", claims["jti"], office.client_id, "logout")
    ]
    assert published[0].expires_at.timestamp() == claims["exp"]


async def test_a_rotation_or_revocation_publishes_what_verifiers_refuse(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    operator = await create_client(registry, "operator")
    headers = await bearer(http, operator)
    old = (await token_request(http, forestry.client_id, forestry.secret)).json()["access_token"]
    manual_clock(registry).advance(timedelta(seconds=1))
    rotated = await http.post(f"/v1/clients/{forestry.client_id}/rotate", headers=headers)
    new = (await token_request(http, forestry.client_id, rotated.json()["client_secret"])).json()
    async with registry.sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    (rotation,) = [
        Revocation.model_validate_json(r.payload) for r in rows if r.topic == topics.REVOCATIONS
    ]
    assert (rotation.kind, rotation.reason, rotation.client_id) == (
        "client",
        "rotated",
        forestry.client_id,
    )
    # What progress and the notifier do with it: the old secret's token is refused, not the new.
    registry.verifier.revocations.apply(rotation)
    with pytest.raises(AuthError) as caught:
        await registry.verifier.verify(old)
    assert caught.value.code == "token_revoked"
    assert (await registry.verifier.verify(new["access_token"])).client_id == forestry.client_id
