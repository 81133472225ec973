"""The registry as OAuth2 authorization server: token endpoint, revocation, JWKS.

- `POST /oauth/token`: RFC 6749 client credentials grant (section 4.4); the client
  authenticates with HTTP Basic or with `client_id`/`client_secret` form fields (2.3.1).
  Errors are RFC 6749 (5.2) JSON, `error` and `error_description`, plus our `code`/`message`.
- `GET /.well-known/jwks.json`: the public keys that verify the tokens (RFC 7517).
- `POST /oauth/revoke`: RFC 7009 revocation of an access token (a logout).

Client management (`/v1/clients`) is in registry.api.clients.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from duban_shared.app import SessionDep
from duban_shared.auth import AuthError
from duban_shared.ratelimit import retry_after_header
from duban_shared.throttle import address_key, client_key
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from registry.api.deps import ContextDep, ServiceDep
from registry.api.schemas import TokenResponse
from registry.domain.signing_keys import jwks_document
from registry.store.keys import published_keys
from registry.use_cases import clients

router = APIRouter()
log = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 token endpoint error."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """Render as RFC 6749 JSON with our code/message fields alongside."""
        headers = {**NO_STORE, **self.headers}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="duban"'
        body = {
            "error": self.error,
            "error_description": self.description,
            "code": self.error,
            "message": self.description,
        }
        return JSONResponse(status_code=self.status, content=body, headers=headers)


_TOKEN_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string", "description": "or use HTTP Basic"},
                        "client_secret": {"type": "string", "description": "or use HTTP Basic"},
                    },
                }
            }
        },
    }
}

_TOKEN_PARAMETERS = frozenset({"grant_type", "client_id", "client_secret", "scope"})
_INVALID_CLIENT = (
    "Client authentication failed (unknown client, wrong secret or revoked client); check the "
    "client id and secret, or ask the coordinating office for new credentials."
)


@router.post(
    "/oauth/token",
    tags=["auth"],
    response_model=TokenResponse,
    openapi_extra=_TOKEN_FORM,
    responses={
        400: {"description": "invalid_request, unsupported_grant_type, credentials_in_query"},
        401: {"description": "invalid_client"},
        429: {"description": "too_many_attempts: wait Retry-After seconds"},
    },
)
async def token(request: Request, ctx: ContextDep, service: ServiceDep) -> JSONResponse:
    """Trade client credentials for an access token (OAuth2 client credentials grant).

    After repeated failures a client id or a source address must wait before its next attempt
    (429 too_many_attempts with Retry-After), refused before the secret is checked."""
    throttle = service.throttle
    try:
        _refuse_query(request)
        form = await _form(request)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(
                400, "invalid_request", "grant_type is missing; send grant_type=client_credentials."
            )
        if grant != "client_credentials":
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"grant_type '{grant[:40]}' is not supported; use client_credentials.",
            )
        client_id, secret = _credentials(request, form)
        keys = (client_key(client_id), address_key(request.client.host if request.client else None))
        wait = throttle.wait(*keys)
        if wait > 0:
            log.warning(
                "token attempt for client %r throttled (%.0fs to wait)", client_id[:64], wait
            )
            raise OAuthError(
                429,
                "too_many_attempts",
                f"Too many failed attempts for this client or from this address; retry in "
                f"{max(1, math.ceil(wait))} seconds (Retry-After), with the right secret.",
                headers=retry_after_header(wait),
            )
        result = await clients.authenticate(ctx, client_id, secret)
        if result.client is None:
            throttle.failed(*keys)
            log.warning("token refused for client %r: %s", client_id[:64], result.reason)
            raise OAuthError(401, "invalid_client", _INVALID_CLIENT)
        throttle.succeeded(keys[0])
    except OAuthError as exc:
        return exc.response()
    issued = await service.issuer.issue(result.client)
    log.info(
        "token %s issued to client %s (%s), key %s",
        issued.jti,
        result.client.client_id,
        result.client.role,
        issued.kid,
    )
    body = TokenResponse(access_token=issued.token, expires_in=issued.expires_in)
    return JSONResponse(body.model_dump(), headers=NO_STORE)


QUERY_CREDENTIALS = frozenset(
    {"client_id", "client_secret", "grant_type", "token", "access_token", "refresh_token"}
)


def _refuse_query(request: Request) -> None:
    """Refuse parameters in the URL: they end up in proxies' and servers' logs and browser
    histories (RFC 6749 2.3.1: credentials only in the body)."""
    if not request.url.query:
        return
    names = {name.lower() for name, _ in request.query_params.multi_items()}
    if names & QUERY_CREDENTIALS:
        raise OAuthError(
            400,
            "credentials_in_query",
            "Credentials were sent in the URL's query string, where logs keep them: send them "
            "in the form body (or client_id:client_secret with HTTP Basic) and rotate the secret "
            "that was sent (POST /v1/clients/{client_id}/rotate).",
        )
    raise OAuthError(
        400, "invalid_request", "This endpoint takes no query parameters; use the form body."
    )


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            400,
            "invalid_request",
            "Send the parameters form-encoded (Content-Type: "
            "application/x-www-form-urlencoded), e.g. grant_type=client_credentials.",
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError(400, "invalid_request", "The request body is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "The form is not UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form and name in _TOKEN_PARAMETERS:  # RFC 6749 3.2: others are ignored
            raise OAuthError(400, "invalid_request", f"Parameter '{name[:40]}' is repeated.")
        form[name] = value
    return form


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError(
                401,
                "invalid_client",
                "The token endpoint takes HTTP Basic client authentication (or client_id and "
                "client_secret form fields), not a bearer token.",
            )
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(
                401, "invalid_client", "The Basic credentials are not base64 of id:secret."
            ) from None
        basic_id, sep, basic_secret = decoded.partition(":")
        if not sep:
            raise OAuthError(
                401, "invalid_client", "The Basic credentials must be client_id:client_secret."
            )
        if form_secret is not None:
            raise OAuthError(
                400,
                "invalid_request",
                "Send the client secret once: with HTTP Basic or in the form, not both.",
            )
        client_id = unquote_plus(basic_id)
        if form_id is not None and form_id != client_id:
            raise OAuthError(
                400, "invalid_request", "client_id in the form differs from the Basic one."
            )
        return client_id, unquote_plus(basic_secret)
    if not form_id or form_secret is None:
        raise OAuthError(
            401,
            "invalid_client",
            "Authenticate the client: HTTP Basic with client_id:client_secret, or the "
            "client_id and client_secret form fields.",
        )
    return form_id, form_secret


_REVOKE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": {
                            "type": "string",
                            "minLength": 1,
                            "description": "the access token",
                        },
                        "token_type_hint": {
                            "type": "string",
                            "description": "a hint only (RFC 7009): every token here is an "
                            "access token, whatever it says",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/oauth/revoke",
    tags=["auth"],
    openapi_extra=_REVOKE_FORM,
    responses={
        200: {"description": "revoked (or not a token of ours: nothing to do)"},
        400: {"description": "invalid_request, credentials_in_query"},
    },
)
async def revoke_token(request: Request, ctx: ContextDep, service: ServiceDep) -> JSONResponse:
    """Revoke an access token (RFC 7009), e.g. at logout: every service refuses it within
    seconds (401 token_revoked). Holding the token is what entitles to revoke it; a token that
    is not valid (expired, not ours) is answered 200 as well, with nothing to do."""
    try:
        _refuse_query(request)
        form = await _form(request)
        token = form.get("token")
        if not token:
            raise OAuthError(400, "invalid_request", "token is missing; send token=<access token>.")
    except OAuthError as exc:
        return exc.response()
    try:
        principal = await service.verifier.verify(token)
    except AuthError as exc:
        log.info("revocation of a token that is not valid (%s): nothing to do", exc.code)
        return JSONResponse({}, headers=NO_STORE)
    claims = service.verifier.revoke(token)
    assert claims is not None  # verified just now
    await clients.log_out(ctx, principal.client_id, claims["jti"], claims["exp"])
    log.info("token %s of client %s revoked (logout)", claims["jti"], principal.client_id)
    return JSONResponse({}, headers=NO_STORE)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(session: SessionDep, service: ServiceDep) -> JSONResponse:
    """The public keys of the active and recently retired signing keys (JWKS)."""
    keys = await published_keys(session, service.wall_clock.now(), service.keys.retention)
    if not any(k.retired_at is None for k in keys):
        await service.keys.load()  # makes the first key
        keys = await published_keys(session, service.wall_clock.now(), service.keys.retention)
    document = jwks_document([k.public_jwk for k in keys])
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})
