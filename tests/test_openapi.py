"""Each service's OpenAPI document generates and lists its public operations with examples."""

from __future__ import annotations

from typing import Any

from notifier.main import build as build_notifier
from notifier.main import create_app as notifier_app
from notifier.settings import NotifierSettings
from progress.main import build as build_progress
from progress.main import create_app as progress_app
from progress.settings import ProgressSettings
from registry.main import build as build_registry
from registry.main import create_app as registry_app
from registry.settings import RegistrySettings

SQLITE = "sqlite+aiosqlite:///:memory:"


def _ops(schema: dict[str, Any]) -> set[str]:
    return {f"{m.upper()} {p}" for p, item in schema["paths"].items() for m in item}


async def test_every_service_publishes_a_complete_openapi_document() -> None:
    registry = build_registry(RegistrySettings(database_url=SQLITE))
    progress = build_progress(ProgressSettings(database_url=SQLITE))
    notifier = build_notifier(NotifierSettings(database_url=SQLITE))
    try:
        documents = {
            "registry": registry_app(registry).openapi(),
            "progress": progress_app(progress).openapi(),
            "notifier": notifier_app(notifier).openapi(),
        }
    finally:
        for service in (registry, progress, notifier):
            await service.close()
    assert {
        "POST /oauth/token",
        "POST /oauth/revoke",
        "GET /.well-known/jwks.json",
        "GET /v1/plans",
        "POST /v1/plans/{slug}/versions",
        "PUT /v1/plans/{slug}/policy",
        "GET /v1/plans/{slug}/work-points",
        "PUT /v1/plans/{slug}/work-points/{code}/targets/{position}/shares",
        "GET /v1/agencies/resolve",
        "POST /v1/agencies/{agency_id}/merge",
        "POST /v1/sessions",
        "GET /v1/me",
        "POST /v1/me/password",
        "POST /v1/accounts",
        "POST /v1/accounts/{username}/reset-password",
    } <= _ops(documents["registry"])
    login = documents["registry"]["paths"]["/v1/sessions"]["post"]["responses"]
    for status, code in (("401", "totp_required"), ("409", "password_change_required")):
        assert code in _refusal(documents["registry"], "post", "/v1/sessions", status)
    assert "429" in login
    assert {"POST /v1/events", "GET /v1/work-points/{plan_slug}/{code}/progress"} <= _ops(
        documents["progress"]
    )
    assert {"PUT /v1/agencies/{agency_id}/contacts/email", "GET /v1/notifications"} <= _ops(
        documents["notifier"]
    )
    schemas = documents["progress"]["components"]["schemas"]
    assert schemas["StatusReportIn"]["examples"][0]["work_point_id"] == "zhaoqing-digital-2024/35"
    assert "examples" in documents["registry"]["components"]["schemas"]["StallPolicy"]
    _assert_date_bounds_documented(documents["progress"], documents["registry"])
    _assert_codes_documented(documents["registry"], documents["progress"])


def _assert_codes_documented(registry: dict[str, Any], progress: dict[str, Any]) -> None:
    """Every path naming a work point takes its code, with the pattern and examples."""
    for document in (registry, progress):
        for path, item in document["paths"].items():
            if "work-points/" not in path:
                continue
            assert "{number}" not in path, path
            for operation in item.values():
                [code] = [p for p in operation["parameters"] if p["name"] == "code"]
                assert code["in"] == "path"
                assert code["schema"]["pattern"] == r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$"
                assert "3.2" in code["description"]
                assert code["schema"].get("examples") or code.get("examples"), path
    out = registry["components"]["schemas"]["WorkPointPublic"]["properties"]
    assert "ordinal" in out["number"]["description"] and out["code"]["examples"] == ["35", "3.2"]


def _refusal(document: dict[str, Any], method: str, path: str, status: str) -> str:
    answer = document["paths"][path][method]["responses"][status]
    schema = answer["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/ErrorBody"), schema  # the body every error has, not FastAPI's own
    return str(answer["description"])


def _assert_date_bounds_documented(progress: dict[str, Any], registry: dict[str, Any]) -> None:
    single = _refusal(progress, "post", "/v1/events", "422")
    batch = _refusal(progress, "post", "/v1/events/batch", "422")
    for code in ("occurred_at_out_of_range", "occurred_at_before_plan", "occurred_at_in_future"):
        assert code in single and code in batch
    assert "invalid_batch" in batch
    for status in ("401", "403", "404", "409", "429", "503"):
        assert status in progress["paths"]["/v1/events"]["post"]["responses"]
    for method, path in (
        ("put", "/v1/plans/{slug}/work-points/{code}/policy"),
        ("patch", "/v1/plans/{slug}"),
    ):
        assert "due_on_out_of_range" in _refusal(registry, method, path, "422")
