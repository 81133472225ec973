"""HTTP error shape shared by the services: a stable code and a message a person can act on."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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


def install_error_handlers(app: FastAPI) -> None:
    """Render ApiError and request validation errors as ErrorBody JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        return JSONResponse(
            status_code=exc.status, content=body.model_dump(mode="json"), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg")}
            for err in exc.errors()
        ]
        body = ErrorBody(
            code="invalid_request",
            message="The request body or parameters are invalid; see details for each field.",
            details=problems,
        )
        return JSONResponse(status_code=422, content=body.model_dump(mode="json"))
