"""Personal accounts: the office lists, creates, disables, enables and resets them (the same as
the CLI's `create-account`); every change is in the audit trail. A one-time password is shown
once, in the answer that made it."""

from __future__ import annotations

import logging
from typing import Annotated

from duban_shared.api import error_responses
from duban_shared.auth import PrincipalDep, require_office
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from registry.api.account_schemas import AccountIn, AccountOut, AccountWithPassword, ResetIn
from registry.api.deps import ActingContextDep
from registry.api.oauth import NO_STORE
from registry.domain.accounts import USERNAME_PATTERN
from registry.store.auth_models import Account
from registry.use_cases import accounts as use_cases

router = APIRouter(tags=["accounts"])
log = logging.getLogger(__name__)

Username = Annotated[
    str,
    Path(
        min_length=3,
        max_length=32,
        pattern=USERNAME_PATTERN,
        description="An account's username, e.g. lin.forest",
    ),
]


def account_out(account: Account, agency_name: str | None) -> AccountOut:
    """Render an account for the API."""
    return AccountOut(
        username=account.username,
        display_name=account.display_name,
        role=account.role,
        agency_id=account.agency_id,
        agency_name=agency_name,
        disabled=account.disabled_at is not None,
        must_change_password=account.must_change_password,
        totp=account.totp_secret is not None,
        locked_until=account.locked_until,
        created_at=account.created_at,
        password_changed_at=account.password_changed_at,
        last_login_at=account.last_login_at,
    )


def _with_password(made: use_cases.NewAccount, status: int) -> JSONResponse:
    assert made.one_time_password is not None
    out = AccountWithPassword(
        **account_out(made.account, made.agency_name).model_dump(),
        one_time_password=made.one_time_password,
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=status, headers=NO_STORE)


@router.get("/v1/accounts", responses=error_responses(401, 403))
async def accounts(ctx: ActingContextDep, principal: PrincipalDep) -> list[AccountOut]:
    """List every personal account (office only)."""
    require_office(principal)
    return [account_out(a, name) for a, name in await use_cases.list_accounts(ctx)]


@router.post(
    "/v1/accounts",
    status_code=201,
    response_model=AccountWithPassword,
    responses=error_responses(401, 403, 409, 422),
)
async def create_account(
    body: AccountIn, ctx: ActingContextDep, principal: PrincipalDep
) -> JSONResponse:
    """Create an account with a one-time password, shown once, which the person replaces at
    the first login (office only; 409 username_taken, 422 unknown_agency)."""
    require_office(principal)
    made = await use_cases.create_account(
        ctx,
        username=body.username,
        display_name=body.display_name,
        role=body.role,
        agency_id=body.agency_id,
        agency_name=body.agency_name,
    )
    log.info("account %s (%s) created by %s", body.username, body.role, principal.client_id)
    return _with_password(made, 201)


@router.get("/v1/accounts/{username}", responses=error_responses(401, 403, 404))
async def account(username: Username, ctx: ActingContextDep, principal: PrincipalDep) -> AccountOut:
    """Show one account (office only)."""
    require_office(principal)
    return account_out(*await use_cases.account_of(ctx, username))


@router.post("/v1/accounts/{username}/disable", responses=error_responses(401, 403, 404))
async def disable(username: Username, ctx: ActingContextDep, principal: PrincipalDep) -> AccountOut:
    """Disable an account: it cannot log in, and its sessions are refused by every service
    within seconds (401 token_revoked) (office only; idempotent)."""
    require_office(principal)
    log.info("account %s disabled by %s", username, principal.client_id)
    return account_out(*await use_cases.set_disabled(ctx, username, True))


@router.post("/v1/accounts/{username}/enable", responses=error_responses(401, 403, 404))
async def enable(username: Username, ctx: ActingContextDep, principal: PrincipalDep) -> AccountOut:
    """Enable a disabled account again (and unlock it); its old sessions stay refused (office
    only; idempotent)."""
    require_office(principal)
    log.info("account %s enabled by %s", username, principal.client_id)
    return account_out(*await use_cases.set_disabled(ctx, username, False))


@router.post(
    "/v1/accounts/{username}/reset-password",
    status_code=201,
    response_model=AccountWithPassword,
    responses=error_responses(401, 403, 404, 422),
)
async def reset_password(
    username: Username, body: ResetIn, ctx: ActingContextDep, principal: PrincipalDep
) -> JSONResponse:
    """Give an account a one-time password (shown once; changed at the next login), end its
    sessions and unlock it; `clear_totp` also forgets its TOTP (office only)."""
    require_office(principal)
    made = await use_cases.reset_password(ctx, username, clear_totp=body.clear_totp)
    log.info("account %s password reset by %s", username, principal.client_id)
    return _with_password(made, 201)
