"""Access tokens: who is calling, how a service verifies a token, and the checks routes use.

The registry is the OAuth2 authorization server: clients (agency systems, the coordinating
office, operators) trade their client credentials for a short-lived JWT at its
`POST /oauth/token`. Every service verifies those tokens itself, offline: the registry with its
own keys, progress and the notifier with the registry's JWKS (`JwksVerifier`), cached in memory
so they keep working while the registry is down.

A token is an RFC 9068 access token: header `typ: at+jwt`, `alg: ES256` and `kid`; claims
`iss`, `aud`, `sub` (the client id), `role`, `agency_id`, `iat`, `exp` and `jti`. A token
issued to a person (a personal account, not a machine client) also carries `person`: the
account's username, which services record as the person who acted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol, get_args

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace

from duban_shared import attributes as attr
from duban_shared.api import ApiError
from duban_shared.clock import Clock
from duban_shared.revocations import RevocationList, TokenRevoked

log = logging.getLogger(__name__)

Role = Literal["agency", "coordinator", "operator"]
ROLES: tuple[Role, ...] = get_args(Role)
OFFICE_ROLES: frozenset[Role] = frozenset({"coordinator", "operator"})
ALGORITHMS: tuple[str, ...] = ("ES256",)
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")
_RENEW = (  # how every refusal ends: what to do
    "get a new token from the registry's POST /oauth/token with your client credentials"
)


@dataclass(frozen=True)
class Principal:
    """The client a request was made by, as its verified token says."""

    client_id: str
    role: Role
    agency_id: uuid.UUID | None  # set for role "agency"
    person: str | None = None  # the account's username when a person (not a machine) acts

    def is_office(self) -> bool:
        """Tell whether this is the coordinating office (coordinator or operator): sees all."""
        return self.role in OFFICE_ROLES


class AuthError(Exception):
    """A token that cannot be accepted, with a stable code and what to do about it."""

    def __init__(self, code: str, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal or raises AuthError."""

    async def verify(self, token: str) -> Principal:
        """Return the token's Principal, or raise AuthError saying why it is refused."""
        ...


class KeySource(Protocol):
    """Where a verifier finds the public key of a key id."""

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """Return the public key of a key id, or None when it is not (or no longer) known."""
        ...


