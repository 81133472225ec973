"""Personal accounts' pure rules: usernames, the password rule, the lockout, TOTP codes and
their window, and password hashing (argon2id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
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
from registry.domain.client_secrets import hash_secret, secret_matches

NOW = datetime(2024, 9, 2, 1, 0, 7, tzinfo=UTC)


def test_usernames_are_lower_case_words_of_3_to_32_characters() -> None:
    assert check_username(" Lin.Forest ") == "lin.forest"
    assert subject("lin.forest") == "person:lin.forest"
    for bad in ("ab", "1abc", "a" * 33, "lin forest", "林小森", "lin@forest", ""):
        with pytest.raises(AccountError) as refused:
            check_username(bad)
        assert refused.value.code == "invalid_username"


def test_a_new_password_must_be_long_and_new_and_not_name_the_user() -> None:
    check_new_password("correct horse battery", username="lin.forest")
    for bad, current in (
        ("short", None),
        ("x" * 257, None),
        ("my-lin.forest-pw", None),
        ("same old password", "same old password"),
    ):
        with pytest.raises(AccountError) as refused:
            check_new_password(bad, username="lin.forest", current=current)
        assert refused.value.code == "weak_password"
        assert refused.value.status == 422


def test_one_time_passwords_are_long_and_different() -> None:
    made = {new_one_time_password() for _ in range(50)}
    assert len(made) == 50
    assert all(len(p) >= 16 for p in made)


def test_five_failures_in_a_row_lock_for_fifteen_minutes_and_a_success_forgets() -> None:
    policy = LockoutPolicy(failures=5, lock=timedelta(minutes=15))
    attempts = Attempts(0, None)
    for _ in range(4):
        attempts = attempts.failed(NOW, policy)
        assert attempts.locked(NOW) is None
    attempts = attempts.failed(NOW, policy)
    assert attempts.locked(NOW) == timedelta(minutes=15)
    assert attempts.locked(NOW + timedelta(minutes=15)) is None
    # One more failure after the lock ran out locks again at once.
    later = NOW + timedelta(minutes=16)
    again = attempts.failed(later, policy)
    assert again.locked(later) == timedelta(minutes=15)
    assert Attempts.succeeded() == Attempts(0, None)


def test_a_totp_code_is_accepted_one_step_either_side_and_only_once() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    now_code = totp.at(NOW)
    step = totp_step(secret, now_code, NOW)
    assert step == totp.timecode(NOW)
    # The phone's clock 30 s behind or ahead still works; 60 s does not.
    assert totp_step(secret, totp.at(NOW - timedelta(seconds=30)), NOW) == step - 1
    assert totp_step(secret, totp.at(NOW + timedelta(seconds=30)), NOW) == step + 1
    assert totp_step(secret, totp.at(NOW - timedelta(seconds=60)), NOW) is None
    assert totp_step(secret, totp.at(NOW + timedelta(seconds=90)), NOW) is None
    # A code already used (or an older one) is refused: a code works once.
    assert totp_step(secret, now_code, NOW, last_step=step) is None
    assert totp_step(secret, totp.at(NOW - timedelta(seconds=30)), NOW, last_step=step) is None
    # Spaces are allowed, other shapes are not.
    assert totp_step(secret, f"{now_code[:3]} {now_code[3:]}", NOW) == step
    for bad in ("", "12345", "1234567", "abcdef"):
        assert totp_step(secret, bad, NOW) is None


def test_the_otpauth_uri_names_the_issuer_and_the_user() -> None:
    secret = new_totp_secret()
    uri = otpauth_uri(secret, "lin.forest")
    assert uri.startswith("otpauth://totp/")
    assert "lin.forest" in uri and f"secret={secret}" in uri and "issuer=Duban" in uri


async def test_passwords_are_hashed_with_argon2id_and_checked() -> None:
    hashed = await hash_secret("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert await secret_matches(hashed, "correct horse battery")
    assert not await secret_matches(hashed, "correct horse batterY")
