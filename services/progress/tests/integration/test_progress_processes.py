"""Progress split into processes: API-only processes (`serve --workers N` with
DUBAN_PROGRESS_BACKGROUND=false) beside one `duban-progress worker` that consumes, relays and
sweeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from progress.cli import main as progress_cli
from progress.main import build, create_app, create_worker_app

from tests.stack import Stack


@asynccontextmanager
async def api_process(stack: Stack, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """A second progress, API only (background off), on the stack's database and topics unless
    `settings` say otherwise; yields an HTTP client of its app."""
    changed = stack.progress.settings.model_copy(update={"background": False, **settings})
    jwks_http = httpx.AsyncClient(transport=stack.registry_link, base_url="http://registry")
    api_only = build(
        changed,
        clock=stack.clock,
        tracer_provider=stack.progress.tracer_provider,
        jwks_http=jwks_http,
    )
    await api_only.start()
    await api_only.background.started()
    try:
        # No consumer of reports, no loop: only the producer, and the revocations every
        # process that verifies tokens follows (a consumer without a group).
        assert api_only.background.names == ["start kafka producer", "progress-revocations"]
        transport = httpx.ASGITransport(app=create_app(api_only))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http
    finally:
        await api_only.close()
        await jwks_http.aclose()


def _report(stack: Stack, event_id: str, status: str) -> dict[str, str]:
    return {
        "event_id": event_id,
        "work_point_id": "zhaoqing-digital-2024/35",
        "status": status,
        "occurred_at": stack.clock.now().isoformat(),
    }


async def test_an_api_only_process_accepts_reports_that_the_worker_applies(stack: Stack) -> None:
    # The stack's progress plays the worker; the API-only process consumes nothing.
    assert "progress-status" in stack.progress.background.names
    async with api_process(stack) as http:
        body = _report(stack, "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", "blocked")
        headers = await stack.auth(stack.forestry)
        accepted = await http.post("/v1/events", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    await stack.until_applied(accepted)


def test_several_api_workers_need_background_work_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DUBAN_PROGRESS_BACKGROUND", raising=False)
    with pytest.raises(SystemExit) as refused:
        progress_cli(["serve", "--workers", "2"])
    message = str(refused.value)
    assert "DUBAN_PROGRESS_BACKGROUND=false" in message
    assert "duban-progress worker" in message
    with pytest.raises(SystemExit):
        progress_cli(["serve", "--workers", "0"])
    assert "not a positive number" in capsys.readouterr().err


async def test_the_worker_serves_only_health_and_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DUBAN_PROGRESS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/p.db")
    monkeypatch.setenv("DUBAN_PROGRESS_BACKGROUND", "false")  # the worker runs it regardless
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    app = create_worker_app()
    assert app.state.service.settings.background is True
    try:  # not started (no lifespan): only the routes are looked at
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.post("/v1/events", json={})).status_code == 404
            assert (await http.get("/board")).status_code == 404
    finally:
        await app.state.service.close()


async def test_a_database_outage_is_answered_503_to_retry(stack: Stack) -> None:
    # Nothing listens on port 1.
    nowhere = "postgresql+psycopg://duban@127.0.0.1:1/duban_progress"
    async with api_process(stack, database_url=nowhere) as http:
        headers = await stack.auth(stack.forestry)
        report = _report(stack, "9a1f0c1e-4b7e-4f0e-8a52-3c1d2e3f4a5b", "on_track")
        single = await http.post("/v1/events", json=report, headers=headers)
        batch = await http.post("/v1/events/batch", json={"events": [report]}, headers=headers)
        read = await http.get(
            "/v1/work-points/zhaoqing-digital-2024/35/progress",
            headers=await stack.auth(stack.office),
        )
    for answer in (single, batch, read):
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "database_unavailable"
        assert "retry" in answer.json()["message"]
        assert answer.headers["Retry-After"] == "5"
