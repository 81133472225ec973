"""Token verification and the JWKS cache, with keys made here and an HTTP stand-in registry."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from duban_shared.api import ApiError
from duban_shared.auth import (
    AuthError,
    JwksVerifier,
    Principal,
    require_agency_access,
    require_office,
)
from duban_shared.clock import ManualClock
from duban_shared.events import Revocation
from jwt.algorithms import ECAlgorithm

START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")
AGENCY = uuid.UUID("0b8e8a5c-3f7e-5a6f-9d2e-1c4b7a9e0f11")
URL = "http://registry/.well-known/jwks.json"


class Key:
    """A P-256 signing key with a kid, as the registry keeps one."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, Any]:
        public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def sign(self, clock: ManualClock, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(clock.now().timestamp())
        body: dict[str, Any] = {
            "iss": "duban-registry",
            "aud": "duban",
            "sub": "agency-0123456789abcdef",
            "role": "agency",
            "agency_id": str(AGENCY),
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not ...}
        return jwt.encode(
            body,
            self.private,
            algorithm="ES256",
            headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})},
        )


class Registry:
    """The registry's JWKS endpoint: serves `keys`, counts requests, can be down."""

    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.up = True
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"keys": [k.jwk() for k in self.keys]})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def verifier(registry: Registry, clock: ManualClock) -> JwksVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(registry.handle))
    return JwksVerifier(
        http,
        URL,
        issuer="duban-registry",
        audience="duban",
        clock=clock,
        leeway_seconds=30,
        refresh_seconds=300,
        min_refresh_seconds=30,
    )


