"""The HTTP contract every service keeps: every error has a stable `code` and a `message`
(framework errors and unreadable bodies included), the OpenAPI documents every status with the
error schema and its examples are valid, and input is taken strictly (no coercion, no duplicate
keys, no control characters, bounded integers, contact files of any bytes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from notifier.main import build as build_notifier
from notifier.main import create_app as notifier_app
from notifier.settings import NotifierSettings
from progress.api.schemas import EXAMPLE
from progress.main import build as build_progress
from progress.main import create_app as progress_app
from progress.settings import ProgressSettings
from registry.main import build as build_registry
from registry.main import create_app as registry_app
from registry.settings import RegistrySettings

from tests.stack import PLAN, Stack

SQLITE = "sqlite+aiosqlite:///:memory:"


@pytest.fixture
async def apps() -> AsyncIterator[dict[str, FastAPI]]:
    """The three apps on services that are built but not started (no broker needed)."""
    services = {
        "registry": build_registry(RegistrySettings(database_url=SQLITE)),
        "progress": build_progress(ProgressSettings(database_url=SQLITE)),
        "notifier": build_notifier(NotifierSettings(database_url=SQLITE)),
    }
    makers = {"registry": registry_app, "progress": progress_app, "notifier": notifier_app}
    try:
        yield {name: makers[name](service) for name, service in services.items()}  # type: ignore[operator]
    finally:
        for service in services.values():
            await service.close()


BODY_POSTS = {
    "registry": "/v1/agencies",
    "progress": "/v1/events",
    "notifier": "/v1/agencies/00000000-0000-0000-0000-000000000001/contacts",
}

UNREADABLE_BODIES = [
    (b'{"name": "\xff\xfe"}', "invalid_encoding"),
    (b"[" * 10_000 + b"]" * 10_000, "json_too_deep"),
    (b'{"percent": ' + b"9" * 5000 + b"}", "number_too_long"),
    (b'{"percent": 40, "percent": 90}', "duplicate_key"),
    (b'{"percent": NaN}', "invalid_json"),
    (b'{"percent": 1e999}', "number_out_of_range"),
    (b'{"note": "\\ud800"}', "invalid_unicode"),
    (b'{"note": ', "invalid_json"),
]


async def test_framework_errors_and_unreadable_bodies_answer_a_code_and_a_message(
    apps: dict[str, FastAPI],
) -> None:
    for name, app in apps.items():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            unknown = await http.get("/v1/no-such-thing")
            assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found"), name
            assert "/openapi.json" in unknown.json()["message"]

            wrong = await http.request("DELETE", "/openapi.json")
            assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
            assert "GET" in wrong.json()["message"]

            path = BODY_POSTS[name]
            method = "PUT" if name == "notifier" else "POST"
            for body, code in UNREADABLE_BODIES:
                response = await http.request(
                    method, path, content=body, headers={"Content-Type": "application/json"}
                )
                assert (response.status_code, response.json()["code"]) == (422, code), (
                    name,
                    body[:40],
                )
                assert response.json()["message"], (name, code)

            bad_length = await http.post(
                path, content=b"{}", headers={"Content-Length": "2x"}
            )  # what a client that miscounts sends: 400, not a server error
            assert bad_length.status_code in (400, 422), bad_length.text
            assert "code" in bad_length.json()


def _documents(apps: dict[str, FastAPI]) -> dict[str, dict[str, Any]]:
    return {name: app.openapi() for name, app in apps.items()}


async def test_every_operation_documents_its_errors_with_the_error_schema(
    apps: dict[str, FastAPI],
) -> None:
    for name, document in _documents(apps).items():
        assert "HTTPValidationError" not in document["components"]["schemas"], name
        for path, item in document["paths"].items():
            for method, operation in item.items():
                responses = operation["responses"]
                where = f"{name}: {method.upper()} {path}"
                assert "503" in responses, where
                if operation.get("security"):
                    assert {"401", "403"} <= set(responses), where
                if "requestBody" in operation or operation.get("parameters"):
                    assert "422" in responses, where
                if "requestBody" in operation:
                    assert {"411", "413"} <= set(responses), where
                if "{" in path:
                    assert "404" in responses, where
                for status, response in responses.items():
                    if int(status) >= 400:
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, where


def _examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """Every example in a document: (where, its schema, the example)."""
    found: list[tuple[str, dict[str, Any], Any]] = []
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            found.append((f"schema {name}", schema, example))
        for field, prop in schema.get("properties", {}).items():
            for example in prop.get("examples", []):
                found.append((f"schema {name}.{field}", prop, example))
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                for example in parameter.get("schema", {}).get("examples", []):
                    found.append(
                        (f"{method} {path} {parameter['name']}", parameter["schema"], example)
                    )
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                if "json" not in media:
                    continue
                for example in body.get("schema", {}).get("examples", []):
                    found.append((f"{method} {path} body", body["schema"], example))
                for example in body.get("examples", {}).values():
                    found.append((f"{method} {path} body", body["schema"], example["value"]))
    return found


async def test_every_example_in_the_documents_is_valid_against_its_schema(
    apps: dict[str, FastAPI],
) -> None:
    checked = 0
    for name, document in _documents(apps).items():
        for where, schema, example in _examples(document):
            root = {**schema, "components": document["components"]}
            errors = list(Draft202012Validator(root).iter_errors(example))
            assert not errors, f"{name} {where}: {errors[0].message}"
            checked += 1
    assert checked >= 10  # the status report, batch, target, shares, policy, agency... examples


async def test_the_status_report_example_is_accepted_as_documented(stack: Stack) -> None:
    stack.clock.set(datetime.fromisoformat("2024-09-02T10:00:00+08:00"))
    headers = await stack.auth(stack.forestry)
    one = await stack.progress_http.post("/v1/events", json=EXAMPLE, headers=headers)
    assert one.status_code == 202, one.text
    batch_example = {"events": [{**EXAMPLE, "event_id": str(uuid.uuid4())}]}
    batch = await stack.progress_http.post("/v1/events/batch", json=batch_example, headers=headers)
    assert (batch.status_code, batch.json()["accepted"]) == (200, 1), batch.text


async def test_loose_input_is_refused_not_coerced(stack: Stack) -> None:
    agency = await stack.auth(stack.forestry)
    office = await stack.auth(stack.office)
    report = {
        "event_id": str(uuid.uuid4()),
        "work_point_id": f"{PLAN}/35",
        "status": "at_risk",
        "occurred_at": stack.clock.now().isoformat(),
    }
    for change in (
        {"percent": "40"},
        {"percent": True},
        {"occurred_at": 1725240600},
        {"note": "审批\x00未完成"},
        {"note": "审批\x1b[31m未完成"},
        {"kpis": {"林分优化": "5.2"}},
        {"kpis": {"林分优化": True}},
        {"evidence": ["https://lyj.zhaoqing.gov.cn/a\x00b.pdf"]},
    ):
        response = await stack.progress_http.post(
            "/v1/events", json={**report, **change}, headers=agency
        )
        assert response.status_code == 422, (change, response.text)
        assert response.json()["code"] == "invalid_request", change
    duplicated = (
        b'{"event_id": "%s", "work_point_id": "%s/35", "status": "at_risk", '
        b'"status": "blocked", "occurred_at": "%s"}'
        % (str(uuid.uuid4()).encode(), PLAN.encode(), stack.clock.now().isoformat().encode())
    )
    response = await stack.progress_http.post(
        "/v1/events",
        content=duplicated,
        headers={**agency, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (422, "duplicate_key")
    assert "'status'" in response.json()["message"]

    huge = "30448345756907941888"
    for http, path in (
        (stack.registry_http, f"/v1/plans/{PLAN}/work-points/{huge}"),
        (stack.registry_http, f"/v1/plans/{PLAN}/work-points/1/targets/{huge}/shares"),
        (stack.registry_http, f"/v1/plans?offset={huge}"),
        (stack.registry_http, f"/v1/plans?year={huge}"),
        (stack.registry_http, "/v1/plans/Zhaoqing%00/sections"),
        (stack.registry_http, "/v1/agencies?name=%E6%9E%97%00"),
        (stack.progress_http, f"/v1/work-points/{PLAN}/{huge}/progress"),
        (stack.progress_http, f"/v1/plans/{PLAN}/progress?section={huge}"),
        (stack.notifier_http, f"/v1/notifications?offset={huge}"),
        (stack.notifier_http, f"/v1/alerts?limit=10&offset={huge}"),
        (stack.notifier_http, "/v1/notifications?work_point_id=a%00b"),
        (stack.registry_http, "/v1/clients/a%00b"),
    ):
        method = "PUT" if path.endswith("/shares") else "GET"
        response = await http.request(method, path, headers=office, json={"shares": []})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request"), path

    confirm = await stack.registry_http.post(
        f"/v1/plans/{PLAN}/versions", json={"text": "x", "confirm": "yes"}, headers=office
    )
    assert (confirm.status_code, confirm.json()["code"]) == (422, "invalid_request")
    policy = await stack.registry_http.put(
        f"/v1/plans/{PLAN}/work-points/35/policy",
        json={"report_every_working_days": "5"},
        headers=office,
    )
    assert (policy.status_code, policy.json()["code"]) == (422, "invalid_request")


async def test_a_contacts_file_of_any_bytes_is_imported_or_refused_line_by_line(
    stack: Stack,
) -> None:
    office = {**await stack.auth(stack.office), "Content-Type": "text/csv"}

    async def post(body: bytes) -> httpx.Response:
        return await stack.notifier_http.post("/v1/contacts/import", content=body, headers=office)

    header = "agency,channel,address,label"
    for ending in ("\r", "\r\n", "\n"):
        text = ending.join([header, "市林业局,sms,13800138000,值班", ""])
        response = await post(text.encode())
        assert (response.status_code, response.json()) == (200, {"agencies": 1, "contacts": 1})
    with_bom = await post(("\ufeff" + header + "\n市林业局,sms,13800138000,值班\n").encode())
    assert with_bom.status_code == 200, with_bom.text

    bare_cr_in_field = f"{header}\n市林业局,sms,138001\r38000,值\r班\n".encode()
    response = await post(bare_cr_in_field)
    assert response.status_code == 422, response.text

    nul = await post(f"{header}\n市林业局,email,a@zhaoqing.example.cn,值\x00班\n".encode())
    assert (nul.status_code, nul.json()["code"]) == (422, "invalid_csv")
    assert [d["code"] for d in nul.json()["details"]] == ["control_character"]

    not_utf8 = await post(header.encode() + b"\n\xca\xd0\xc1\xd6\xd2\xb5\xbe\xd6,sms,1,x\n")
    assert (not_utf8.status_code, not_utf8.json()["code"]) == (422, "invalid_request")

    huge_line = await post(f"{header}\n市林业局,sms,{'1' * 60_000},x\n".encode())
    assert (huge_line.status_code, huge_line.json()["code"]) == (422, "invalid_csv")
    assert [d["code"] for d in huge_line.json()["details"]] == ["field_too_long"]


async def test_an_unexpected_failure_answers_500_with_a_code_and_a_message() -> None:
    from duban_shared.api import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/boom")
    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    assert "a bug" not in response.text  # nothing of the internals leaks
