"""The board's trace page helpers: where an alert links, and a trace's span tree."""

from __future__ import annotations

from typing import Any

from progress.api.board.traces import parse, trace_link

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_an_alert_links_to_the_viewer_else_to_the_boards_own_page() -> None:
    viewer = "http://jaeger.example/trace/{trace_id}"
    assert trace_link(viewer, "http://q", TRACE) == f"http://jaeger.example/trace/{TRACE}"
    assert trace_link(None, "http://q", TRACE) == f"/board/traces/{TRACE}"
    assert trace_link(None, None, TRACE) is None
    assert trace_link(viewer, "http://q", None) is None


def _span(span_id: str, parent: str, name: str, start: int, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": extra.pop("kind", 1),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 2_000_000),
        **extra,
    }


def _resource(service: str, *spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": list(spans)}],
    }


def test_spans_come_out_as_a_tree_in_start_order_with_offsets_links_and_errors() -> None:
    t0 = 1_700_000_000_000_000_000
    body = {
        "result": {
            "resourceSpans": [
                _resource(
                    "duban-notifier",
                    _span("c", "b", "process stalls", t0 + 5_000_000, kind=5),
                    _span("d", "c", "email send", t0 + 6_000_000, kind=3, status={"code": 2}),
                ),
                _resource(
                    "duban-progress",
                    _span(
                        "a",
                        "",
                        "POST /v1/events",
                        t0,
                        kind=2,
                        attributes=[
                            {"key": "duban.work_point.id", "value": {"stringValue": "p/35"}},
                            {"key": "http.status_code", "value": {"intValue": "202"}},
                        ],
                        links=[{"traceId": "f" * 32, "spanId": "e" * 16}],
                    ),
                    _span("b", "a", "send stalls", t0 + 1_000_000, kind=4),
                    # Its parent was never exported: shown as a root, not lost.
                    _span("z", "missing", "orphan", t0 + 9_000_000),
                ),
            ]
        }
    }
    spans = parse(body)
    assert [(s.span_id, s.depth) for s in spans] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("d", 3),
        ("z", 0),
    ]
    root, _, consumer, send, _ = spans
    assert (root.service, root.kind, root.offset_ms, root.duration_ms) == (
        "duban-progress",
        "server",
        0.0,
        2.0,
    )
    assert root.attributes == [("duban.work_point.id", "p/35"), ("http.status_code", "202")]
    assert root.links == [("f" * 32, "e" * 16)]
    assert (consumer.service, consumer.kind, consumer.offset_ms) == (
        "duban-notifier",
        "consumer",
        5.0,
    )
    assert send.error and not root.error


def test_an_empty_answer_is_no_spans() -> None:
    assert parse({"result": {"resourceSpans": []}}) == []
