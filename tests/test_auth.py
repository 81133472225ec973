"""Tokens across services: the registry issues them, progress and the notifier verify them with
the registry's JWKS, and keep doing so from their cache while the registry does not answer."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from duban_shared import topics
from registry.store import keys

from tests.harness import end_offsets
from tests.stack import PLAN, Stack


async def _mint(stack: Stack, private: Any = None, kid: str | None = None, **claims: Any) -> str:
    """A token signed with the registry's current key (or another), with claims overridden."""
    signer = await stack.registry.keys.signer()
    now = int(stack.clock.now().timestamp())
    body: dict[str, Any] = {
        "iss": "duban-registry",
        "aud": "duban",
        "sub": stack.forestry.client_id,
        "role": "agency",
        "agency_id": str(stack.forestry_id),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(
        body,
        private or signer.private_key,
        algorithm="ES256",
        headers={"kid": kid or signer.kid, "typ": "at+jwt"},
    )


def _refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.json()["message"]


async def test_a_token_from_the_registry_is_accepted_by_progress(stack: Stack) -> None:
    response = await stack.request_token(stack.forestry.client_id, stack.forestry.secret)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    accepted = await stack.post_event(token, 35, "on_track", percent=20)
    assert accepted.status_code == 202, accepted.text
    assert (await stack.get_progress(token, 35)).status_code == 200


async def test_expired_wrong_audience_and_unknown_key_tokens_get_401(stack: Stack) -> None:
    token = await stack.token(stack.forestry)
    other_key = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (await _mint(stack, aud="another-system"), "wrong_audience"),
        (await _mint(stack, iss="someone-else"), "wrong_issuer"),
        (await _mint(stack, private=other_key, kid="not-the-registrys"), "unknown_key"),
        (await _mint(stack, private=other_key), "invalid_token"),  # registry's kid, forged
    ]
    for bad, code in cases:
        _refused(await stack.post_event(bad, 35, "on_track"), 401, code)
        _refused(await stack.get_progress(bad, 35), 401, code)

    # Verified once (its signature is then remembered), the token still expires: the clock moves
    # past its 10 minutes (and the 30 s leeway).
    assert (await stack.get_progress(token, 35)).status_code == 200
    stack.clock.advance(timedelta(minutes=10, seconds=30))
    expired = await stack.post_event(token, 35, "on_track")
    _refused(expired, 401, "token_expired")
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    _refused(await stack.get_progress(token, 35), 401, "token_expired")
    _refused(
        await stack.notifier_http.get(
            "/v1/notifications", headers={"Authorization": f"Bearer {token}"}
        ),
        401,
        "token_expired",
    )
    # A fresh token from the registry works again.
    assert (await stack.post_event(stack.forestry, 35, "on_track")).status_code == 202

    # Nothing refused reached Kafka: only the one accepted report did.
    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert sum(ends.values()) == 1


async def test_an_agency_sees_and_reports_only_its_own_work_points(stack: Stack) -> None:
    # 市林业局 leads work point 35 and has no part in work point 41.
    _refused(await stack.post_event(stack.forestry, 41, "blocked"), 403, "agency_not_responsible")
    _refused(await stack.get_progress(stack.forestry, 41), 403, "not_your_work_point")
    assert (await stack.get_progress(stack.forestry, 35)).status_code == 200

    # Another agency's client sees its own work points, not 35, and cannot report on 35.
    industry = await stack.client_for("市工信局")  # lead of work point 41
    own = [n for n in range(1, 51) if (await stack.get_progress(industry, n)).status_code == 200]
    assert 41 in own and 35 not in own
    _refused(await stack.get_progress(industry, 35), 403, "not_your_work_point")
    _refused(await stack.post_event(industry, 35, "done"), 403, "agency_not_responsible")


async def test_the_office_sees_everything_but_does_not_report(stack: Stack) -> None:
    for office in (stack.office, stack.operator):
        for number in (35, 41, 1, 50):
            response = await stack.get_progress(office, number)
            assert response.status_code == 200, response.text
            assert response.json()["work_point_id"] == f"{PLAN}/{number}"
        _refused(await stack.post_event(office, 35, "on_track"), 403, "agency_token_required")


async def test_notifier_contacts_and_log_are_office_only(stack: Stack) -> None:
    path = f"/v1/agencies/{stack.forestry_id}/contacts/email"
    _refused(await stack.notifier_http.get("/v1/notifications"), 401, "missing_token")
    for url in (path, "/v1/notifications"):
        refused = await stack.notifier_http.get(url, headers=await stack.auth(stack.forestry))
        _refused(refused, 403, "office_only")
    put = await stack.notifier_http.put(
        path, json={"addresses": ["x@example.cn"]}, headers=await stack.auth(stack.forestry)
    )
    _refused(put, 403, "office_only")
    for office in (stack.office, stack.operator):
        contacts = await stack.notifier_http.get(path, headers=await stack.auth(office))
        assert contacts.json() == {"addresses": ["linye@zhaoqing.example.cn"]}
        log = await stack.notifier_http.get("/v1/notifications", headers=await stack.auth(office))
        assert (log.status_code, log.json()) == (200, [])


async def test_progress_keeps_verifying_with_cached_keys_while_the_registry_is_down(
    stack: Stack,
) -> None:
    source = stack.progress.verifier.source
    token = await stack.token(stack.forestry)
    assert (await stack.post_event(token, 35, "on_track")).status_code == 202
    fetched, failed = source.fetches, source.failures

    stack.registry_link.up = False  # the registry stops answering
    stack.clock.advance(timedelta(minutes=6))  # the cached key set is due for a refresh
    assert (await stack.post_event(token, 35, "at_risk")).status_code == 202
    assert (await stack.get_progress(token, 35)).status_code == 200
    assert (source.fetches, source.failures) == (fetched + 1, failed + 1)  # tried once, failed

    # A key the cache has never seen cannot be checked while the registry is down...
    async with stack.registry.sessions() as session, session.begin():
        await keys.rotate(session, stack.clock.now(), stack.registry.keys.retention)
    await stack.registry.keys.load()
    new_token = (await stack.request_token(stack.forestry.client_id, stack.forestry.secret)).json()[
        "access_token"
    ]
    stack.clock.advance(timedelta(seconds=30))
    _refused(await stack.post_event(new_token, 35, "on_track"), 401, "unknown_key")
    # ...and once it answers again, the unknown kid makes progress fetch the new key set.
    stack.registry_link.up = True
    stack.clock.advance(timedelta(seconds=30))
    assert (await stack.post_event(new_token, 35, "on_track")).status_code == 202
    assert (await stack.post_event(token, 35, "on_track")).status_code == 202  # retired, valid
    assert source.failures == failed + 2
