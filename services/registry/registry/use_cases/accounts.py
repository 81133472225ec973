"""Personal accounts: the office creates, lists, disables, enables and resets them (audited);
a person logs in, changes their password and enrols TOTP.

Ending sessions reuses the revocations of API clients, with the account's subject
(`person:<username>`) as the client: disabling revokes every session; enabling, a password
reset or change revoke the sessions begun before (as a secret rotation does), since a token's
`secret_at` is the account's `sessions_from`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from duban_shared.audit import Actor
from duban_shared.auth import Role

from registry.domain.accounts import (
    AccountError,
    Attempts,
    LockoutPolicy,
    check_new_password,
    check_username,
    new_one_time_password,
    new_totp_secret,
    otpauth_uri,
    subject,
    totp_step,
)
from registry.domain.client_secrets import hash_secret, secret_matches, waste_a_check
from registry.store import accounts as store
from registry.store.auth_models import Account
from registry.store.clients import resolve_agency
from registry.use_cases.context import Context
from registry.use_cases.publishing import revoke_client_tokens

INVALID_CREDENTIALS = "用户名或密码不正确,请核对后重试。"


def _state(account: Account) -> dict[str, object]:
    """What the audit trail shows of an account (never its password or TOTP secret)."""
    return {
        "display_name": account.display_name,
        "role": account.role,
        "agency_id": account.agency_id,
        "disabled_at": account.disabled_at,
        "must_change_password": account.must_change_password,
        "totp": account.totp_secret is not None,
    }


def session_lifetime(ctx: Context) -> timedelta:
    """How long a person's session lasts."""
    return timedelta(hours=ctx.settings.session_hours)


def _end_sessions(
    ctx: Context, account: Account, reason: Literal["revoked", "rotated"], now: datetime
) -> None:
    """Refuse the account's sessions everywhere: all (revoked) or those begun before now."""
    account.sessions_from = now
    revoke_client_tokens(
        ctx.session, subject(account.username), reason, now, lifetime=session_lifetime(ctx)
    )


def _as_actor(account: Account) -> Actor:
    """A person acting on their own account (self-service), for the audit trail."""
    return Actor(subject(account.username), account.role, account.agency_id, account.username)


@dataclass(frozen=True)
class NewAccount:
    """An account with its agency's name, and the one-time password when one was made."""

    account: Account
    agency_name: str | None
    one_time_password: str | None


async def create_account(
    ctx: Context,
    *,
    username: str,
    display_name: str,
    role: Role,
    agency_id: uuid.UUID | None = None,
    agency_name: str | None = None,
    password: str | None = None,
) -> NewAccount:
    """Create an account. Without `password` it gets a one-time password (shown once) that
    must be changed at the first login; with one (the command line) that password."""
    name = check_username(username)
    if role == "agency" and agency_id is None and not agency_name:
        raise AccountError(422, "agency_required", "机构工作人员的账号须指明所属机构。")
    if role != "agency" and (agency_id is not None or agency_name):
        raise AccountError(
            422, "agency_not_allowed", f"{role} 账号属于市督办办公室,不能指定机构;请去掉机构。"
        )
    if password is not None:
        check_new_password(password, username=name)
    one_time = None if password is not None else new_one_time_password()
    async with ctx.transaction(wall=True) as now:
        agency = None
        if role == "agency":
            agency = await resolve_agency(ctx.session, agency_id=agency_id, agency_name=agency_name)
        account = Account(
            username=name,
            display_name=display_name.strip() or name,
            role=role,
            agency_id=agency.id if agency is not None else None,
            password_hash=await hash_secret(password if password is not None else str(one_time)),
            must_change_password=password is None,
            password_changed_at=now,
            sessions_from=now,
            created_at=now,
        )
        await store.add(ctx.session, account)
        ctx.audit("account.created", name, now, after=_state(account))
    return NewAccount(account, agency.name if agency is not None else None, one_time)


async def list_accounts(ctx: Context) -> list[tuple[Account, str | None]]:
    """Every account with its agency's name."""
    return await store.list_all(ctx.session)


