"""The published JSON Schema files match the event models they are generated from."""

from __future__ import annotations

import json

from duban_shared import schemas


def test_published_schema_files_are_up_to_date() -> None:
    for name in schemas.PUBLISHED:
        on_disk = (schemas.FOLDER / name).read_text(encoding="utf-8")
        assert on_disk == schemas.render(name), (
            f"{name} is stale: run `python -m duban_shared.schemas` and commit the result"
        )


def test_the_status_event_schema_states_the_contract() -> None:
    schema = json.loads(schemas.render("status-event.v1.json"))
    assert set(schema["required"]) >= {
        "event_id",
        "occurred_at",
        "work_point_id",
        "agency_id",
        "status",
    }
    assert schema["additionalProperties"] is False
    assert schema["properties"]["percent"]["anyOf"][0] == {
        "maximum": 100,
        "minimum": 0,
        "type": "integer",
    }
