"""A work point's code in an API path: the shared `WorkPointCode` accepts 35, 3.2 and 2.1.3 and
refuses anything else with the 422 contract (`invalid_request`, the field in the details)."""

from __future__ import annotations

import httpx
import pytest
from duban_shared.api import install_error_handlers
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import FastAPI


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/work-points/{plan_slug}/{code}")
    async def show(plan_slug: PlanSlug, code: WorkPointCode) -> dict[str, str]:
        return {"id": f"{plan_slug}/{code}", "code": code}

    return app


async def _get(code: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get(f"/v1/work-points/plan-2025/{code}")


@pytest.mark.parametrize("code", ["35", "3.2", "2.1.3", "1.2.3.4", "9999.9999"])
async def test_well_formed_codes_reach_the_route(code: str) -> None:
    response = await _get(code)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": f"plan-2025/{code}", "code": code}


@pytest.mark.parametrize("code", ["3.", ".2", "3..2", "03a", "1.2.3.4.5", "12345", "3.2.", "-1"])
async def test_malformed_codes_are_refused_with_the_422_contract(code: str) -> None:
    response = await _get(code)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    [detail] = body["details"]
    assert detail["field"] == "path.code"
    assert f"'{code}' is not a work point code" in detail["problem"]
    assert "section.item (3.2)" in detail["problem"]


def test_the_code_is_documented_with_its_pattern_and_examples() -> None:
    [code] = [
        p
        for p in _app().openapi()["paths"]["/v1/work-points/{plan_slug}/{code}"]["get"][
            "parameters"
        ]
        if p["name"] == "code"
    ]
    assert code["schema"]["pattern"] == r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$"
    assert "3.2" in code["description"]