async def set_disabled(ctx: Context, username: str, disabled: bool) -> tuple[Account, str | None]:
    """Disable an account (its sessions end everywhere within seconds) or enable it again
    (it logs in anew; the sessions from before stay refused). Idempotent."""
    async with ctx.transaction(wall=True) as now:
        account = await store.get(ctx.session, username)
        if (account.disabled_at is not None) == disabled:
            return account, await store.agency_name(ctx.session, account)
        before = _state(account)
        if disabled:
            account.disabled_at = now
            _end_sessions(ctx, account, "revoked", now)
        else:
            account.disabled_at = None
            account.failed_logins, account.locked_until = 0, None
            _end_sessions(ctx, account, "rotated", now)
        ctx.session.add(account)
        action = "account.disabled" if disabled else "account.enabled"
        ctx.audit(action, account.username, now, before=before, after=_state(account))
        return account, await store.agency_name(ctx.session, account)


async def reset_password(ctx: Context, username: str, *, clear_totp: bool = False) -> NewAccount:
    """Give an account a one-time password (shown once, to be changed at the next login),
    end its sessions, unlock it; with `clear_totp` also forget its TOTP (a lost phone)."""
    one_time = new_one_time_password()
    async with ctx.transaction(wall=True) as now:
        account = await store.get(ctx.session, username)
        before = _state(account)
        account.password_hash = await hash_secret(one_time)
        account.must_change_password = True
        account.password_changed_at = now
        account.failed_logins, account.locked_until = 0, None
        if clear_totp:
            account.totp_secret = account.totp_pending_secret = None
            account.totp_last_step = None
        _end_sessions(ctx, account, "rotated", now)
        ctx.session.add(account)
        ctx.audit("account.password_reset", username, now, before=before, after=_state(account))
        return NewAccount(account, await store.agency_name(ctx.session, account), one_time)


@dataclass(frozen=True)
class LoginAttempt:
    """What a person sends to log in."""

    username: str
    password: str
    totp: str | None = None
    new_password: str | None = None


class LoginRefused(AccountError):
    """A refused login; `retry_after` (seconds) when the account is locked."""

    def __init__(self, status: int, code: str, message: str, retry_after: int = 0) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after


def _locked(wait: timedelta) -> LoginRefused:
    seconds = max(1, int(wait.total_seconds()) + 1)
    minutes = max(1, round(seconds / 60))
    return LoginRefused(
        429,
        "too_many_attempts",
        f"登录失败次数过多,账号已暂时锁定,请在约{minutes}分钟后再试,或请督办办公室重置密码。",
        seconds,
    )


async def log_in(ctx: Context, attempt: LoginAttempt) -> Account:
    """Check a person's password (and TOTP code when enrolled); return the account to issue
    a session for, or raise LoginRefused. Failures are counted (and lock the account) in
    their own committed transaction. A one-time password must be replaced in the same
    request (`new_password`): 409 password_change_required otherwise."""
    policy = LockoutPolicy(
        ctx.settings.lockout_failures, timedelta(minutes=ctx.settings.lockout_minutes)
    )
    refusal: LoginRefused | None = None
    async with ctx.transaction(wall=True) as now:
        account = await store.find(ctx.session, attempt.username.strip().lower(), for_update=True)
        if account is None or len(attempt.password) > 1024:
            await waste_a_check(attempt.password[:1024])
            raise LoginRefused(401, "invalid_credentials", INVALID_CREDENTIALS)
        attempts = Attempts(account.failed_logins, account.locked_until)
        wait = attempts.locked(now)
        if wait is not None:
            raise _locked(wait)
        refusal = await _check(account, attempt, now)
        if refusal is not None and refusal.code in ("invalid_credentials", "invalid_totp"):
            attempts = attempts.failed(now, policy)
            account.failed_logins, account.locked_until = attempts.failures, attempts.locked_until
            ctx.session.add(account)
        elif refusal is None:
            if attempt.new_password is not None and account.must_change_password:
                check_new_password(
                    attempt.new_password, username=account.username, current=attempt.password
                )
                account.password_hash = await hash_secret(attempt.new_password)
                account.must_change_password = False
                account.password_changed_at = now
                _end_sessions(ctx, account, "rotated", now)
                record = replace(ctx, actor=_as_actor(account))
                record.audit("account.password_changed", account.username, now)
            account.failed_logins, account.locked_until = 0, None
            account.last_login_at = now
            ctx.session.add(account)
    if refusal is not None:
        raise refusal
    return account