def _short(value: object, limit: int = 64) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class JwtVerifier:
    """Verifies access tokens: signature by a known key, issuer, audience, expiry, claims."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway_seconds: float = 30.0,
        revocations: RevocationList | None = None,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway_seconds
        # Revoked clients and logged-out tokens, checked on every request (cached or not).
        self.revocations = revocations or RevocationList(clock, leeway_seconds=leeway_seconds)
        # An agency system sends many requests with one token: its signature is checked once.
        # Times and the key's publication are checked on every request.
        self._verified: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    VERIFIED_KEPT = 10_000

    async def verify(self, token: str) -> Principal:
        """Return the token's Principal, or raise AuthError saying why it is refused."""
        known = self._verified.get(token)
        if known is not None:
            if await self._keys.key(known[0]) is not None:
                self._check_times(known[1])
                self._check_revoked(known[1])
                return principal_from_claims(known[1])
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("invalid_token", f"The bearer token is not a JWT; {_RENEW}.") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("invalid_token", f"The token has no key id (kid); {_RENEW}.")
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(
                "invalid_token",
                f"Tokens are signed with {', '.join(ALGORITHMS)}, not "
                f"{_short(header.get('alg'))}; {_RENEW}.",
            )
        if str(header.get("typ", "")).lower() not in TOKEN_TYPES:
            raise AuthError(
                "invalid_token", f"The token is not an access token (typ at+jwt); {_RENEW}."
            )
        key = await self._keys.key(kid)
        if key is None:
            raise AuthError(
                "unknown_key",
                f"The token is signed with key '{_short(kid)}', which the registry does not "
                f"publish (retired long ago, or not ours); {_RENEW}.",
            )
        claims = self._decode(token, key)
        self._check_times(claims)
        self._check_revoked(claims)
        principal = principal_from_claims(claims)
        self._verified[token] = (kid, claims)
        if len(self._verified) > self.VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _check_revoked(self, claims: Mapping[str, Any]) -> None:
        try:
            self.revocations.check(claims)
        except TokenRevoked as exc:
            raise AuthError(
                "token_revoked",
                f"{exc}; log in again, or get a new token with the client's current "
                "credentials (a revoked client needs new ones from the coordinating office).",
            ) from None

    def revoke(self, token: str) -> dict[str, Any] | None:
        """Refuse a token this verifier accepted, at once and in this process (a logout);
        return its claims, or None when it was never verified here."""
        known = self._verified.get(token)
        if known is None:
            return None
        claims = known[1]
        exp = _number_claim(claims, "exp")
        if isinstance(claims.get("jti"), str) and exp is not None:
            self.revocations.revoke_token(claims["jti"], datetime.fromtimestamp(exp, UTC))
        return claims

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,  # checked below against the injected clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError(
                "wrong_audience",
                f"The token is not meant for Duban (audience '{self._audience}'); {_RENEW}.",
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthError(
                "wrong_issuer",
                f"The token was not issued by '{self._issuer}'; {_RENEW}.",
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(
                "invalid_token", f"The token has no '{exc.claim}' claim; {_RENEW}."
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthError(
                "invalid_token", f"The token's signature does not verify; {_RENEW}."
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", f"The token is malformed ({exc}); {_RENEW}.") from None

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock.now().timestamp()
        exp, iat, nbf = (_number_claim(claims, name) for name in ("exp", "iat", "nbf"))
        if exp is None or iat is None:
            raise AuthError("invalid_token", f"The token has no exp or iat; {_RENEW}.")
        if now >= exp + self._leeway:
            expired = datetime.fromtimestamp(exp, UTC).isoformat()
            raise AuthError("token_expired", f"The token expired at {expired}; {_RENEW}.")
        if iat > now + self._leeway or (nbf is not None and nbf > now + self._leeway):
            raise AuthError(
                "invalid_token",
                "The token is not valid yet (issued in the future); check the clocks of the "
                "registry and this service.",
            )


def _number_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError("invalid_token", f"The token's '{name}' is not a number; {_RENEW}.")
    return float(value)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Build the Principal of verified claims; refuse inconsistent role and agency claims."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthError("invalid_token", f"The token has no client id (sub); {_RENEW}.")
    role = claims.get("role")
    if role not in ROLES:
        raise AuthError(
            "invalid_token", f"The token's role '{_short(role)}' is not one of {', '.join(ROLES)}."
        )
    person = claims.get("person")
    if person is not None and (not isinstance(person, str) or not person):
        raise AuthError("invalid_token", f"The token's person claim must be a username; {_RENEW}.")
    raw_agency = claims.get("agency_id")
    if role != "agency":
        if raw_agency is not None:
            raise AuthError("invalid_token", f"A {role} token cannot name an agency.")
        return Principal(client_id=sub, role=role, agency_id=None, person=person)
    try:
        agency_id = uuid.UUID(str(raw_agency)) if raw_agency is not None else None
    except ValueError:
        agency_id = None
    if agency_id is None:
        raise AuthError("invalid_token", "An agency token must carry its agency_id.")
    return Principal(client_id=sub, role="agency", agency_id=agency_id, person=person)


class JwksUnavailable(AuthError):
    """No key set was ever fetched and the registry does not answer now."""

    def __init__(self, url: str) -> None:
        super().__init__(
            "jwks_unavailable",
            f"Tokens cannot be checked yet: the registry's keys ({url}) could not be fetched. "
            "Retry shortly; operators: check that the registry is up and DUBAN_AUTH_JWKS_URL.",
            status=503,
        )


class JwksKeySource:
    """The registry's public keys, fetched from its JWKS URL and cached in memory.

    Policy: the first lookup fetches; the set is fetched again when it is older than
    `refresh_seconds`, or when a token names an unknown key id, but never more often than
    once per `min_refresh_seconds`. A failed fetch with keys in the cache is logged and the
    cached keys stay in use (the registry may be down); without a cache it is a 503.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        clock: Clock,
        *,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
    ) -> None:
        self._http = http
        self._url = url
        self._clock = clock
        self._refresh = timedelta(seconds=refresh_seconds)
        self._min_refresh = timedelta(seconds=min_refresh_seconds)
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self._attempts = 0
        self._lock = asyncio.Lock()
        self.fetches = 0  # attempts so far, successful or not
        self.failures = 0

    @property
    def kids(self) -> list[str]:
        """Key ids in the cache."""
        return sorted(self._keys or {})

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """Return the public key of `kid`, fetching the key set when the policy says so."""
        now = self._clock.now()
        if self._keys is None:
            await self.refresh(reason="no key set cached yet")
        elif _elapsed(self._fetched_at, now, self._refresh) and self._may_fetch(now):
            await self.refresh(reason="key set older than the refresh interval")
        if kid not in (self._keys or {}) and self._may_fetch(self._clock.now()):
            await self.refresh(reason=f"unknown key id {_short(kid)!r}")
        return (self._keys or {}).get(kid)

    def _may_fetch(self, now: datetime) -> bool:
        return _elapsed(self._attempted_at, now, self._min_refresh)

    async def refresh(self, *, reason: str = "asked") -> None:
        """Fetch the key set now (one fetch at a time; waiters reuse its result)."""
        attempts = self._attempts
        async with self._lock:
            if self._attempts != attempts:  # fetched while we waited for the lock
                if self._keys is None:
                    raise JwksUnavailable(self._url)
                return
            self._attempted_at = self._clock.now()
            self.fetches += 1
            try:
                keys = await self._fetch()
            except Exception as exc:
                self.failures += 1
                if self._keys is None:
                    log.warning("JWKS fetch from %s failed (%s): %r", self._url, reason, exc)
                    raise JwksUnavailable(self._url) from exc
                log.warning(
                    "JWKS refresh from %s failed (%s): %r; still verifying with the %d "
                    "cached key(s) fetched at %s",
                    self._url,
                    reason,
                    exc,
                    len(self._keys),
                    self._fetched_at.isoformat() if self._fetched_at else "?",
                )
                return
            finally:
                self._attempts += 1
            if set(keys) != set(self._keys or {}):
                log.info("JWKS from %s (%s): key ids %s", self._url, reason, sorted(keys))
            self._keys = keys
            self._fetched_at = self._attempted_at

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        response = await self._http.get(self._url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("the JWKS document has no 'keys' list")
        return parse_jwks(entries)


def parse_jwks(entries: Iterable[object]) -> dict[str, jwt.PyJWK]:
    """Return the usable signing keys of JWKS entries by kid; others are logged and skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            log.warning("JWKS: skipping an entry without a kid")
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            log.warning("JWKS: skipping key %s: %s", _short(entry["kid"]), exc)
            continue
        if key.algorithm_name not in ALGORITHMS:
            log.warning("JWKS: skipping key %s (%s)", _short(entry["kid"]), key.algorithm_name)
            continue
        keys[entry["kid"]] = key
    return keys


def _elapsed(since: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Tell whether `interval` has passed since `since` (a clock moved back counts as yes)."""
    if since is None:
        return True
    delta = now - since
    return delta >= interval or delta < timedelta(0)


class JwksVerifier(JwtVerifier):
    """A verifier for services other than the registry: keys from the registry's JWKS."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway_seconds: float = 30.0,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        revocations: RevocationList | None = None,
    ) -> None:
        self.source = JwksKeySource(
            http,
            url,
            clock,
            refresh_seconds=refresh_seconds,
            min_refresh_seconds=min_refresh_seconds,
        )
        super().__init__(
            self.source,
            issuer=issuer,
            audience=audience,
            clock=clock,
            leeway_seconds=leeway_seconds,
            revocations=revocations,
        )

    async def prefetch(self) -> bool:
        """Fetch the key set at start-up; a failure is logged (the first request retries)."""
        try:
            await self.source.refresh(reason="start-up")
        except JwksUnavailable:
            return False
        return True


class AuthSettings(Protocol):
    """The auth fields of ServiceSettings."""

    auth_issuer: str
    auth_audience: str
    auth_jwks_url: str
    auth_jwks_refresh_seconds: float
    auth_jwks_min_refresh_seconds: float
    auth_leeway_seconds: float


def jwks_verifier(settings: AuthSettings, clock: Clock, http: httpx.AsyncClient) -> JwksVerifier:
    """Build the JwksVerifier a service's settings describe."""
    return JwksVerifier(
        http,
        settings.auth_jwks_url,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        clock=clock,
        leeway_seconds=settings.auth_leeway_seconds,
        refresh_seconds=settings.auth_jwks_refresh_seconds,
        min_refresh_seconds=settings.auth_jwks_min_refresh_seconds,
    )


_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="An access token from the registry: POST /oauth/token (a machine's client "
    "credentials) or POST /v1/sessions (a person's login).",
)


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="duban"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
    """Verify the request's `Authorization: Bearer` token with the service's verifier; a token
    in the URL (`?access_token=`, RFC 6750 2.3) is refused, never used: logs keep URLs."""
    if "access_token" in request.query_params:
        raise ApiError(
            400,
            "credentials_in_query",
            "The access token was sent in the URL's query string, where logs keep it: send it "
            "as 'Authorization: Bearer <access token>', and get a new one "
            "(POST /oauth/token on the registry).",
        )
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            401,
            "missing_token",
            f"Send 'Authorization: Bearer <access token>'; {_RENEW}.",
            headers=_challenge(),
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "invalid_token",
            f"Use the Bearer scheme: 'Authorization: Bearer <access token>'; {_RENEW}.",
            headers=_challenge("invalid_request"),
        )
    verifier: TokenVerifier = request.app.state.service.verifier
    try:
        principal = await verifier.verify(token)
    except AuthError as exc:
        headers = _challenge("invalid_token") if exc.status == 401 else None
        raise ApiError(exc.status, exc.code, exc.message, headers=headers) from None
    span = trace.get_current_span()
    span.set_attribute(attr.CLIENT_ID, principal.client_id)
    span.set_attribute(attr.CLIENT_ROLE, principal.role)
    if principal.agency_id is not None:
        span.set_attribute(attr.AGENCY_ID, str(principal.agency_id))
    if principal.person is not None:
        span.set_attribute(attr.PERSON, principal.person)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
"""The verified caller of a request; 401 when the token is missing or refused."""


def require_office(principal: Principal) -> None:
    """Refuse (403 office_only) anyone but the coordinating office (coordinator, operator)."""
    if not principal.is_office():
        raise ApiError(
            403,
            "office_only",
            "Only the coordinating office (a coordinator or operator client) may do this; "
            "agency clients cannot.",
        )


def require_agency_access(
    principal: Principal,
    agency_ids: Iterable[uuid.UUID],
    what: str,
    *,
    code: str = "not_your_work_point",
) -> None:
    """Refuse (403) an agency that is not among `agency_ids`; the office may see everything."""
    if principal.is_office():
        return
    if principal.agency_id is not None and principal.agency_id in set(agency_ids):
        return
    raise ApiError(
        403,
        code,
        f"Your agency is not responsible for {what}; an agency client sees only the work "
        "points its agency is lead or co-responsible for.",
    )
