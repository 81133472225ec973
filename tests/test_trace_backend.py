"""Traces in a real backend: the services export over OTLP to Jaeger and the test reads them back.

The three services' providers are made by `create_tracer_provider` from a mapping of standard
OTEL_* variables only (the real OTLP HTTP exporter, batched), as in production; an in-memory
copy of the spans only tells the test which trace ids to ask Jaeger for. Everything asserted
about edges and links comes from Jaeger's query API (`/api/v3/traces/{id}`, OTLP JSON).

`scripts/test.sh` starts Jaeger (`scripts/jaeger.sh start`) and sets DUBAN_TEST_JAEGER_OTLP and
DUBAN_TEST_JAEGER_QUERY; without them (a bare `pytest`) these tests are skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from duban_shared.telemetry import create_tracer_provider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from progress.api.board.session import COOKIE as BOARD_COOKIE

from tests.harness import SmtpSink, Spans, service_of, wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack, running_stack

JAEGER_OTLP = os.environ.get("DUBAN_TEST_JAEGER_OTLP")
JAEGER_QUERY = os.environ.get("DUBAN_TEST_JAEGER_QUERY")

pytestmark = pytest.mark.skipif(
    not (JAEGER_OTLP and JAEGER_QUERY),
    reason="no trace backend: DUBAN_TEST_JAEGER_OTLP and DUBAN_TEST_JAEGER_QUERY are not set "
    "(scripts/test.sh starts Jaeger with scripts/jaeger.sh and sets them)",
)

# OTLP's span kinds (opentelemetry.proto.trace.v1.Span.SpanKind), as Jaeger's v3 API returns them.
OTLP_KIND = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class JaegerSpan:
    """One span as Jaeger stored it."""

    trace_id: str
    span_id: str
    parent_id: str  # "" for a root
    service: str
    name: str
    kind: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each link, hex


class Jaeger:
    """Jaeger's query API: traces by id, parsed from OTLP JSON."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def trace(self, trace_id: str) -> dict[str, JaegerSpan]:
        """The spans Jaeger has of a trace by span id (none yet: empty)."""
        response = await self.http.get(f"/api/v3/traces/{trace_id}")
        if response.status_code == 404:
            return {}
        assert response.status_code == 200, response.text
        found = {}
        for resource_spans in response.json()["result"]["resourceSpans"]:
            service = _attributes(resource_spans["resource"].get("attributes", []))["service.name"]
            for scope_spans in resource_spans.get("scopeSpans", []):
                for raw in scope_spans.get("spans", []):
                    span = JaegerSpan(
                        trace_id=raw["traceId"],
                        span_id=raw["spanId"],
                        parent_id=raw.get("parentSpanId", ""),
                        service=service,
                        name=raw["name"],
                        kind=OTLP_KIND[raw.get("kind", 1)],
                        attributes=_attributes(raw.get("attributes", [])),
                        links=tuple((li["traceId"], li["spanId"]) for li in raw.get("links", [])),
                    )
                    found[span.span_id] = span
        return found

    async def until(
        self, trace_id: str, complete: Callable[[dict[str, JaegerSpan]], bool], what: str
    ) -> dict[str, JaegerSpan]:
        """Poll the trace until `complete` holds for what Jaeger has of it."""
        seen: dict[str, JaegerSpan] = {}

        async def done() -> bool:
            nonlocal seen
            seen = await self.trace(trace_id)
            return complete(seen)

        await wait_for(done, what=f"Jaeger to hold {what} (trace {trace_id})")
        return seen


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: next(iter(item["value"].values()), None) for item in items}


def chain_to_root(spans: dict[str, JaegerSpan], span: JaegerSpan) -> list[JaegerSpan]:
    """The span and its ancestors in Jaeger's copy of the trace, child first; stops at a gap."""
    chain = [span]
    while chain[-1].parent_id in spans:
        chain.append(spans[chain[-1].parent_id])
    return chain


def named(spans: dict[str, JaegerSpan], name: str) -> list[JaegerSpan]:
    """The spans of one name."""
    return [s for s in spans.values() if s.name == name]


def hex_trace(span: ReadableSpan) -> str:
    """The trace id of an in-memory span as Jaeger writes it."""
    assert span.context is not None
    return format(span.context.trace_id, "032x")


