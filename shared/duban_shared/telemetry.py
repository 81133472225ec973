"""Tracing set-up from the standard OTEL_* variables, one TracerProvider per service.

Each service gets its own provider (its own `service.name`), so the three services can also run
in one process (the end-to-end test) and still appear as three services in a trace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)


def create_tracer_provider(
    service_name: str,
    *,
    processors: Sequence[SpanProcessor] = (),
    env: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Build a provider whose exporters follow OTEL_TRACES_EXPORTER (otlp, console, none).

    OTEL_SERVICE_NAME overrides the service name; OTEL_RESOURCE_ATTRIBUTES adds attributes;
    the OTLP exporter reads OTEL_EXPORTER_OTLP_* itself. OTEL_SDK_DISABLED=true exports nothing.
    """
    env = os.environ if env is None else env
    name = env.get("OTEL_SERVICE_NAME") or service_name
    resource = Resource.create({"service.name": name, "service.namespace": "duban"})
    provider = TracerProvider(resource=resource)
    for processor in processors:
        provider.add_span_processor(processor)
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return provider
    for exporter in _exporter_names(env):
        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter != "none":
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={exporter!r} is not supported; use otlp, console or none"
            )
    return provider


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_TRACES_EXPORTER", "otlp")
    return [part.strip().lower() for part in raw.split(",") if part.strip()]
