"""Request and response models of personal accounts and sessions (registry.api.accounts,
registry.api.sessions)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from duban_shared.auth import Role
from duban_shared.inputs import Line, StrictBool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.domain.accounts import MAX_PASSWORD_LENGTH, USERNAME_PATTERN

Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
TotpCode = Annotated[
    str, Field(min_length=6, max_length=8, pattern=r"^[0-9 ]+$", examples=["492039"])
]


class AccountIn(BaseModel):
    """An account to create (office only): agency staff name their agency (id or exact name)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "lin.forest",
                    "display_name": "林小森",
                    "role": "agency",
                    "agency_name": "市林业局",
                }
            ],
            "not": {"required": ["agency_id", "agency_name"]},
        },
    )

    username: str = Field(
        min_length=3,
        max_length=32,
        pattern=USERNAME_PATTERN,
        description="3 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter.",
    )
    display_name: Line = Field(min_length=1, max_length=60, description="The person's name.")
    role: Role
    agency_id: uuid.UUID | None = None
    agency_name: Line | None = Field(default=None, max_length=120)

    @model_validator(mode="after")
    def _one_agency_reference(self) -> AccountIn:
        if {"agency_id", "agency_name"} <= self.model_fields_set:
            raise ValueError("give agency_id or agency_name, not both")
        return self


class AccountOut(BaseModel):
    """A personal account (never its password or TOTP secret)."""

    username: str
    display_name: str
    role: str
    agency_id: uuid.UUID | None
    agency_name: str | None
    disabled: bool
    must_change_password: bool = Field(description="True until a one-time password is replaced.")
    totp: bool = Field(description="TOTP (an authenticator app's code) is required to log in.")
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


class AccountWithPassword(AccountOut):
    """A new or reset account with its one-time password: shown once, changed at first login."""

    one_time_password: str


class ResetIn(BaseModel):
    """A password reset; `clear_totp` also forgets the TOTP secret (a lost phone)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"clear_totp": False}]}
    )

    clear_totp: StrictBool = False


class SessionIn(BaseModel):
    """A person's login: username and password, the TOTP code when enrolled, and a new password
    when the password is a one-time password (409 password_change_required without it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "lin.forest", "password": "correct horse"}]},
    )

    username: str = Field(min_length=1, max_length=64)
    password: Password
    totp: TotpCode | None = None
    new_password: Password | None = None


class SessionOut(BaseModel):
    """A person's session: an access token (RFC 9068 JWT with the `person` claim)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int = Field(description="Seconds the session lasts (a working day).")
    username: str
    display_name: str
    role: str
    agency_id: uuid.UUID | None


class PasswordChangeIn(BaseModel):
    """A person changes their own password (the current one proves it is them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"current_password": "old secret 1", "new_password": "new secret 2"}]
        },
    )

    current_password: Password
    new_password: Password


class TotpStartOut(BaseModel):
    """A TOTP secret to add to an authenticator app; confirm it with a code to turn TOTP on."""

    secret: str = Field(description="Base32, for typing into the app.")
    otpauth_uri: str = Field(description="otpauth://totp/... for a QR code.")


class TotpConfirmIn(BaseModel):
    """The first code of the authenticator app, which turns TOTP on."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "492039"}]})

    code: TotpCode


class TotpStopIn(BaseModel):
    """The password, to turn TOTP off."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"password": "x"}]})

    password: Password
