"""API clients: the office lists, creates, rotates and revokes them (the same as the CLI's
`*-client` commands). A secret is shown once, in the answer that made it."""

from __future__ import annotations

import logging
from typing import Annotated

from duban_shared.api import error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import Line
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from registry.api.deps import ActingContextDep
from registry.api.oauth import NO_STORE
from registry.api.schemas import ClientIn, ClientOut, ClientWithSecret
from registry.store import clients as store
from registry.store.auth_models import ApiClient
from registry.use_cases import clients as use_cases

router = APIRouter(tags=["clients"])
log = logging.getLogger(__name__)

ClientId = Annotated[Line, Path(max_length=80, description="A client id, e.g. agency-...")]


def client_out(client: ApiClient, agency_name: str | None) -> ClientOut:
    """Render a client for the API."""
    return ClientOut(
        client_id=client.client_id,
        role=client.role,
        agency_id=client.agency_id,
        agency_name=agency_name,
        label=client.label,
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        revoked_at=client.revoked_at,
        last_used_at=client.last_used_at,
    )


def _with_secret(issued: store.ClientSecret, agency_name: str | None) -> JSONResponse:
    out = ClientWithSecret(
        **client_out(issued.client, agency_name).model_dump(), client_secret=issued.secret
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get("/v1/clients")
async def clients(session: SessionDep, principal: PrincipalDep) -> list[ClientOut]:
    """List every API client (office only)."""
    require_office(principal)
    return [client_out(c, name) for c, name in await store.list_clients(session)]


@router.post("/v1/clients", status_code=201, response_model=ClientWithSecret)
async def create_client(
    body: ClientIn, ctx: ActingContextDep, principal: PrincipalDep
) -> JSONResponse:
    """Create a client and show its secret once (office only)."""
    require_office(principal)
    issued, agency_name = await use_cases.create_client(
        ctx,
        role=body.role,
        label=body.label,
        agency_id=body.agency_id,
        agency_name=body.agency_name,
        agency_required=body.role == "agency",
    )
    log.info(
        "client %s (%s) created by %s", issued.client.client_id, body.role, principal.client_id
    )
    return _with_secret(issued, agency_name)


@router.get("/v1/clients/{client_id}")
async def client(client_id: ClientId, session: SessionDep, principal: PrincipalDep) -> ClientOut:
    """Show one client (office only)."""
    require_office(principal)
    found = await store.get_client(session, client_id)
    return client_out(found, await store.agency_name(session, found))


@router.post(
    "/v1/clients/{client_id}/rotate",
    status_code=201,
    responses=error_responses(409),
    response_model=ClientWithSecret,
)
async def rotate_client(
    client_id: ClientId, ctx: ActingContextDep, principal: PrincipalDep
) -> JSONResponse:
    """Give a client a new secret, shown once; the old one stops working (office only)."""
    require_office(principal)
    issued, agency_name = await use_cases.rotate_client(ctx, client_id)
    log.info("client %s secret rotated by %s", client_id, principal.client_id)
    return _with_secret(issued, agency_name)


@router.post("/v1/clients/{client_id}/revoke", responses=error_responses(404, 409))
async def revoke_client(
    client_id: ClientId, ctx: ActingContextDep, principal: PrincipalDep
) -> ClientOut:
    """Revoke a client: no new tokens, and the tokens it holds are refused by every service
    within seconds (401 token_revoked). The last active office client cannot be revoked (409
    last_office_client) (office only)."""
    require_office(principal)
    revoked, agency_name = await use_cases.revoke_client(ctx, client_id)
    log.info("client %s revoked by %s", client_id, principal.client_id)
    return client_out(revoked, agency_name)
