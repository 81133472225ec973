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
