"""Service settings refuse configurations that cannot be meant."""

from __future__ import annotations

import pytest
from progress.settings import ProgressSettings
from pydantic import ValidationError


def test_production_refuses_the_embedded_sqlite_database() -> None:
    with pytest.raises(ValidationError, match="DUBAN_<SERVICE>_DATABASE_URL to a PostgreSQL URL"):
        ProgressSettings(environment="production")
    ok = ProgressSettings(
        environment="production", database_url="postgresql+psycopg://duban@db/duban_progress"
    )
    assert ok.environment == "production"
    assert ProgressSettings().database_url.startswith("sqlite")  # fine for development
