"""The simulated clock: its arithmetic, its settings, and a service built on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from duban_shared.auth import AuthError
from duban_shared.clock import ManualClock, ScaledClock, SystemClock, domain_span
from duban_shared.settings import ServiceSettings
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

START = datetime.fromisoformat("2024-01-02T08:30:00+08:00")
EPOCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_scaled_clock_runs_rate_times_faster_from_its_epoch_and_stops_at_its_end() -> None:
    wall = ManualClock(EPOCH)
    clock = ScaledClock(START, 60_000, EPOCH, wall=wall, end=START + timedelta(days=30))
    assert clock.now() == START
    wall.advance(timedelta(seconds=1.44))
    assert clock.now() == START + timedelta(days=1)  # 1.44 s * 60000 = 86400 s
    wall.advance(timedelta(seconds=60))
    assert clock.now() == START + timedelta(days=30)  # held at the end
    assert domain_span(clock, timedelta(minutes=5)) == timedelta(minutes=5) * 60_000
    assert domain_span(wall, timedelta(minutes=5)) == timedelta(minutes=5)
    with pytest.raises(ValueError, match="rate"):
        ScaledClock(START, 0, EPOCH)
    with pytest.raises(ValueError, match="aware"):
        ScaledClock(datetime(2024, 1, 2), 2.0, EPOCH)


def test_settings_make_the_domain_clock_or_refuse_an_incomplete_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(ServiceSettings().domain_clock(), SystemClock)
    monkeypatch.setenv("DUBAN_SIM_CLOCK_START", START.isoformat())
    monkeypatch.setenv("DUBAN_SIM_CLOCK_RATE", "60000")
    monkeypatch.setenv("DUBAN_SIM_CLOCK_EPOCH", str(EPOCH.timestamp()))
    wall = ManualClock(EPOCH + timedelta(seconds=2.88))
    clock = ServiceSettings().domain_clock(wall)
    assert isinstance(clock, ScaledClock) and clock.now() == START + timedelta(days=2)

    for name, value, says in [
        ("DUBAN_SIM_CLOCK_RATE", "0", "greater than 0"),
        ("DUBAN_SIM_CLOCK_RATE", "fast", "valid number"),
        ("DUBAN_SIM_CLOCK_START", "2024-01-02T08:30:00", "needs a time zone"),
        ("DUBAN_SIM_CLOCK_EPOCH", "", "DUBAN_SIM_CLOCK_EPOCH"),
    ]:
        with monkeypatch.context() as m:
            if value:
                m.setenv(name, value)
            else:
                m.delenv(name)
            with pytest.raises(ValidationError, match=says):
                ServiceSettings()
    monkeypatch.delenv("DUBAN_SIM_CLOCK_START")
    with pytest.raises(ValidationError, match="need DUBAN_SIM_CLOCK_START"):
        ServiceSettings()


async def test_registry_tokens_live_real_minutes_while_its_domain_clock_runs_a_month_ahead(
    sqlite_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.main import build
    from registry.settings import RegistrySettings
    from registry.store import clients as client_store

    monkeypatch.setenv("DUBAN_SIM_CLOCK_START", START.isoformat())
    monkeypatch.setenv("DUBAN_SIM_CLOCK_RATE", "60000")
    monkeypatch.setenv("DUBAN_SIM_CLOCK_EPOCH", str(EPOCH.timestamp()))
    wall = ManualClock(EPOCH)
    registry = build(
        RegistrySettings(database_url=sqlite_url("registry"), environment="test"),
        wall_clock=wall,
        tracer_provider=TracerProvider(),  # nothing exported
    )
    try:
        assert isinstance(registry.clock, ScaledClock)
        await registry.keys.load()
        async with registry.sessions() as session, session.begin():
            issued = await client_store.create_client(
                session, role="operator", agency=None, label="t", now=wall.now()
            )
        async with registry.sessions() as session:
            row = await client_store.get_client(session, issued.client.client_id)
        token = await registry.issuer.issue(row)

        wall.advance(timedelta(seconds=45))  # 45 real seconds: a simulated month
        assert registry.clock.now() - START == timedelta(days=31.25)
        principal = await registry.verifier.verify(token.token)
        assert principal.client_id == issued.client.client_id

        wall.advance(timedelta(minutes=11))  # past the 10 real minutes of a token
        with pytest.raises(AuthError) as refused:
            await registry.verifier.verify(token.token)
        assert refused.value.code == "token_expired"
    finally:
        await registry.engine.dispose()
