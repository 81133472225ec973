"""Personal accounts: usernames, the password rule, one-time passwords, the lockout rule and
TOTP codes (RFC 6238, pyotp). Pure: the clock's time is a parameter.

A person's token names the account as its subject, `person:<username>`: the revocations of a
subject (duban_shared.revocations) then refuse a disabled account's sessions, or those older
than its last password change, as they refuse a revoked or rotated client's tokens.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp

from registry.domain.errors import Refusal

SUBJECT_PREFIX = "person:"
USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{2,31}$"
_USERNAME = re.compile(USERNAME_PATTERN)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
TOTP_ISSUER = "Duban 督办"
TOTP_WINDOW = 1
"""Codes of the step before and after the current one are accepted too (clock drift of a
phone: 30 s either way, RFC 6238 section 5.2)."""


class AccountError(Refusal):
    """A refused account operation or login."""


def subject(username: str) -> str:
    """The token subject (and revocation key) of a person's sessions."""
    return SUBJECT_PREFIX + username


def check_username(username: str) -> str:
    """Return the username (lower case) or refuse it: 3 to 32 of a-z, 0-9, '.', '_', '-',
    starting with a letter."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            422,
            "invalid_username",
            "用户名须为3至32个字符:小写字母开头,只含小写字母、数字、点、下划线或连字符。",
        )
    return name


def check_new_password(password: str, *, username: str, current: str | None = None) -> None:
    """Refuse a new password that is too short or too long, names the user, or is the
    current one."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            422, "weak_password", f"新密码至少需要{MIN_PASSWORD_LENGTH}个字符,请换一个更长的密码。"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(422, "weak_password", f"新密码不能超过{MAX_PASSWORD_LENGTH}个字符。")
    if username in password.lower():
        raise AccountError(422, "weak_password", "新密码不能包含用户名,请换一个密码。")
    if current is not None and password == current:
        raise AccountError(422, "weak_password", "新密码不能与当前密码相同。")


def new_one_time_password() -> str:
    """A password for the first login after creation or a reset (must be changed then)."""
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


@dataclass(frozen=True)
class LockoutPolicy:
    """After `failures` wrong passwords or codes in a row, an account is locked for `lock`."""

    failures: int = 5
    lock: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Attempts:
    """An account's failed logins in a row, and until when it is locked."""

    failures: int
    locked_until: datetime | None

    def locked(self, now: datetime) -> timedelta | None:
        """How long the account stays locked from `now`; None when it is not."""
        if self.locked_until is None or self.locked_until <= now:
            return None
        return self.locked_until - now

    def failed(self, now: datetime, policy: LockoutPolicy) -> Attempts:
        """One more failure: the count grows; reaching the policy's number locks the account
        and starts counting again (the next failure after the lock locks again at once)."""
        failures = self.failures + 1
        if failures >= policy.failures:
            return Attempts(policy.failures - 1, now + policy.lock)
        return Attempts(failures, self.locked_until)

    @staticmethod
    def succeeded() -> Attempts:
        """A good login forgets the failures."""
        return Attempts(0, None)


def new_totp_secret() -> str:
    """A TOTP secret (base32, 160 bits) for an authenticator app."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, now: datetime, *, last_step: int | None = None) -> int | None:
    """The time step a TOTP code belongs to, within TOTP_WINDOW steps of `now`; None when the
    code is wrong, or is of a step already used (a code works once: RFC 6238 section 5.2)."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    for offset in range(-TOTP_WINDOW, TOTP_WINDOW + 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        if secrets.compare_digest(totp.at(moment), code):
            step = totp.timecode(moment)
            if last_step is not None and step <= last_step:
                return None
            return step
    return None