@dataclass
class Traced:
    """The running system, its providers, and Jaeger's API."""

    stack: Stack
    providers: list[TracerProvider]
    jaeger: Jaeger

    async def flush(self) -> None:
        """Export every span the services have finished (the batch processors' queues)."""
        flushed = await asyncio.gather(*(asyncio.to_thread(p.force_flush) for p in self.providers))
        assert all(flushed), "a provider did not flush within its timeout"

    def memory_spans(self, name: str) -> list[ReadableSpan]:
        """Finished spans of one name, from the in-memory copy."""
        return [s for s in self.stack.spans.all() if s.name == name]


@pytest.fixture
async def traced(
    kafka_bootstrap: str,
    topic_prefix: str,
    make_database: Callable[[str], str],
    smtp: SmtpSink,
    spans: Spans,
) -> AsyncIterator[Traced]:
    """The three services exporting their spans to Jaeger, configured by OTEL_* variables."""
    assert JAEGER_OTLP and JAEGER_QUERY
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": JAEGER_OTLP,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms; force_flush does the rest
        "OTEL_BSP_MAX_QUEUE_SIZE": "100000",  # start-up (plan import) makes thousands of spans
    }
    providers: list[TracerProvider] = []

    def provider(service: str) -> TracerProvider:
        made = create_tracer_provider(
            service, processors=[SimpleSpanProcessor(spans.exporter)], env=env
        )
        providers.append(made)
        return made

    async with httpx.AsyncClient(base_url=JAEGER_QUERY, timeout=10) as http:
        try:
            async with running_stack(
                kafka_bootstrap, topic_prefix, make_database, smtp, spans, tracer_provider=provider
            ) as stack:
                yield Traced(stack, providers, Jaeger(http))
        finally:
            for made in providers:
                await asyncio.to_thread(made.shutdown)


async def _mail_count(stack: Stack, expected: int) -> bool:
    return len(stack.smtp.mailbox(FORESTRY_MAIL)) >= expected


async def _memory_chain_complete(traced: Traced, within_trace: str) -> bool:
    """An `email send` span of the trace has ended, and so have all its ancestors."""
    spans = traced.stack.spans
    for smtp_span in traced.memory_spans("email send"):
        if (
            hex_trace(smtp_span) == within_trace
            and spans.chain_to_root(smtp_span)[-1].parent is None
        ):
            return True
    return False


def _path(chain: list[JaegerSpan]) -> list[tuple[str, str, str]]:
    """Root first: (service, name, kind) of the spans that cross a process or the network."""
    return [(s.service, s.name, s.kind) for s in reversed(chain) if s.kind != "internal"]


