"""How the registry's refusals reach HTTP clients, and the error answers the OpenAPI document
names beyond the ones every operation has."""

from __future__ import annotations

from typing import Any

from duban_shared.api import ErrorBody
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from registry.domain.errors import Refusal

DUE_ON_REFUSALS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "`invalid_request` (see `details`); `due_on_out_of_range`: a due date "
        "before 1 January of the plan's year or after 31 December "
        "DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN (1) years later, with `details.earliest` "
        "and `details.latest`; `due_before_issue`: before the plan was issued.",
    },
}
"""The 422 answers of the endpoints that set a due date, for their OpenAPI documents."""


def answer_refusals(app: FastAPI) -> None:
    """Render a Refusal raised by a use case as the ErrorBody of its status and code."""

    @app.exception_handler(Refusal)
    async def _refused(_request: Request, exc: Refusal) -> JSONResponse:
        body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        return JSONResponse(status_code=exc.status, content=body.model_dump(mode="json"))
