"""API clients of the registry, on PostgreSQL, through its HTTP app and CLI: created, listed,
rotated and revoked (never the last office client), secrets shown once."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from registry.cli import main as cli
from registry.domain.agency_identity import agency_id_for
from registry.service import RegistryService
from registry.store.auth_models import ApiClient

from services.registry.tests.integration.oauth_helpers import (
    FORESTRY,
    START,
    assert_invalid_client,
    bearer,
    token_request,
)
from tests.stack import create_client, import_plan_into


async def test_a_revoked_client_cannot_obtain_a_token(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    office = await create_client(registry, "coordinator")
    revoked = await http.post(
        f"/v1/clients/{forestry.client_id}/revoke", headers=await bearer(http, office)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert_invalid_client(await token_request(http, forestry.client_id, forestry.secret))
    rotate = await http.post(
        f"/v1/clients/{forestry.client_id}/rotate", headers=await bearer(http, office)
    )
    assert (rotate.status_code, rotate.json()["code"]) == (409, "client_revoked")


async def test_a_rotated_secret_replaces_the_old_one_at_once(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    operator = await create_client(registry, "operator")
    rotated = await http.post(
        f"/v1/clients/{forestry.client_id}/rotate", headers=await bearer(http, operator)
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["client_secret"]
    assert new_secret != forestry.secret and rotated.json()["rotated_at"] is not None
    assert_invalid_client(await token_request(http, forestry.client_id, forestry.secret))
    assert (await token_request(http, forestry.client_id, new_secret)).status_code == 200


async def test_client_management_is_office_only_and_never_shows_a_stored_secret(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    forestry = await create_client(registry, "agency", FORESTRY)
    office = await bearer(http, await create_client(registry, "coordinator"))

    missing = await http.get("/v1/clients")
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_token")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    as_agency = await http.get("/v1/clients", headers=await bearer(http, forestry))
    assert (as_agency.status_code, as_agency.json()["code"]) == (403, "office_only")
    created = await http.post(
        "/v1/clients",
        json={"role": "agency", "agency_name": "市 林业局", "label": "林业局系统"},
        headers=office,
    )
    assert created.status_code == 201, created.text
    made = created.json()
    assert (made["agency_name"], made["agency_id"]) == (FORESTRY, str(agency_id_for(FORESTRY)))
    assert made["client_id"].startswith("agency-") and made["client_secret"].startswith("dcs_")
    assert (await token_request(http, made["client_id"], made["client_secret"])).status_code == 200

    listed = await http.get("/v1/clients", headers=office)
    assert listed.status_code == 200
    assert {c["client_id"] for c in listed.json()} >= {forestry.client_id, made["client_id"]}
    assert all("client_secret" not in c and "secret_hash" not in c for c in listed.json())
    one = await http.get(f"/v1/clients/{made['client_id']}", headers=office)
    assert one.json()["label"] == "林业局系统"
    assert datetime.fromisoformat(one.json()["last_used_at"]) == START

    refusals = [
        ({"role": "agency", "agency_name": "林业局"}, 422, "unknown_agency"),
        ({"role": "agency"}, 422, "agency_required"),
        ({"role": "operator", "agency_name": FORESTRY}, 422, "agency_not_allowed"),
        ({"role": "admin"}, 422, "invalid_request"),
    ]
    for body, status, code in refusals:
        response = await http.post("/v1/clients", json=body, headers=office)
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    unknown = await http.post("/v1/clients", json=refusals[0][0], headers=office)
    assert "Did you mean: 市林业局?" in unknown.json()["message"]
    gone = await http.post("/v1/clients/agency-nobody/revoke", headers=office)
    assert (gone.status_code, gone.json()["code"]) == (404, "unknown_client")


def test_the_cli_creates_lists_rotates_and_revokes_clients(
    make_database: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_database("registry")
    monkeypatch.setenv("DUBAN_REGISTRY_DATABASE_URL", url)
    plan = str(import_plan_into.__globals__["PLAN_PATH"])
    assert cli(["import-plan", plan, "--slug", "zhaoqing-digital-2024"]) == 0
    capsys.readouterr()

    def run(*args: str) -> dict[str, str]:
        assert cli(list(args)) == 0
        out = capsys.readouterr().out
        pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
        return {name: (shlex.split(value) or [""])[0] for name, value in pairs}

    made = run("create-client", "--role", "agency", "--agency-name", FORESTRY, "--label", "demo")
    assert made["role"] == "agency" and made["agency_name"] == FORESTRY
    assert made["agency_id"] == str(agency_id_for(FORESTRY))
    assert made["client_secret"].startswith("dcs_")
    by_id = run("create-client", "--role", "agency", "--agency-id", made["agency_id"])
    office = run("create-client", "--role", "coordinator")
    assert office["agency_id"] == "" and office["client_id"].startswith("coordinator-")

    with pytest.raises(SystemExit) as unknown:
        cli(["create-client", "--role", "agency", "--agency-name", "林业局"])
    assert "[unknown_agency]" in str(unknown.value) and "市林业局" in str(unknown.value)
    with pytest.raises(SystemExit) as bad_id:
        cli(["create-client", "--role", "agency", "--agency-id", str(uuid.uuid4())])
    assert "[unknown_agency]" in str(bad_id.value)
    with pytest.raises(SystemExit) as no_agency:
        cli(["create-client", "--role", "agency"])
    assert "--agency-name" in str(no_agency.value)
    with pytest.raises(SystemExit) as office_agency:
        cli(["create-client", "--role", "operator", "--agency-name", FORESTRY])
    assert "[agency_not_allowed]" in str(office_agency.value)

    rotated = run("rotate-client", made["client_id"])
    assert rotated["client_id"] == made["client_id"]
    assert rotated["client_secret"] != made["client_secret"]
    assert cli(["revoke-client", by_id["client_id"]]) == 0
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(SystemExit) as missing:
        cli(["rotate-client", "agency-nobody"])
    assert "[unknown_client]" in str(missing.value)

    assert cli(["list-clients"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("client_id\trole\tagency")
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows[made["client_id"]][1:3] == ["agency", FORESTRY]
    assert rows[by_id["client_id"]][-1] == "revoked"
    assert rows[office["client_id"]][2] == "-"
    out = "\n".join(lines)
    assert made["client_secret"] not in out and rotated["client_secret"] not in out

    assert cli(["rotate-signing-key"]) == 0
    assert "is active" in capsys.readouterr().out
    assert cli(["rotate-signing-key"]) == 0
    capsys.readouterr()


async def test_api_client_rows_keep_role_and_agency_consistent(
    registry: RegistryService,
) -> None:
    """The database itself refuses an agency client without agency (check constraint)."""
    from sqlalchemy.exc import IntegrityError

    async with registry.sessions() as session:
        session.add(
            ApiClient(
                client_id="agency-broken",
                secret_hash="x",
                role="agency",
                agency_id=None,
                created_at=START,
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_the_last_active_office_client_cannot_be_revoked(
    registry: RegistryService, http: httpx.AsyncClient
) -> None:
    office = await create_client(registry, "coordinator")
    headers = await bearer(http, office)
    alone = await http.post(f"/v1/clients/{office.client_id}/revoke", headers=headers)
    assert (alone.status_code, alone.json()["code"]) == (409, "last_office_client"), alone.text
    assert "create another office client first" in alone.json()["message"]
    assert (await token_request(http, office.client_id, office.secret)).status_code == 200

    operator = await create_client(registry, "operator")
    first = await http.post(f"/v1/clients/{office.client_id}/revoke", headers=headers)
    assert first.status_code == 200, first.text
    last = await http.post(
        f"/v1/clients/{operator.client_id}/revoke", headers=await bearer(http, operator)
    )
    assert (last.status_code, last.json()["code"]) == (409, "last_office_client")
    again = await http.post(f"/v1/clients/{office.client_id}/revoke", headers=headers)
    assert again.status_code == 200  # revoking a revoked client stays harmless


def test_the_cli_refuses_to_revoke_the_last_office_client(
    make_database: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DUBAN_REGISTRY_DATABASE_URL", make_database("registry"))
    assert cli(["create-client", "--role", "operator"]) == 0
    client_id = next(
        line.split("=", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("client_id=")
    )
    with pytest.raises(SystemExit) as refused:
        cli(["revoke-client", shlex.split(client_id)[0]])
    assert "[last_office_client]" in str(refused.value)