async def test_blocked_report_is_one_trace_in_jaeger_across_the_services(traced: Traced) -> None:
    stack = traced.stack
    prefix = stack.topic_prefix
    response = await stack.post_event(
        stack.forestry, 35, "blocked", percent=40, note="林分优化用地审批未完成"
    )
    assert response.status_code == 202, response.text
    [ingest] = traced.memory_spans("POST /v1/events")
    trace_id = hex_trace(ingest)

    await wait_for(lambda: _mail_count(stack, 1), what="the stall email to 市林业局")
    await wait_for(
        lambda: _memory_chain_complete(traced, trace_id),
        what="every span from the POST to the SMTP send to end",
    )
    await traced.flush()

    def has_path_to_email(spans: dict[str, JaegerSpan]) -> bool:
        return any(not chain_to_root(spans, s)[-1].parent_id for s in named(spans, "email send"))

    spans = await traced.jaeger.until(trace_id, has_path_to_email, "the POST-to-email chain")

    # One trace, parent to child: HTTP -> Kafka -> progress -> Kafka -> notifier -> SMTP.
    [smtp_span] = named(spans, "email send")
    chain = chain_to_root(spans, smtp_span)
    root = chain[-1]
    assert root.parent_id == "" and root.span_id == format(ingest.context.span_id, "016x")
    assert _path(chain) == [
        ("duban-progress", "POST /v1/events", "server"),
        ("duban-progress", f"send {prefix}duban.status.v1", "producer"),
        ("duban-progress", f"process {prefix}duban.status.v1", "consumer"),
        ("duban-progress", f"send {prefix}duban.stalls.v1", "producer"),
        ("duban-notifier", f"process {prefix}duban.stalls.v1", "consumer"),
        ("duban-notifier", "email send", "client"),
    ]
    assert {s.service for s in spans.values()} == {"duban-progress", "duban-notifier"}
    # The consumer's batch is a trace of its own, linked to the report's send span.
    [sent] = [s for s in chain if s.name == f"send {prefix}duban.status.v1"]
    batches = [
        s
        for s in traced.memory_spans(f"process {prefix}duban.status.v1")
        if s.parent is None
        and any(
            format(link.context.trace_id, "032x") == trace_id
            and format(link.context.span_id, "016x") == sent.span_id
            for link in s.links
        )
    ]
    assert len(batches) == 1 and hex_trace(batches[0]) != trace_id
    assert root.attributes["duban.work_point.id"] == f"{PLAN}/35"
    stall_consumer = chain[-5]
    assert stall_consumer.attributes["duban.stall.transition"] == "opened"
    assert stall_consumer.attributes["duban.stall.reason"] == "blocked"
    assert smtp_span.attributes["duban.notification.channel"] == "email"
    # Addresses reach spans only masked.
    assert all(FORESTRY_MAIL not in str(s.attributes) for s in spans.values())

    # The ingestion span links to spans of other traces: the registry's publication of the work
    # point snapshot it validated against, and the two database rounds that answered it (each
    # its own trace, shared by the requests of a round), with their statements below them.
    linked: dict[str, tuple[JaegerSpan, dict[str, JaegerSpan]]] = {}
    for linked_trace, linked_span_id in root.links:
        assert linked_trace != trace_id
        linked_spans = await traced.jaeger.until(
            linked_trace, lambda found, wanted=linked_span_id: wanted in found, "a linked span"
        )
        linked[linked_spans[linked_span_id].name] = (linked_spans[linked_span_id], linked_spans)
    published_name = f"send {prefix}duban.registry.work-points.v1"
    assert set(linked) == {published_name, "ingest look-up round", "ingest record round"}
    for round_name, statement in (
        ("ingest look-up round", "SELECT"),
        ("ingest record round", "INSERT"),
    ):
        round_span, round_trace = linked[round_name]
        assert round_span.parent_id == "" and round_span.service == "duban-progress"
        assert (trace_id, root.span_id) in round_span.links
        below = [s for s in round_trace.values() if s.parent_id == round_span.span_id]
        assert any(str(s.attributes.get("db.statement", "")).startswith(statement) for s in below)
    published, _ = linked[published_name]
    assert (published.service, published.name, published.kind) == (
        "duban-registry",
        f"send {prefix}duban.registry.work-points.v1",
        "producer",
    )
    assert published.attributes["messaging.kafka.message.key"] == f"{PLAN}/35"

    # An operator finds this trace from the alert, and from the notification log entry.
    office = await stack.auth(stack.office)
    [alert] = (await stack.notifier_http.get("/v1/alerts", headers=office)).json()["items"]
    assert alert["trace_id"] == trace_id
    log = await stack.notifier_http.get(
        "/v1/notifications", params={"alert_id": alert["id"]}, headers=office
    )
    [entry] = log.json()
    assert (entry["status"], entry["channel"], entry["trace_id"]) == ("sent", "email", trace_id)

    await _board_shows_the_trace(traced, trace_id, root.span_id, published.trace_id)


