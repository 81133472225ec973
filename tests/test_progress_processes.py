"""Progress split into processes: API-only processes (`serve --workers N` with
DUBAN_PROGRESS_BACKGROUND=false) beside one `duban-progress worker` that consumes, relays and
sweeps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from progress.cli import main as progress_cli
from progress.main import build, create_app, create_worker_app

from tests.stack import Stack


async def test_an_api_only_process_accepts_reports_that_the_worker_applies(stack: Stack) -> None:
    # The stack's progress plays the worker; a second process on the same database and topics
    # serves the API with background work off.
    settings = stack.progress.settings.model_copy(update={"background": False})
    jwks_http = httpx.AsyncClient(transport=stack.registry_link, base_url="http://registry")
    api_only = build(
        settings,
        clock=stack.clock,
        tracer_provider=stack.progress.tracer_provider,
        jwks_http=jwks_http,
    )
    await api_only.start()
    try:
        assert api_only.background.names == []
        assert "progress-status" in stack.progress.background.names
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(api_only)), base_url="http://test"
        ) as http:
            body = {
                "event_id": "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed",
                "work_point_id": "zhaoqing-digital-2024/35",
                "status": "blocked",
                "occurred_at": stack.clock.now().isoformat(),
            }
            headers = await stack.auth(stack.forestry)
            accepted = await http.post("/v1/events", json=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        await stack.until_applied(accepted)
    finally:
        await api_only.close()
        await jwks_http.aclose()


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
