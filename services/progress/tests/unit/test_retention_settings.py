"""Progress refuses retention settings that break the Kafka rule (duban_shared.retention)."""

from __future__ import annotations

import pytest
from duban_shared.retention import MS_PER_DAY, RETENTION_TOO_SHORT

WEEK_MS = 7 * MS_PER_DAY


def test_settings_that_break_the_rule_are_refused() -> None:
    from progress.settings import ProgressSettings

    with pytest.raises(ValueError, match=RETENTION_TOO_SHORT) as refused:
        ProgressSettings(retention_inbox_days=3, kafka_retention_ms=WEEK_MS)
    assert "DUBAN_KAFKA_RETENTION_MS" in str(refused.value)
    assert ProgressSettings(retention_inbox_days=7, kafka_retention_ms=WEEK_MS)
    assert ProgressSettings(retention_inbox_days=0, kafka_retention_ms=-1)
