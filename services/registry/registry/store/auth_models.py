"""Registry tables of the authorization server: API clients and token signing keys.

On RegistryBase.metadata with the tables of registry.store.models; whoever needs the whole
metadata (alembic) imports both modules.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from duban_shared.db import utc_column
from sqlalchemy import JSON, CheckConstraint, Text
from sqlmodel import Field

from registry.store.models import RegistryBase


class ApiClient(RegistryBase, table=True):
    """An OAuth2 client (client credentials): an agency system, the office or an operator.

    Only an argon2id hash of the secret is stored; the secret is shown once, when it is made.
    """

    __tablename__ = "api_client"
    __table_args__ = (
        CheckConstraint("role IN ('agency', 'coordinator', 'operator')", name="ck_api_client_role"),
        CheckConstraint("(role = 'agency') = (agency_id IS NOT NULL)", name="ck_api_client_agency"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    client_id: str = Field(max_length=64, unique=True, index=True)
    secret_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    agency_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id", index=True)
    label: str = Field(default="", max_length=120)
    created_at: datetime = utc_column()
    rotated_at: datetime | None = utc_column(nullable=True)
    revoked_at: datetime | None = utc_column(nullable=True)
    last_used_at: datetime | None = utc_column(nullable=True)


class SigningKey(RegistryBase, table=True):
    """A key the registry signs access tokens with; the newest unretired one signs.

    Retired keys stay published in the JWKS for a while so tokens they signed still verify.
    """

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    private_key_pem: str = Field(sa_type=Text)
    public_jwk: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = utc_column()
    retired_at: datetime | None = utc_column(nullable=True, index=True)


class Account(RegistryBase, table=True):
    """A person's account: office staff (coordinator, operator) or an agency's staff.

    Only an argon2id hash of the password is stored. `sessions_from` is when the account's
    sessions last had to end (created, password set or reset, enabled again): a token issued
    before it is refused (its `secret_at`). The TOTP secret, once confirmed, is as sensitive as
    the database holding it (like the signing keys).
    """

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("role IN ('agency', 'coordinator', 'operator')", name="ck_account_role"),
        CheckConstraint("(role = 'agency') = (agency_id IS NOT NULL)", name="ck_account_agency"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=32, unique=True, index=True)
    display_name: str = Field(max_length=60)
    role: str = Field(max_length=16)
    agency_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id", index=True)
    password_hash: str = Field(max_length=255)
    must_change_password: bool = Field(default=False)
    password_changed_at: datetime = utc_column()
    sessions_from: datetime = utc_column()
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_pending_secret: str | None = Field(default=None, max_length=64)
    totp_last_step: int | None = Field(default=None)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = utc_column(nullable=True)
    disabled_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    last_login_at: datetime | None = utc_column(nullable=True)