async def _check(account: Account, attempt: LoginAttempt, now: datetime) -> LoginRefused | None:
    """The first reason to refuse a login with the right account, in order: the password,
    a disabled account, the TOTP code, a one-time password not replaced."""
    if not await secret_matches(account.password_hash, attempt.password):
        return LoginRefused(401, "invalid_credentials", INVALID_CREDENTIALS)
    if account.disabled_at is not None:
        return LoginRefused(403, "account_disabled", "该账号已停用;如需恢复,请联系督办办公室。")
    if account.totp_secret is not None:
        if not attempt.totp:
            return LoginRefused(401, "totp_required", "请填写身份验证器应用中的6位动态验证码。")
        step = totp_step(account.totp_secret, attempt.totp, now, last_step=account.totp_last_step)
        if step is None:
            return LoginRefused(
                401, "invalid_totp", "动态验证码不正确或已使用过,请等待下一个验证码后重试。"
            )
        account.totp_last_step = step
    if account.must_change_password and attempt.new_password is None:
        return LoginRefused(409, "password_change_required", "这是一次性密码,请设置新密码后登录。")
    return None


async def change_password(ctx: Context, username: str, current: str, new: str) -> Account:
    """A person changes their own password: the current one must be right (403
    wrong_password); every session begun before ends (the caller gets a new one)."""
    async with ctx.transaction(wall=True) as now:
        account = await store.get(ctx.session, username)
        if not await secret_matches(account.password_hash, current):
            raise AccountError(403, "wrong_password", "当前密码不正确,请核对后重试。")
        check_new_password(new, username=account.username, current=current)
        account.password_hash = await hash_secret(new)
        account.must_change_password = False
        account.password_changed_at = now
        _end_sessions(ctx, account, "rotated", now)
        ctx.session.add(account)
        record = replace(ctx, actor=_as_actor(account))
        record.audit("account.password_changed", account.username, now)
        return account


@dataclass(frozen=True)
class TotpEnrolment:
    """A TOTP secret waiting for its first code, and the URI an authenticator app reads."""

    secret: str
    otpauth_uri: str


async def start_totp(ctx: Context, username: str) -> TotpEnrolment:
    """Make a new TOTP secret for the account, pending until a code of it is confirmed."""
    async with ctx.transaction(wall=True):
        account = await store.get(ctx.session, username)
        account.totp_pending_secret = new_totp_secret()
        ctx.session.add(account)
        return TotpEnrolment(
            account.totp_pending_secret, otpauth_uri(account.totp_pending_secret, username)
        )


async def confirm_totp(ctx: Context, username: str, code: str) -> Account:
    """Turn TOTP on with the pending secret once a code of it is right (422 invalid_totp)."""
    async with ctx.transaction(wall=True) as now:
        account = await store.get(ctx.session, username)
        if account.totp_pending_secret is None:
            raise AccountError(
                409, "totp_not_started", "请先开始绑定身份验证器(POST /v1/me/totp)。"
            )
        step = totp_step(account.totp_pending_secret, code, now)
        if step is None:
            raise AccountError(422, "invalid_totp", "动态验证码不正确,请核对手机时间后重试。")
        account.totp_secret, account.totp_pending_secret = account.totp_pending_secret, None
        account.totp_last_step = step
        ctx.session.add(account)
        record = replace(ctx, actor=_as_actor(account))
        record.audit("account.totp_enabled", username, now)
        return account


async def stop_totp(ctx: Context, username: str, password: str) -> Account:
    """Turn TOTP off; the password must be right (403 wrong_password)."""
    async with ctx.transaction(wall=True) as now:
        account = await store.get(ctx.session, username)
        if not await secret_matches(account.password_hash, password):
            raise AccountError(403, "wrong_password", "密码不正确,请核对后重试。")
        account.totp_secret = account.totp_pending_secret = None
        account.totp_last_step = None
        ctx.session.add(account)
        record = replace(ctx, actor=_as_actor(account))
        record.audit("account.totp_disabled", username, now)
        return account


async def account_of(ctx: Context, username: str) -> tuple[Account, str | None]:
    """The account of a username with its agency's name (404 unknown_account)."""
    async with ctx.transaction(wall=True):
        account = await store.get(ctx.session, username)
        return account, await store.agency_name(ctx.session, account)
