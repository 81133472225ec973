"""HTTP contracts that cross services: the bodies one service answers and another reads.

`Alert` is what the notifier's `GET /v1/alerts` lists (and `POST /v1/alerts/{id}/ack`
answers); progress's board reads the same model, so a field changes in one place for both.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from duban_shared.events import WorkPointCodeField, code_of


class Alert(BaseModel):
    """An alert: one stall episode of one work point."""

    id: uuid.UUID
    episode_id: uuid.UUID
    work_point_id: str
    number: int = Field(description="The work point's ordinal in its plan (1..N), for ordering.")
    code: WorkPointCodeField
    title: str
    level: str
    reasons: list[str]
    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    lead_agencies: list[str]
    trace_id: str | None = Field(
        default=None,
        description="The trace of the stall transition that fired it (W3C trace id, 32 hex), "
        "from the traceparent its first planned delivery kept; null when none was planned.",
    )

    @model_validator(mode="before")
    @classmethod
    def _code_default(cls, data: object) -> object:
        """An answer of a notifier from before codes: the code is the id's (the number)."""
        if isinstance(data, dict) and data.get("code") is None and "work_point_id" in data:
            return {**data, "code": code_of(str(data["work_point_id"]))}
        return data
