"""HTTP error shape shared by the services: a stable code and a message a person can act on."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy.exc
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Send

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
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip")]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    """What every error response carries: a stable `code` to act on in code, a `message` for a
    person, and sometimes `details` (e.g. the fields a 422 refused)."""

    code: str = Field(examples=["invalid_request"], description="Stable; see the error table.")
    message: str = Field(
        examples=["The request body or parameters are invalid; see details for each field."]
    )
    details: Any | None = None


ERROR_STATUSES: dict[int, str] = {
    400: "The request is malformed at the HTTP level (e.g. `invalid_content_length`).",
    401: "No valid bearer token: `missing_token`, `invalid_token`, `token_expired`, ...; get a "
    "new token from the registry's POST /oauth/token.",
    403: "The token's client may not do this (e.g. `office_only`, `not_your_work_point`).",
    404: "What the path names does not exist (`unknown_plan`, `unknown_work_point`, ...).",
    405: "The path does not take this method (`method_not_allowed`).",
    409: "The request conflicts with the current state (e.g. `event_id_reused`).",
    411: "A body was sent without a Content-Length (`length_required`).",
    413: "The body or batch is too large (`body_too_large`, `batch_too_large`).",
    422: "The request is invalid: `invalid_request` (fields, see details), a body that is not "
    "strict JSON (`invalid_json`, `invalid_encoding`, `duplicate_key`, `json_too_deep`, "
    "`number_too_long`, `number_out_of_range`, `invalid_unicode`) or a business rule.",
    429: "Too many requests from this client (`rate_limited`); retry after Retry-After.",
    503: "A dependency is unavailable (`database_unavailable`, `broker_unavailable`); retry "
    "after Retry-After with the same request.",
}
"""Every error status an operation may answer, with what it means."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses, each with the ErrorBody schema."""
    return {
        status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses
    }


def error_json(error: ApiError) -> bytes:
    """An ApiError's body as JSON bytes."""
    body = ErrorBody(code=error.code, message=error.message, details=error.details)
    return json.dumps(body.model_dump(mode="json"), ensure_ascii=False).encode()


async def refuse(send: Send, error: ApiError) -> None:
    """Answer an ApiError from ASGI middleware, before any route runs."""
    body = error_json(error)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (the framework's Allow names only the first
    route's)."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(allowed))


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

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Raised by the framework itself: no route for the path (404), a method the path does
        # not take (405), a body it could not read (400).
        if exc.status_code == 404:
            code = "not_found"
            message = (
                f"No operation at {request.url.path}; the operations are listed in this "
                "service's /openapi.json (and /docs)."
            )
        elif exc.status_code == 405:
            code = "method_not_allowed"
            allowed = _allowed_methods(request)
            headers = {**(exc.headers or {}), "Allow": allowed}
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}."
        else:
            code = f"http_{exc.status_code}"
            message = str(exc.detail)
        body = ErrorBody(code=code, message=message)
        return JSONResponse(
            status_code=exc.status_code,
            content=body.model_dump(mode="json"),
            headers=headers if exc.status_code == 405 else exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception) -> JSONResponse:
        # The last resort (the error is logged with its traceback by the server): a bug, never
        # the client's input, which has a 4xx of its own.
        body = ErrorBody(
            code="internal_error",
            message="The service failed unexpectedly; the error is in its log. Retry later, "
            "and report the time of the request to the operators if it persists.",
        )
        return JSONResponse(status_code=500, content=body.model_dump(mode="json"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg")}
            for err in exc.errors()
        ]
        code, message = validation_code(exc)
        body = ErrorBody(code=code, message=message, details=problems)
        return JSONResponse(status_code=422, content=body.model_dump(mode="json"))