async def _board_shows_the_trace(
    traced: Traced, trace_id: str, root_span_id: str, linked_trace: str
) -> None:
    """The board's trace page (what `make up` links alerts to) renders the trace from Jaeger."""
    stack = traced.stack
    stack.progress.settings.trace_query_url = JAEGER_QUERY
    office = {"Cookie": f"{BOARD_COOKIE}={await stack.token(stack.office)}"}
    page = await stack.progress_http.get(f"/board/traces/{trace_id}", headers=office)
    assert page.status_code == 200, page.text
    html = page.text
    prefix = stack.topic_prefix
    for name in ("POST /v1/events", f"process {prefix}duban.stalls.v1", "email send"):
        assert f">{name}<" in html, name
    assert f'id="span-{root_span_id}" data-span="{root_span_id}" data-parent=""' in html
    assert f'href="/board/traces/{linked_trace}#span-' in html  # the registry link
    assert FORESTRY_MAIL not in html

    # Only the office; a well-formed id only; a trace Jaeger does not have; Jaeger down.
    agency = {"Cookie": f"{BOARD_COOKIE}={await stack.token(stack.forestry)}"}
    refused = await stack.progress_http.get(f"/board/traces/{trace_id}", headers=agency)
    assert refused.status_code == 403
    malformed = await stack.progress_http.get("/board/traces/not-a-trace", headers=office)
    assert malformed.status_code == 404 and "32位十六进制" in malformed.text
    unknown = await stack.progress_http.get(f"/board/traces/{'0' * 31}1", headers=office)
    assert unknown.status_code == 404 and "没有这条链路" in unknown.text
    stack.progress.settings.trace_query_url = "http://127.0.0.1:9"  # nothing listens there
    down = await stack.progress_http.get(f"/board/traces/{trace_id}", headers=office)
    assert down.status_code == 502 and "暂不可用" in down.text


async def test_sweeper_span_links_to_the_last_reports_trace_in_jaeger(traced: Traced) -> None:
    stack = traced.stack
    prefix = stack.topic_prefix
    response = await stack.post_event(stack.forestry, 35, "on_track", percent=70)
    await stack.until_applied(response)
    [ingest] = traced.memory_spans("POST /v1/events")
    report_trace = hex_trace(ingest)

    # Silent from Mon 23 Sep 2024, the 14th working day after the report (test_end_to_end).
    stack.clock.set(datetime.fromisoformat("2024-09-23T08:00:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 50
    [sweep] = traced.memory_spans("sweep work points")
    sweep_trace = hex_trace(sweep)
    assert sweep_trace != report_trace
    await wait_for(lambda: _mail_count(stack, 1), what="the silence email")
    await wait_for(
        lambda: _memory_chain_complete(traced, sweep_trace),
        what="every span from the sweep to the SMTP send to end",
    )
    await traced.flush()

    def transition_of_35(spans: dict[str, JaegerSpan]) -> JaegerSpan | None:
        for span in named(spans, "stall transition"):
            if span.attributes.get("duban.work_point.id") == f"{PLAN}/35":
                return span
        return None

    def swept(spans: dict[str, JaegerSpan]) -> bool:
        emails = named(spans, "email send")
        return transition_of_35(spans) is not None and any(
            not chain_to_root(spans, s)[-1].parent_id for s in emails
        )

    spans = await traced.jaeger.until(sweep_trace, swept, "the sweep and its email")

    # The sweep is a trace of its own, from the timer to the SMTP send.
    [smtp_span] = named(spans, "email send")
    assert _path(chain_to_root(spans, smtp_span)) == [
        ("duban-progress", f"send {prefix}duban.stalls.v1", "producer"),
        ("duban-notifier", f"process {prefix}duban.stalls.v1", "consumer"),
        ("duban-notifier", "email send", "client"),
    ]
    root = chain_to_root(spans, smtp_span)[-1]
    assert (root.service, root.name, root.parent_id) == ("duban-progress", "sweep work points", "")

    # Work point 35's transition links to its last report's trace (at the span that sent the
    # report to the status topic: the consumer traces a batch as one span of its own, linked
    # to its reports' traces); the other 49 work points never had a report, so nothing to link.
    transition = transition_of_35(spans)
    assert transition is not None and transition.parent_id == root.span_id
    assert transition.attributes["duban.stall.transition"] == "opened"
    [(linked_trace, linked_span_id)] = transition.links
    assert linked_trace == report_trace
    others = [s for s in named(spans, "stall transition") if s is not transition]
    assert len(others) == 49 and all(s.links == () for s in others)

    report_spans = await traced.jaeger.until(
        report_trace, lambda found: linked_span_id in found, "the last report's send span"
    )
    linked = report_spans[linked_span_id]
    assert (linked.service, linked.name, linked.kind) == (
        "duban-progress",
        f"send {prefix}duban.status.v1",
        "producer",
    )
    assert chain_to_root(report_spans, linked)[-1].name == "POST /v1/events"
    assert service_of(ingest) == "duban-progress" and ingest.kind == SpanKind.SERVER
