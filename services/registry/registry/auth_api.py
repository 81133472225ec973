"""The registry as OAuth2 authorization server: token endpoint, JWKS, client management.

- `POST /oauth/token`: RFC 6749 client credentials grant (section 4.4); the client
  authenticates with HTTP Basic or with `client_id`/`client_secret` form fields (2.3.1).
  Errors are RFC 6749 (5.2) JSON, `error` and `error_description`, plus our `code`/`message`.
- `GET /.well-known/jwks.json`: the public keys that verify the tokens (RFC 7517).
- `/v1/clients`: the office manages clients (the same as the CLI's `*-client` commands).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_plus

from duban_shared.api import ApiError, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import AuthError, PrincipalDep, Role, require_office
from duban_shared.inputs import Line
from duban_shared.ratelimit import retry_after_header
from duban_shared.throttle import LoginThrottle, address_key, client_key
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from registry import auth_store, revocations
from registry.auth_models import ApiClient
from registry.keys import jwks_document, published_keys

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


class TokenResponse(BaseModel):
    """RFC 6749 access token response."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int


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

ClientId = Annotated[Line, Path(max_length=80, description="A client id, e.g. agency-...")]
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
async def token(request: Request, session: SessionDep) -> JSONResponse:
    """Trade client credentials for an access token (OAuth2 client credentials grant).

    After repeated failures a client id or a source address must wait before its next attempt
    (429 too_many_attempts with Retry-After), refused before the secret is checked."""
    service = request.app.state.service
    throttle: LoginThrottle = service.throttle
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
        async with session.begin():
            result = await auth_store.authenticate(
                session, client_id, secret, service.wall_clock.now()
            )
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
async def revoke_token(request: Request, session: SessionDep) -> JSONResponse:
    """Revoke an access token (RFC 7009), e.g. at logout: every service refuses it within
    seconds (401 token_revoked). Holding the token is what entitles to revoke it; a token that
    is not valid (expired, not ours) is answered 200 as well, with nothing to do."""
    service = request.app.state.service
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
    async with session.begin():
        revocations.of_token(
            session, principal.client_id, claims["jti"], claims["exp"], service.wall_clock.now()
        )
    service.relay.wake()
    log.info("token %s of client %s revoked (logout)", claims["jti"], principal.client_id)
    return JSONResponse({}, headers=NO_STORE)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(request: Request, session: SessionDep) -> JSONResponse:
    """The public keys of the active and recently retired signing keys (JWKS)."""
    service = request.app.state.service
    keys = await published_keys(session, service.wall_clock.now(), service.keys.retention)
    if not any(k.retired_at is None for k in keys):
        await service.keys.load()  # makes the first key
        keys = await published_keys(session, service.wall_clock.now(), service.keys.retention)
    return JSONResponse(jwks_document(keys), headers={"Cache-Control": "public, max-age=60"})


# ---------------------------------------------------------------- client management


class ClientOut(BaseModel):
    """An API client (its secret is never shown again)."""

    client_id: str
    role: str
    agency_id: uuid.UUID | None
    agency_name: str | None
    label: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ClientWithSecret(ClientOut):
    """A client with its secret: shown only in this answer, store it now."""

    client_secret: str


