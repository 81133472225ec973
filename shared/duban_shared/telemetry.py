"""Tracing set-up from the standard OTEL_* variables, one TracerProvider per service.

Each service gets its own provider (its own `service.name`), so the three services can also run
in one process (the end-to-end test) and still appear as three services in a trace. Metrics
follow the same rules (duban_shared.metrics); `instrument_engine` adds database spans.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


def create_tracer_provider(
    service_name: str,
    *,
    processors: Sequence[SpanProcessor] = (),
    env: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Build a provider whose exporters follow OTEL_TRACES_EXPORTER (otlp, console, none).

    OTEL_SERVICE_NAME overrides the service name; OTEL_RESOURCE_ATTRIBUTES adds attributes;
    OTEL_SDK_DISABLED=true exports nothing. The OTLP (HTTP/protobuf) exporter and its batch
    processor follow OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION} and
    OTEL_BSP_* read from `env` (the process environment by default), so a test can point one
    provider at a trace backend without touching os.environ.
    """
    env = os.environ if env is None else env
    provider = TracerProvider(resource=service_resource(service_name, env))
    for processor in processors:
        provider.add_span_processor(processor)
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return provider
    for exporter in exporter_names(env):
        if exporter == "otlp":
            provider.add_span_processor(_otlp_processor(env))
        elif exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter != "none":
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={exporter!r} is not supported; use otlp, console or none"
            )
    return provider


def service_resource(service_name: str, env: Mapping[str, str] | None = None) -> Resource:
    """The resource of a service's telemetry: OTEL_SERVICE_NAME wins over the given name."""
    env = os.environ if env is None else env
    name = env.get("OTEL_SERVICE_NAME") or service_name
    return Resource.create({SERVICE_NAME: name, "service.namespace": "duban"})


def exporter_names(env: Mapping[str, str], variable: str = "OTEL_TRACES_EXPORTER") -> list[str]:
    raw = env.get(variable, "otlp")
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def instrument_engine(
    engine: AsyncEngine, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """Give a service's engine database client spans on the service's own providers.

    The spans carry the SQL with its placeholders, never the bound values (so no address or
    note text reaches a span). The instrumentor's global `instrument()` patches every engine of
    the process with one provider; three services in one process need one tracer each.
    """
    from opentelemetry.instrumentation.sqlalchemy.version import __version__

    scope = "opentelemetry.instrumentation.sqlalchemy"
    tracer = tracer_provider.get_tracer(scope, __version__)
    usage = meter_provider.get_meter(scope, __version__).create_up_down_counter(
        "db.client.connections.usage",
        unit="connections",
        description="The number of connections that are currently in state described by the "
        "state attribute.",
    )
    EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def _otlp_processor(env: Mapping[str, str]) -> BatchSpanProcessor:
    """A batch processor and OTLP HTTP exporter configured from the OTEL_* entries of `env`."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.util.re import parse_env_headers

    def otlp(name: str) -> str | None:  # the traces-specific variable wins over the general one
        return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}")

    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
        endpoint = base.rstrip("/") + "/v1/traces"
    timeout = otlp("TIMEOUT")  # seconds, as the Python SDK reads it
    compression = (otlp("COMPRESSION") or "none").strip().lower()
    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        headers=parse_env_headers(otlp("HEADERS") or "", liberal=True),
        timeout=float(timeout) if timeout else 10.0,
        compression=Compression(compression),
    )

    def bsp(name: str) -> int | None:  # absent: the SDK's default
        raw = env.get(f"OTEL_BSP_{name}")
        return int(raw) if raw else None

    return BatchSpanProcessor(
        exporter,
        max_queue_size=bsp("MAX_QUEUE_SIZE"),
        schedule_delay_millis=bsp("SCHEDULE_DELAY"),
        max_export_batch_size=bsp("MAX_EXPORT_BATCH_SIZE"),
        export_timeout_millis=bsp("EXPORT_TIMEOUT"),
    )
