"""People log in: `POST /v1/sessions` trades a username, a password and (when enrolled) a TOTP
code for a session token; `/v1/me` is the person's own account (password, TOTP).

Why a route of our own rather than the OAuth2 password grant at `/oauth/token`: the password
grant is deprecated (OAuth 2.0 Security BCP, RFC 9700 section 2.4) and left out of OAuth 2.1; a
person's login has answers a machine's has not (a TOTP code wanted, a one-time password to
replace, a locked account), which fit our error body with a code each, not RFC 6749's fixed
error names; and the token endpoint stays what it is, for machines only. Logging out is the
same for both: `POST /oauth/revoke`. An OIDC provider (single sign-on) would be one more way
to open a session: a callback route that maps the provider's verified identity to an account
and issues the same token (see docs/architecture.md, Personal accounts).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from duban_shared import attributes
from duban_shared.api import ErrorBody, error_responses
from duban_shared.auth import Principal, PrincipalDep
from duban_shared.ratelimit import retry_after_header
from duban_shared.throttle import address_key, client_key
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace

from registry.api.account_schemas import (
    AccountOut,
    PasswordChangeIn,
    SessionIn,
    SessionOut,
    TotpConfirmIn,
    TotpStartOut,
    TotpStopIn,
)
from registry.api.accounts import account_out
from registry.api.deps import ContextDep, ServiceDep
from registry.api.oauth import NO_STORE
from registry.domain.accounts import AccountError, subject
from registry.store.auth_models import Account
from registry.use_cases import accounts as use_cases
from registry.use_cases.context import Context

router = APIRouter(tags=["sessions"])
log = logging.getLogger(__name__)

_LOGIN_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "`invalid_credentials` (unknown username or wrong password: the same "
        "answer), `totp_required` (send `totp`), `invalid_totp` (wrong or already used code)",
    },
    403: {"model": ErrorBody, "description": "`account_disabled`"},
    409: {
        "model": ErrorBody,
        "description": "`password_change_required`: the password is a one-time password; send "
        "it again with `new_password`",
    },
    422: {
        "model": ErrorBody,
        "description": "`invalid_request`; `weak_password` (the new password)",
    },
    429: {
        "model": ErrorBody,
        "description": "`too_many_attempts`: the account is locked after repeated failures, "
        "or this username or address must wait; retry after Retry-After",
    },
}


async def _session(service: ServiceDep, ctx: Context, account: Account) -> JSONResponse:
    issued = await service.issuer.issue_person(account, use_cases.session_lifetime(ctx))
    body = SessionOut(
        access_token=issued.token,
        expires_in=issued.expires_in,
        username=account.username,
        display_name=account.display_name,
        role=account.role,
        agency_id=account.agency_id,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.post("/v1/sessions", status_code=201, response_model=SessionOut, responses=_LOGIN_ANSWERS)
async def log_in(
    body: SessionIn, request: Request, ctx: ContextDep, service: ServiceDep
) -> JSONResponse:
    """Log a person in: a session token for DUBAN_REGISTRY_SESSION_HOURS (10), with the
    `person` claim. Wrong passwords or codes in a row lock the account
    (DUBAN_REGISTRY_LOCKOUT_FAILURES, 5) for DUBAN_REGISTRY_LOCKOUT_MINUTES (15); each
    username and address is also throttled like the token endpoint. Log out with
    POST /oauth/revoke."""
    username = body.username.strip().lower()
    trace.get_current_span().set_attribute(attributes.PERSON, username[:64])
    keys = (
        client_key(subject(username)),
        address_key(request.client.host if request.client else None),
    )
    wait = service.throttle.wait(*keys)
    if wait > 0:
        service.metrics.logins.add(1, {attributes.OUTCOME: "too_many_attempts"})
        return _refused(
            use_cases.LoginRefused(
                429, "too_many_attempts", "登录失败次数过多,请稍后再试。", int(wait) + 1
            )
        )
    attempt = use_cases.LoginAttempt(username, body.password, body.totp, body.new_password)
    try:
        account = await use_cases.log_in(ctx, attempt)
    except use_cases.LoginRefused as exc:
        if exc.code in ("invalid_credentials", "invalid_totp"):
            service.throttle.failed(*keys)
        log.warning("login of %r refused: %s", username[:64], exc.code)
        service.metrics.logins.add(1, {attributes.OUTCOME: exc.code})
        return _refused(exc)
    service.throttle.succeeded(keys[0])
    service.metrics.logins.add(1, {attributes.OUTCOME: "ok"})
    log.info("person %s (%s) logged in", account.username, account.role)
    return await _session(service, ctx, account)


def _refused(exc: use_cases.LoginRefused) -> JSONResponse:
    body = ErrorBody(code=exc.code, message=exc.message)
    headers = dict(NO_STORE)
    if exc.retry_after:
        headers.update(retry_after_header(exc.retry_after))
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status, headers=headers)


def person(principal: PrincipalDep) -> Principal:
    """The caller, who must be a person (a session token), not a machine client."""
    if principal.person is None:
        raise AccountError(
            403,
            "person_only",
            "Only a person's session (POST /v1/sessions) has an account; an API client has none.",
        )
    return principal


PersonDep = Annotated[Principal, Depends(person)]


@router.get("/v1/me", responses=error_responses(401, 403, 404))
async def me(ctx: ContextDep, caller: PersonDep) -> AccountOut:
    """The caller's own account."""
    assert caller.person is not None
    return account_out(*await use_cases.account_of(ctx, caller.person))


@router.post(
    "/v1/me/password",
    status_code=201,
    response_model=SessionOut,
    responses=error_responses(401, 403, 404, 422),
)
async def change_password(
    body: PasswordChangeIn, ctx: ContextDep, service: ServiceDep, caller: PersonDep
) -> JSONResponse:
    """Change the caller's password (403 wrong_password when the current one is wrong; 422
    weak_password): every session begun before ends, and the answer is a new session."""
    assert caller.person is not None
    account = await use_cases.change_password(
        ctx, caller.person, body.current_password, body.new_password
    )
    log.info("person %s changed their password", account.username)
    return await _session(service, ctx, account)


@router.post("/v1/me/totp", responses=error_responses(401, 403, 404))
async def start_totp(ctx: ContextDep, caller: PersonDep) -> JSONResponse:
    """Start enrolling an authenticator app: a new secret and its otpauth URI, effective once
    a code of it is confirmed (POST /v1/me/totp/confirm)."""
    assert caller.person is not None
    enrolment = await use_cases.start_totp(ctx, caller.person)
    out = TotpStartOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)
    return JSONResponse(out.model_dump(), headers=NO_STORE)


@router.post("/v1/me/totp/confirm", responses=error_responses(401, 403, 404, 409, 422))
async def confirm_totp(body: TotpConfirmIn, ctx: ContextDep, caller: PersonDep) -> AccountOut:
    """Turn TOTP on with the app's current code (422 invalid_totp; 409 totp_not_started)."""
    assert caller.person is not None
    await use_cases.confirm_totp(ctx, caller.person, body.code)
    return account_out(*await use_cases.account_of(ctx, caller.person))


@router.post("/v1/me/totp/disable", responses=error_responses(401, 403, 404, 422))
async def stop_totp(body: TotpStopIn, ctx: ContextDep, caller: PersonDep) -> AccountOut:
    """Turn TOTP off (the password again: 403 wrong_password)."""
    assert caller.person is not None
    await use_cases.stop_totp(ctx, caller.person, body.password)
    return account_out(*await use_cases.account_of(ctx, caller.person))