class ClientIn(BaseModel):
    """A client to create: an agency client names its agency (by id or exact name)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "agency", "agency_name": "市林业局", "label": "林业局系统"}],
            "not": {"required": ["agency_id", "agency_name"]},
        },
    )

    role: Role
    agency_id: uuid.UUID | None = None
    agency_name: Line | None = Field(default=None, max_length=120)
    label: Line = Field(default="", max_length=120)

    @model_validator(mode="after")
    def _one_agency_reference(self) -> ClientIn:
        if {"agency_id", "agency_name"} <= self.model_fields_set:
            raise ValueError("give agency_id or agency_name, not both")
        return self


def client_out(client: ApiClient, agency_name: str | None) -> ClientOut:
    """Render a client for the API."""
    return ClientOut(
        client_id=client.client_id,
        role=client.role,
        agency_id=client.agency_id,
        agency_name=agency_name,
        label=client.label,
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        revoked_at=client.revoked_at,
        last_used_at=client.last_used_at,
    )


async def _with_secret(session: AsyncSession, issued: auth_store.ClientSecret) -> JSONResponse:
    name = await auth_store.agency_name(session, issued.client)
    out = ClientWithSecret(
        **client_out(issued.client, name).model_dump(), client_secret=issued.secret
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers=NO_STORE)


def _api_error(exc: auth_store.ClientError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


@router.get("/v1/clients", tags=["clients"])
async def clients(session: SessionDep, principal: PrincipalDep) -> list[ClientOut]:
    """List every API client (office only)."""
    require_office(principal)
    return [client_out(c, name) for c, name in await auth_store.list_clients(session)]


@router.post("/v1/clients", tags=["clients"], status_code=201, response_model=ClientWithSecret)
async def create_client(
    body: ClientIn, request: Request, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    """Create a client and show its secret once (office only)."""
    require_office(principal)
    now = request.app.state.service.wall_clock.now()
    try:
        async with session.begin():
            agency = None
            if body.role == "agency" or body.agency_id or body.agency_name:
                agency = await auth_store.resolve_agency(
                    session, agency_id=body.agency_id, agency_name=body.agency_name
                )
            issued = await auth_store.create_client(
                session, role=body.role, agency=agency, label=body.label, now=now
            )
            response = await _with_secret(session, issued)
    except auth_store.ClientError as exc:
        raise _api_error(exc) from None
    log.info(
        "client %s (%s) created by %s", issued.client.client_id, body.role, principal.client_id
    )
    return response


@router.get("/v1/clients/{client_id}", tags=["clients"])
async def client(client_id: ClientId, session: SessionDep, principal: PrincipalDep) -> ClientOut:
    """Show one client (office only)."""
    require_office(principal)
    try:
        found = await auth_store.get_client(session, client_id)
    except auth_store.ClientError as exc:
        raise _api_error(exc) from None
    return client_out(found, await auth_store.agency_name(session, found))


@router.post(
    "/v1/clients/{client_id}/rotate",
    tags=["clients"],
    status_code=201,
    responses=error_responses(409),
    response_model=ClientWithSecret,
)
async def rotate_client(
    client_id: ClientId, request: Request, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    """Give a client a new secret, shown once; the old one stops working (office only)."""
    require_office(principal)
    try:
        async with session.begin():
            issued = await auth_store.rotate_secret(
                session, client_id, request.app.state.service.wall_clock.now()
            )
            response = await _with_secret(session, issued)
    except auth_store.ClientError as exc:
        raise _api_error(exc) from None
    request.app.state.service.relay.wake()  # the old secret's tokens: refused everywhere
    log.info("client %s secret rotated by %s", client_id, principal.client_id)
    return response


@router.post(
    "/v1/clients/{client_id}/revoke",
    tags=["clients"],
    responses=error_responses(404, 409),
)
async def revoke_client(
    client_id: ClientId, request: Request, session: SessionDep, principal: PrincipalDep
) -> ClientOut:
    """Revoke a client: no new tokens, and the tokens it holds are refused by every service
    within seconds (401 token_revoked). The last active office client cannot be revoked (409
    last_office_client) (office only)."""
    require_office(principal)
    try:
        async with session.begin():
            revoked = await auth_store.revoke_client(
                session, client_id, request.app.state.service.wall_clock.now()
            )
            name = await auth_store.agency_name(session, revoked)
    except auth_store.ClientError as exc:
        raise _api_error(exc) from None
    request.app.state.service.relay.wake()  # its tokens: refused everywhere within seconds
    log.info("client %s revoked by %s", client_id, principal.client_id)
    return client_out(revoked, name)
