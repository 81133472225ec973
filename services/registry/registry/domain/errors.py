"""Refusals: what the registry will not do, with an HTTP status, a stable code and a message
a person can act on. The API renders them as error bodies, the command line as one line."""

from __future__ import annotations

import uuid
from typing import Any


class Refusal(Exception):
    """A refused request or change."""

    def __init__(self, status: int, code: str, message: str, details: Any | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class AgencyError(Refusal):
    """A refused agency change."""


class ClientError(Refusal):
    """An API client operation that cannot be done."""


def unknown_plan(slug: str) -> Refusal:
    """The refusal for a plan slug nobody imported."""
    return Refusal(404, "unknown_plan", f"No plan '{slug}' is imported; see /v1/plans.")


def unknown_work_point(slug: str, code: str) -> Refusal:
    """The refusal for a work point code a plan does not have."""
    return Refusal(
        404,
        "unknown_work_point",
        f"Plan '{slug}' has no work point '{code}'; list them (each with its code) at "
        f"/v1/plans/{slug}/work-points.",
    )


def unknown_agency(agency_id: uuid.UUID | str) -> Refusal:
    """The refusal for an agency id the registry does not know."""
    return Refusal(
        404, "unknown_agency", f"No agency {agency_id}; find ids with GET /v1/agencies?name=..."
    )
