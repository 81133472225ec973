"""Access tokens the registry issues: short-lived ES256 JWTs (RFC 9068 profile), signed with
the key ring's current key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from duban_shared.clock import Clock
from duban_shared.revocations import SECRET_AT_CLAIM, millis

from registry.domain.accounts import subject
from registry.store.auth_models import Account, ApiClient
from registry.use_cases.keys import KeyRing


@dataclass(frozen=True)
class AccessToken:
    """A signed token and what a client needs to know about it."""

    token: str
    expires_in: int
    jti: str
    kid: str


class TokenIssuer:
    """Signs access tokens for authenticated clients with the KeyRing's current key."""

    def __init__(
        self,
        keys: KeyRing,
        clock: Clock,
        *,
        issuer: str,
        audience: str,
        lifetime: timedelta,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime

    async def issue(self, client: ApiClient) -> AccessToken:
        """Sign a token for a client: iss, aud, sub, role, agency_id, iat, exp, jti, and
        secret_at (when the client's secret was set: a rotation refuses the older tokens)."""
        return await self._sign(
            {
                "sub": client.client_id,
                "client_id": client.client_id,
                "role": client.role,
                "agency_id": str(client.agency_id) if client.agency_id is not None else None,
                SECRET_AT_CLAIM: millis(client.rotated_at or client.created_at),
            },
            self._lifetime,
        )

    async def issue_person(self, account: Account, lifetime: timedelta) -> AccessToken:
        """Sign a person's session token: the subject `person:<username>` (what revocations
        name), `person` (the username services record as who acted), `name` (to show), and
        secret_at = the account's sessions_from (a password change refuses older sessions)."""
        return await self._sign(
            {
                "sub": subject(account.username),
                "client_id": subject(account.username),
                "role": account.role,
                "agency_id": str(account.agency_id) if account.agency_id is not None else None,
                "person": account.username,
                "name": account.display_name,
                SECRET_AT_CLAIM: millis(account.sessions_from),
            },
            lifetime,
        )

    async def _sign(self, subject_claims: dict[str, Any], lifetime_delta: timedelta) -> AccessToken:
        signer = await self._keys.signer()
        now = int(self._clock.now().timestamp())
        lifetime = int(lifetime_delta.total_seconds())
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            **subject_claims,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti,
        }
        token = jwt.encode(
            claims,
            signer.private_key,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": "at+jwt"},
        )
        return AccessToken(token=token, expires_in=lifetime, jti=jti, kid=signer.kid)
