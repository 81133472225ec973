"""HTTP error shape shared by the services: a stable code and a message a person can act on."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy.exc
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from duban_shared.events import CODED_ERRORS
from duban_shared.failures import OutageLog

log = logging.getLogger(__name__)

DATABASE_ERRORS = (
    sqlalchemy.exc.TimeoutError,  # no pooled connection in time: overload
    sqlalchemy.exc.OperationalError,  # the database unreachable, restarting, out of connections
    sqlalchemy.exc.InterfaceError,
)
"""Failures of the database rather than of the request: answered 503 `database_unavailable`."""

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    """What every error response carries."""

    code: str
    message: str
    details: Any | None = None


class ApiError(Exception):
    """An error with an HTTP status, a stable code and an actionable message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def validation_code(exc: RequestValidationError) -> tuple[str, str]:
    """The code and message of a refused request: a coded error's own (`CODED_ERRORS`, e.g. a
    date out of range) when it is the only problem, else `invalid_request`."""
    errors = exc.errors()
    codes = {err.get("type") for err in errors}
    if len(codes) == 1 and codes <= CODED_ERRORS:
        return str(errors[0]["type"]), str(errors[0].get("msg"))
    return (
        "invalid_request",
        "The request body or parameters are invalid; see details for each field.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render ApiError and request validation errors as ErrorBody JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        return JSONResponse(
            status_code=exc.status, content=body.model_dump(mode="json"), headers=exc.headers
        )

    outage = OutageLog(log, "database (HTTP requests)")

    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # No connection from the pool in time (overload), or the database unreachable. The
        # request may be retried as it is: a status report resent with its event_id is applied
        # once even if it reached the broker before the failure. Logged once per outage, with
        # a count, not a traceback per request.
        outage.failed(exc)
        body = ErrorBody(
            code="database_unavailable",
            message="The service's database is busy or unreachable right now; retry in a few "
            "seconds with the same request (status reports: the same event_id, applied once).",
        )
        return JSONResponse(
            status_code=503, content=body.model_dump(mode="json"), headers={"Retry-After": "5"}
        )

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg")}
            for err in exc.errors()
        ]
        code, message = validation_code(exc)
        body = ErrorBody(code=code, message=message, details=problems)
        return JSONResponse(status_code=422, content=body.model_dump(mode="json"))