async def _refused(v: JwksVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await v.verify(token)
    assert caught.value.message
    return caught.value


async def test_a_valid_agency_token_gives_its_principal(clock: ManualClock) -> None:
    key = Key("k1")
    v = verifier(Registry(key), clock)
    principal = await v.verify(key.sign(clock))
    assert principal == Principal("agency-0123456789abcdef", "agency", AGENCY)
    assert not principal.is_office()
    office = await v.verify(key.sign(clock, role="coordinator", agency_id=None))
    assert office.is_office() and office.agency_id is None


async def test_expiry_follows_the_injected_clock_with_leeway(clock: ManualClock) -> None:
    key = Key("k1")
    v = verifier(Registry(key), clock)
    token = key.sign(clock)
    clock.advance(timedelta(seconds=600 + 29))
    assert (await v.verify(token)).role == "agency"  # within the 30 s leeway
    clock.advance(timedelta(seconds=1))
    refused = await _refused(v, token)
    assert (refused.code, refused.status) == ("token_expired", 401)
    assert "/oauth/token" in refused.message


@pytest.mark.parametrize(
    ("claims", "headers", "code"),
    [
        ({"aud": "another-system"}, None, "wrong_audience"),
        ({"iss": "someone-else"}, None, "wrong_issuer"),
        ({"exp": ...}, None, "invalid_token"),
        ({"jti": ...}, None, "invalid_token"),
        ({"role": "admin"}, None, "invalid_token"),
        ({"agency_id": None}, None, "invalid_token"),  # an agency token without its agency
        ({"role": "operator"}, None, "invalid_token"),  # an office token naming an agency
        ({"exp": "soon"}, None, "invalid_token"),
        ({}, {"typ": "JWT"}, "invalid_token"),  # an ID token or other JWT, not an access token
    ],
)
async def test_claims_and_headers_that_are_refused(
    clock: ManualClock, claims: dict[str, Any], headers: dict[str, Any] | None, code: str
) -> None:
    key = Key("k1")
    v = verifier(Registry(key), clock)
    assert (await _refused(v, key.sign(clock, headers, **claims))).code == code


async def test_forged_unsigned_and_foreign_tokens_are_refused(clock: ManualClock) -> None:
    key = Key("k1")
    v = verifier(Registry(key), clock)
    impostor = Key("k1")  # same kid, other key: the signature does not verify
    assert (await _refused(v, impostor.sign(clock))).code == "invalid_token"
    unsigned = jwt.encode({"sub": "x"}, "", algorithm="none", headers={"kid": "k1"})
    assert (await _refused(v, unsigned)).code == "invalid_token"
    hmac = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    assert (await _refused(v, hmac)).code == "invalid_token"
    assert (await _refused(v, "not-a-jwt")).code == "invalid_token"
    assert (await _refused(v, Key("elsewhere").sign(clock))).code == "unknown_key"


async def test_the_key_set_is_cached_and_refreshed_on_an_unknown_kid_at_most_every_30_s(
    clock: ManualClock,
) -> None:
    old = Key("old")
    registry = Registry(old)
    v = verifier(registry, clock)
    for _ in range(3):
        await v.verify(old.sign(clock))
    assert registry.requests == 1  # fetched once, then cached

    new = Key("new")
    registry.keys.append(new)  # the registry rotated; a token names the new kid
    clock.advance(timedelta(seconds=31))
    assert (await v.verify(new.sign(clock))).role == "agency"
    assert registry.requests == 2

    # Tokens naming unknown kids do not make every request fetch: once per 30 s at most.
    for n in range(5):
        assert (await _refused(v, Key(f"bogus{n}").sign(clock))).code == "unknown_key"
    assert registry.requests == 2
    clock.advance(timedelta(seconds=30))
    await _refused(v, Key("bogus").sign(clock))
    assert registry.requests == 3


async def test_the_key_set_is_refreshed_periodically_and_retired_keys_drop_out(
    clock: ManualClock,
) -> None:
    old, new = Key("old"), Key("new")
    registry = Registry(old)
    v = verifier(registry, clock)
    await v.verify(old.sign(clock))
    registry.keys = [new]  # old retired and past its retention
    clock.advance(timedelta(seconds=299))
    await v.verify(old.sign(clock))
    assert registry.requests == 1
    clock.advance(timedelta(seconds=1))
    assert (await _refused(v, old.sign(clock))).code == "unknown_key"
    assert v.source.kids == ["new"]


async def test_concurrent_requests_share_one_fetch(clock: ManualClock) -> None:
    key = Key("k1")
    registry = Registry(key)
    v = verifier(registry, clock)
    tokens = [key.sign(clock) for _ in range(20)]
    principals = await asyncio.gather(*(v.verify(t) for t in tokens))
    assert len(principals) == 20
    assert registry.requests == 1


async def test_cached_keys_keep_working_while_the_registry_is_down(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    key = Key("k1")
    registry = Registry(key)
    v = verifier(registry, clock)
    await v.verify(key.sign(clock))
    registry.up = False
    clock.advance(timedelta(minutes=10))  # the cache is due for a refresh, which fails
    with caplog.at_level(logging.WARNING, logger="duban_shared.auth"):
        assert (await v.verify(key.sign(clock))).role == "agency"
    assert registry.requests == 2 and v.source.failures == 1
    assert "still verifying with the 1 cached key(s)" in caplog.text
    token = key.sign(clock)
    assert token not in caplog.text
    # Retried no more than every 30 s while down; back up, the next refresh succeeds.
    await v.verify(token)
    assert registry.requests == 2
    registry.up = True
    clock.advance(timedelta(seconds=30))
    await v.verify(token)
    assert registry.requests == 3 and v.source.failures == 1


async def test_no_cache_and_no_registry_is_a_503_that_retries(clock: ManualClock) -> None:
    key = Key("k1")
    registry = Registry(key)
    registry.up = False
    v = verifier(registry, clock)
    assert await v.prefetch() is False
    refused = await _refused(v, key.sign(clock))
    assert (refused.code, refused.status) == ("jwks_unavailable", 503)
    registry.up = True  # no waiting for the 30 s: without keys every request tries
    assert (await v.verify(key.sign(clock))).role == "agency"


async def test_unusable_jwks_entries_are_skipped(clock: ManualClock) -> None:
    key = Key("k1")

    def handle(_request: httpx.Request) -> httpx.Response:
        rsa_like = {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}
        return httpx.Response(200, json={"keys": [rsa_like, {"kty": "EC"}, "x", key.jwk()]})

    v = JwksVerifier(
        httpx.AsyncClient(transport=httpx.MockTransport(handle)),
        URL,
        issuer="duban-registry",
        audience="duban",
        clock=clock,
    )
    assert (await v.verify(key.sign(clock))).agency_id == AGENCY
    assert v.source.kids == ["k1"]


def test_office_and_agency_access_checks() -> None:
    agency = Principal("agency-1", "agency", AGENCY)
    other = uuid.uuid4()
    for office in (Principal("c", "coordinator", None), Principal("o", "operator", None)):
        require_office(office)
        require_agency_access(office, [other], "work point 41")
    with pytest.raises(ApiError) as caught:
        require_office(agency)
    assert (caught.value.status, caught.value.code) == (403, "office_only")
    require_agency_access(agency, [other, AGENCY], "work point 35")
    with pytest.raises(ApiError) as caught:
        require_agency_access(agency, [other], "work point 41")
    assert (caught.value.status, caught.value.code) == (403, "not_your_work_point")
    assert "work point 41" in caught.value.message


async def test_revocations_refuse_tokens_until_they_expire(clock: ManualClock) -> None:
    key = Key("k1")
    v = verifier(Registry(key), clock)
    client = "agency-0123456789abcdef"
    before = key.sign(clock, secret_at=int(clock.now().timestamp() * 1000))
    legacy = key.sign(clock)  # no secret_at: counts as issued at iat
    assert (await v.verify(before)).client_id == client  # cached from now on

    # Rotated a second later: the old secret's tokens are refused, cached or not.
    clock.advance(timedelta(seconds=1))
    rotated_at = clock.now()
    v.revocations.apply(_revocation("client", "rotated", client, rotated_at))
    assert (await _refused(v, before)).code == "token_revoked"
    assert (await _refused(v, legacy)).code == "token_revoked"
    after = key.sign(clock, secret_at=int(rotated_at.timestamp() * 1000))
    assert (await v.verify(after)).client_id == client
    # An older revocation arriving late changes nothing; other clients are not concerned.
    v.revocations.apply(_revocation("client", "rotated", client, rotated_at - timedelta(hours=1)))
    assert (await v.verify(after)).client_id == client
    assert (await v.verify(key.sign(clock, sub="agency-other"))).client_id == "agency-other"

    # One token (a logout): refused until its expiry, then forgotten.
    claims = jwt.decode(after, options={"verify_signature": False})
    v.revocations.apply(
        _revocation("token", "logout", client, clock.now(), jti=claims["jti"], exp=claims["exp"])
    )
    assert (await _refused(v, after)).code == "token_revoked"
    assert len(v.revocations) == 2
    clock.advance(timedelta(hours=2))
    v.revocations.prune()
    assert len(v.revocations) == 0

    # A revoked client: all its tokens, whatever their secret_at.
    v.revocations.apply(_revocation("client", "revoked", client, clock.now()))
    later = key.sign(clock, secret_at=int(clock.now().timestamp() * 1000) + 1)
    assert "revoked" in (await _refused(v, later)).message


def _revocation(
    kind: str,
    reason: str,
    client_id: str,
    at: datetime,
    *,
    jti: str | None = None,
    exp: float | None = None,
) -> Revocation:
    expires = datetime.fromtimestamp(exp, UTC) if exp else at + timedelta(hours=1)
    return Revocation.model_validate(
        {
            "event_id": uuid.uuid4(),
            "occurred_at": at,
            "kind": kind,
            "reason": reason,
            "client_id": client_id,
            "jti": jti,
            "expires_at": expires,
        }
    )
