"""API clients: create, rotate, revoke (the tokens they hold are refused everywhere through a
revocation on the outbox), authenticate, and the logout of one token."""

from __future__ import annotations

import uuid

from duban_shared.auth import Role

from registry.store import clients as store
from registry.store.auth_models import ApiClient
from registry.use_cases.context import Context
from registry.use_cases.publishing import revoke_client_tokens, revoke_token


def _state(client: ApiClient) -> dict[str, object]:
    """What the audit trail shows of a client (never its secret)."""
    return {
        "role": client.role,
        "agency_id": client.agency_id,
        "label": client.label,
        "rotated_at": client.rotated_at,
        "revoked_at": client.revoked_at,
    }


async def create_client(
    ctx: Context,
    *,
    role: Role,
    label: str,
    agency_id: uuid.UUID | None = None,
    agency_name: str | None = None,
    agency_required: bool = False,
) -> tuple[store.ClientSecret, str | None]:
    """Create a client for an agency (by id or exact name) or for the office; return it with
    its secret (shown once) and its agency's name."""
    async with ctx.transaction(wall=True) as now:
        agency = None
        if agency_required or agency_id is not None or agency_name:
            agency = await store.resolve_agency(
                ctx.session, agency_id=agency_id, agency_name=agency_name
            )
        issued = await store.create_client(
            ctx.session, role=role, agency=agency, label=label, now=now
        )
        ctx.audit("client.created", issued.client.client_id, now, after=_state(issued.client))
    return issued, agency.name if agency is not None else None


async def rotate_client(ctx: Context, client_id: str) -> tuple[store.ClientSecret, str | None]:
    """Give a client a new secret (shown once): the old one stops working at once, and the
    tokens issued with it are refused everywhere within seconds."""
    async with ctx.transaction(wall=True) as now:
        issued = await store.rotate_secret(ctx.session, client_id, now)
        revoke_client_tokens(ctx.session, client_id, "rotated", now)
        ctx.audit("client.rotated", client_id, now, after=_state(issued.client))
        return issued, await store.agency_name(ctx.session, issued.client)


async def revoke_client(ctx: Context, client_id: str) -> tuple[ApiClient, str | None]:
    """Revoke a client (idempotent): no new tokens, and the tokens it holds are refused
    everywhere within seconds. The last active office client cannot be revoked (409)."""
    async with ctx.transaction(wall=True) as now:
        client, newly = await store.revoke_client(ctx.session, client_id, now)
        if newly:
            revoke_client_tokens(ctx.session, client_id, "revoked", now)
            ctx.audit("client.revoked", client_id, now, after=_state(client))
        return client, await store.agency_name(ctx.session, client)


async def list_clients(ctx: Context) -> list[tuple[ApiClient, str | None]]:
    """Every client with its agency's name, oldest first."""
    return await store.list_clients(ctx.session)


async def authenticate(ctx: Context, client_id: str, secret: str) -> store.Authentication:
    """Check a client's credentials; on success record when it was last used."""
    async with ctx.transaction(wall=True) as now:
        return await store.authenticate(ctx.session, client_id, secret, now)


async def log_out(ctx: Context, client_id: str, jti: str, exp: float) -> None:
    """Refuse one token everywhere until it expires (RFC 7009 revocation, a logout)."""
    async with ctx.transaction(wall=True) as now:
        revoke_token(ctx.session, client_id, jti, exp, now)
