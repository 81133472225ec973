"""An alert's trace on the board, read from the trace backend's query API (Jaeger).

Under `make up` the Jaeger built from its Go module has no web UI, and operators still need to
answer "why did this agency get this message?" from the trace. When DUBAN_PROGRESS_TRACE_UI_URL
(a real trace viewer) is not set but DUBAN_PROGRESS_TRACE_QUERY_URL is, the board links each
alert to `/board/traces/{trace_id}`, which reads the trace from Jaeger's `/api/v3/traces/{id}`
(OTLP JSON) and shows its spans as a tree: service, operation, start offset, duration, status,
attributes, and span links (each link leads to the linked trace's page).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

TRACE_ID = re.compile(r"[0-9a-f]{32}")
"""A W3C trace id: 32 lowercase hex digits."""

# OTLP's span kinds (opentelemetry.proto.trace.v1.Span.SpanKind).
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_ERROR = 2


class TraceUnavailable(Exception):
    """The trace backend could not be asked, or answered something unreadable."""


@dataclass
class TraceSpan:
    """One span of a trace, placed in the tree."""

    span_id: str
    parent_id: str
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: list[tuple[str, str]]
    links: list[tuple[str, str]]  # (trace id, span id)
    depth: int = 0
    offset_ms: float = 0.0
    children: list[TraceSpan] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        """How long the span took, in milliseconds."""
        return max(self.end_ns - self.start_ns, 0) / 1e6


def trace_link(ui_template: str | None, query_url: str | None, trace_id: str | None) -> str | None:
    """Where an alert's trace is shown: the trace viewer when one is configured, else the
    board's own trace page when a query API is; nothing when the alert has no trace."""
    if not trace_id:
        return None
    if ui_template:
        return ui_template.replace("{trace_id}", trace_id)
    if query_url:
        return f"/board/traces/{trace_id}"
    return None


def _value(raw: dict[str, Any]) -> str:
    """An OTLP AnyValue as text."""
    if not raw:
        return ""
    kind, value = next(iter(raw.items()))
    if kind == "arrayValue":
        return ", ".join(_value(v) for v in value.get("values", []))
    return str(value)


def _attributes(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((item["key"], _value(item.get("value", {}))) for item in items)


def parse(body: dict[str, Any]) -> list[TraceSpan]:
    """The spans of an OTLP JSON trace (Jaeger's v3 answer) in tree order: each root by start
    time, then its children depth first, with depth and offset from the trace's first span."""
    spans: dict[str, TraceSpan] = {}
    for resource_spans in body["result"]["resourceSpans"]:
        resource = dict(_attributes(resource_spans.get("resource", {}).get("attributes", [])))
        service = resource.get("service.name", "?")
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                span = TraceSpan(
                    span_id=raw["spanId"],
                    parent_id=raw.get("parentSpanId", ""),
                    service=service,
                    name=raw["name"],
                    kind=KINDS.get(int(raw.get("kind", 1)), "internal"),
                    start_ns=int(raw["startTimeUnixNano"]),
                    end_ns=int(raw.get("endTimeUnixNano", raw["startTimeUnixNano"])),
                    error=int(raw.get("status", {}).get("code", 0)) == STATUS_ERROR,
                    attributes=_attributes(raw.get("attributes", [])),
                    links=[(li["traceId"], li["spanId"]) for li in raw.get("links", [])],
                )
                spans[span.span_id] = span
    if not spans:
        return []
    first = min(s.start_ns for s in spans.values())
    roots: list[TraceSpan] = []
    for span in spans.values():
        span.offset_ms = (span.start_ns - first) / 1e6
        parent = spans.get(span.parent_id)
        # A span whose parent is missing (not exported yet, or in another process's batch)
        # is shown as a root rather than lost.
        (parent.children if parent is not None else roots).append(span)
    ordered: list[TraceSpan] = []

    def walk(span: TraceSpan, depth: int) -> None:
        span.depth = depth
        ordered.append(span)
        for child in sorted(span.children, key=lambda s: s.start_ns):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_ns):
        walk(root, 0)
    return ordered


async def fetch_trace(http: httpx.AsyncClient, query_url: str, trace_id: str) -> list[TraceSpan]:
    """The trace's spans from the query API (none: the backend does not know the trace)."""
    try:
        response = await http.get(f"{query_url.rstrip('/')}/api/v3/traces/{trace_id}")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise TraceUnavailable(f"the trace backend answered {response.status_code}")
        return parse(response.json())
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("board: trace %s from %s unavailable: %r", trace_id, query_url, exc)
        raise TraceUnavailable(str(exc)) from exc
