"""Logs, configured in one place: JSON lines (or text) with the current trace on every record.

`DUBAN_LOG_FORMAT` picks `json` (the default: one JSON object per line, for a log pipeline) or
`text` (for a terminal, `make up`); `DUBAN_LOG_LEVEL` the level (INFO). Every record carries
`timestamp`, `level`, `logger`, `message`, `service`, `trace_id` and `span_id` (hex, empty
outside a span) and the `extra={...}` fields it was given. The service is the one whose span is
current (the three services share one process in tests), else the one configured.

Personal data never goes into a log message: the notifier logs addresses only masked
(`notifier.domain.contacts.mask`). httpx logs each request's URL at INFO, and a webhook URL
carries its key, so httpx and httpcore log from WARNING up. uvicorn's access lines never show
the query string of `/oauth/...` or the value of a secret-looking query parameter (`redact_target`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import unquote_plus

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("json", "text")
QUIET_LOGGERS = ("httpx", "httpcore")
"""Loggers that would print credentials (webhook keys in URLs) at INFO."""

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(service)s %(name)s [trace=%(trace_id)s span=%(span_id)s] "
    "%(message)s"
)


class TraceContext(logging.Filter):
    """Adds `trace_id`, `span_id` and `service` to every record that passes a handler."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record (never drops one)."""
        span = trace.get_current_span()
        ctx = span.get_span_context()
        record.trace_id = trace.format_trace_id(ctx.trace_id) if ctx.is_valid else ""
        record.span_id = trace.format_span_id(ctx.span_id) if ctx.is_valid else ""
        service = self.service
        if isinstance(span, ReadableSpan):
            service = str(span.resource.attributes.get(SERVICE_NAME, service))
        record.service = service
        return True


SECRET_PATHS = ("/oauth/",)
"""Paths whose query strings are never logged: credentials sent there by mistake."""
SECRET_PARAMETERS = frozenset(
    {"client_secret", "access_token", "refresh_token", "token", "secret", "password"}
)
"""Query parameters whose values are never logged, on any path."""


def redact_target(target: str) -> str:
    """A request target fit for a log: the query of SECRET_PATHS dropped, the values of
    SECRET_PARAMETERS elsewhere replaced (a client that put its secret in the URL must not
    have it copied into every log store)."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    if any(path.startswith(prefix) for prefix in SECRET_PATHS):
        return f"{path}?[redacted]"
    parts = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        secret = unquote_plus(name).strip().lower() in SECRET_PARAMETERS
        parts.append(f"{name}=[redacted]" if secret and eq else pair)
    return f"{path}?{'&'.join(parts)}"


class RedactAccessLog(logging.Filter):
    """Redacts the request target of uvicorn's access lines (`redact_target`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the target argument (never drops a record)."""
        args = record.args
        # uvicorn: '%s - "%s %s HTTP/%s" %d' % (client, method, target, version, status)
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per record: the standard fields, the trace, and the record's extras."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(service)s %(trace_id)s %(span_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,  # ISO 8601 in UTC, under "timestamp"
        json_ensure_ascii=False,  # Chinese agency names stay readable
    )


def make_handler(service: str, fmt: str, stream: TextIO) -> logging.Handler:
    """A handler writing records with their trace to `stream` as `json` or `text`."""
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"DUBAN_LOG_FORMAT={fmt!r} is not supported; use json or text")
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContext(service))
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def logging_config(service: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The logging of a service process, as a `logging.config.dictConfig` dictionary: the root
    logger's records to stderr in DUBAN_LOG_FORMAT at DUBAN_LOG_LEVEL, httpx and httpcore from
    WARNING up, uvicorn's loggers through the root. `serve` gives it to uvicorn, which applies it
    in its own process and in each worker process it spawns (`--workers N`)."""
    env = os.environ if env is None else env
    fmt = env.get("DUBAN_LOG_FORMAT", "json")
    if fmt.strip().lower() not in FORMATS:
        raise ValueError(f"DUBAN_LOG_FORMAT={fmt!r} is not supported; use json or text")
    handler = {"()": make_handler, "service": service, "fmt": fmt, "stream": "ext://sys.stderr"}
    loggers: dict[str, Any] = {name: {"level": "WARNING"} for name in QUIET_LOGGERS}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through the root handler
        loggers[name] = {"handlers": [], "propagate": True}
    loggers["uvicorn.access"]["filters"] = ["redact"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactAccessLog}},
        "handlers": {"duban": handler},
        "root": {"level": env.get("DUBAN_LOG_LEVEL", "INFO").upper(), "handlers": ["duban"]},
        "loggers": loggers,
    }


def uvicorn_options(service: str) -> dict[str, Any]:
    """What `uvicorn.run` needs to log as configured here, in every process it runs. uvicorn's
    own proxy headers are off: the app believes X-Forwarded-* only from DUBAN_TRUSTED_PROXIES
    (duban_shared.app), where uvicorn would believe any local connection."""
    return {"log_config": logging_config(service), "proxy_headers": False}
