"""API clients in the database: create, find, rotate, revoke, authenticate. The functions
take a session and do not commit; the use cases (use_cases.clients) own the transaction and
queue the revocations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from duban_shared.auth import OFFICE_ROLES, Role
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.agency_names import canonical_agency_name
from registry.domain.client_secrets import (
    MAX_CLIENT_ID_LENGTH,
    MAX_SECRET_LENGTH,
    hash_secret,
    needs_rehash,
    new_client_id,
    new_secret,
    secret_matches,
    waste_a_check,
)
from registry.domain.errors import ClientError
from registry.store.auth_models import ApiClient
from registry.store.models import Agency

ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True)
class ClientSecret:
    """A client with its new secret: the only moment the secret is known."""

    client: ApiClient
    secret: str


async def resolve_agency(
    session: AsyncSession, *, agency_id: uuid.UUID | None = None, agency_name: str | None = None
) -> Agency:
    """Find an agency by id or by exact canonical name; ClientError unknown_agency if none."""
    if agency_id is not None:
        agency = await session.get(Agency, agency_id)
        if agency is None:
            raise ClientError(
                422,
                "unknown_agency",
                f"No agency has id {agency_id}; find ids with GET /v1/agencies?name=... on the "
                "registry, or give the agency's name.",
            )
        return agency
    if not agency_name:
        raise ClientError(422, "agency_required", "Give an agency id or an agency name.")
    name = canonical_agency_name(agency_name)
    agency = (await session.exec(select(Agency).where(Agency.name == name))).first()
    if agency is not None:
        return agency
    similar = (
        await session.exec(
            select(Agency.name)
            .where(col(Agency.name).contains(name))
            .order_by(col(Agency.name))
            .limit(5)
        )
    ).all()
    hint = f" Did you mean: {', '.join(similar)}?" if similar else ""
    raise ClientError(
        422,
        "unknown_agency",
        f"No agency is named '{name}' (names are exact, as in the imported plan).{hint} "
        "List agencies with GET /v1/agencies?name=... on the registry.",
    )


async def create_client(
    session: AsyncSession, *, role: Role, agency: Agency | None, label: str, now: datetime
) -> ClientSecret:
    """Register a client; agency clients need an agency, office clients must have none."""
    if role not in ROLES:
        raise ClientError(
            422, "invalid_role", f"Role '{role}' is unknown; use one of {', '.join(ROLES)}."
        )
    if role == "agency" and agency is None:
        raise ClientError(
            422, "agency_required", "An agency client needs the agency it reports for."
        )
    if role != "agency" and agency is not None:
        raise ClientError(
            422,
            "agency_not_allowed",
            f"A {role} client acts for the coordinating office, not for one agency; "
            "leave the agency out.",
        )
    secret = new_secret()
    client = ApiClient(
        client_id=new_client_id(role),
        secret_hash=await hash_secret(secret),
        role=role,
        agency_id=agency.id if agency is not None else None,
        label=label,
        created_at=now,
    )
    session.add(client)
    await session.flush()
    return ClientSecret(client, secret)


async def get_client(session: AsyncSession, client_id: str) -> ApiClient:
    """Return a client by id; ClientError unknown_client if there is none."""
    client = (await session.exec(select(ApiClient).where(ApiClient.client_id == client_id))).first()
    if client is None:
        raise ClientError(
            404,
            "unknown_client",
            f"No client '{client_id}'; list clients with `duban-registry list-clients` or "
            "GET /v1/clients.",
        )
    return client


async def rotate_secret(session: AsyncSession, client_id: str, now: datetime) -> ClientSecret:
    """Give a client a new secret; the old one stops working at once."""
    client = await get_client(session, client_id)
    if client.revoked_at is not None:
        raise ClientError(
            409,
            "client_revoked",
            f"Client '{client_id}' is revoked; create a new client instead of rotating it.",
        )
    secret = new_secret()
    client.secret_hash = await hash_secret(secret)
    client.rotated_at = now
    session.add(client)
    await session.flush()
    return ClientSecret(client, secret)


async def revoke_client(
    session: AsyncSession, client_id: str, now: datetime
) -> tuple[ApiClient, bool]:
    """Revoke a client (idempotent): it gets no new tokens. Tell whether it was active.

    The last active office client (coordinator or operator) cannot be revoked (409
    last_office_client): nobody could manage clients afterwards but through the CLI.
    """
    client = await get_client(session, client_id)
    if client.revoked_at is None and client.role in OFFICE_ROLES:
        # Lock the active office clients (PostgreSQL), so that two revocations at once of the
        # last two cannot both see the other one still active.
        others = (
            await session.exec(
                select(ApiClient.client_id)
                .where(
                    col(ApiClient.role).in_(sorted(OFFICE_ROLES)),
                    col(ApiClient.revoked_at).is_(None),
                    ApiClient.client_id != client_id,
                )
                .with_for_update()
            )
        ).all()
        if not others:
            raise ClientError(
                409,
                "last_office_client",
                f"Client '{client_id}' is the last active office client (coordinator or "
                "operator); create another office client first (POST /v1/clients or "
                "`duban-registry create-client --role coordinator`), then revoke this one.",
            )
    if client.revoked_at is not None:
        return client, False
    client.revoked_at = now
    session.add(client)
    await session.flush()
    return client, True


async def list_clients(session: AsyncSession) -> list[tuple[ApiClient, str | None]]:
    """Return every client with its agency's name, oldest first."""
    rows = await session.exec(
        select(ApiClient, Agency.name)
        .outerjoin(Agency, col(ApiClient.agency_id) == col(Agency.id))
        .order_by(col(ApiClient.created_at), col(ApiClient.client_id))
    )
    return [(client, name) for client, name in rows.all()]


async def agency_name(session: AsyncSession, client: ApiClient) -> str | None:
    """Return the name of a client's agency, if it has one."""
    if client.agency_id is None:
        return None
    agency = await session.get(Agency, client.agency_id)
    return agency.name if agency is not None else None


@dataclass(frozen=True)
class Authentication:
    """The outcome of checking client credentials; `reason` is for logs, never for callers."""

    client: ApiClient | None
    reason: str


async def authenticate(
    session: AsyncSession, client_id: str, secret: str, now: datetime
) -> Authentication:
    """Check a client's credentials; on success record last_used_at (and upgrade the hash).

    An unknown client costs the same argon2 work as a known one, so timing does not tell
    which client ids exist.
    """
    if len(client_id) > MAX_CLIENT_ID_LENGTH or len(secret) > MAX_SECRET_LENGTH:
        return Authentication(None, "client id or secret too long")
    client = (await session.exec(select(ApiClient).where(ApiClient.client_id == client_id))).first()
    if client is None:
        await waste_a_check(secret)
        return Authentication(None, "unknown client")
    if not await secret_matches(client.secret_hash, secret):
        return Authentication(None, "wrong secret")
    if client.revoked_at is not None:
        return Authentication(None, "client revoked")
    if needs_rehash(client.secret_hash):
        client.secret_hash = await hash_secret(secret)
    client.last_used_at = now
    session.add(client)
    return Authentication(client, "ok")
