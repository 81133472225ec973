"""JSON Schemas of the event contracts, for agency systems that produce to Kafka directly.

The files in duban_shared/schemas/ are generated from the models (`python -m
duban_shared.schemas`) and a test fails when they drift from them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from duban_shared.events import SCHEMA_VERSION, StatusEvent

FOLDER = Path(__file__).parent / "schemas"
PUBLISHED: dict[str, type[BaseModel]] = {f"status-event.v{SCHEMA_VERSION}.json": StatusEvent}


def schema_of(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The JSON Schema of a model, with an id and a title agency integrators can cite."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://duban.example/schemas/{name}"
    return schema


def render(name: str) -> str:
    """The published text of one schema file."""
    return json.dumps(schema_of(PUBLISHED[name], name), ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    """Write every published schema file."""
    for name in PUBLISHED:
        (FOLDER / name).write_text(render(name), encoding="utf-8")
        print(f"wrote {FOLDER / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
