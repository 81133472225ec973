"""Structured logs: JSON lines with the trace of the current span, and no raw contact."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from duban_shared.logs import logging_config, make_handler

from tests.stack import FORESTRY_MAIL, Stack
from tests.test_span_privacy import PHONE, RAW_PHONE, alert_with_fallback_and_retry


@pytest.fixture
def notifier_log() -> Iterator[io.StringIO]:
    """The notifier's records as the production JSON handler writes them."""
    stream = io.StringIO()
    handler = make_handler("duban-test", "json", stream)
    logger = logging.getLogger("notifier")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


async def test_delivery_logs_carry_the_trace_and_no_raw_contact(
    stack: Stack, notifier_log: io.StringIO
) -> None:
    await alert_with_fallback_and_retry(stack)
    text = notifier_log.getvalue()
    for secret in (FORESTRY_MAIL, "linye@", PHONE, RAW_PHONE):
        assert secret not in text
    records = [json.loads(line) for line in text.splitlines()]
    by_message = {r["message"]: r for r in records}
    failed_sms = next(m for m in by_message if m.startswith("delivery to +86***8000 over sms"))
    failed_mail = next(
        m for m in by_message if m.startswith("delivery to li***@zhaoqing.example.cn over email")
    )
    sent = "message sent to li***@zhaoqing.example.cn over email (1 deliveries)"
    assert sent in by_message

    send_spans = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
        for s in stack.spans.all()
        if s.name in {"sms send", "email send"} and s.context is not None
    }
    for message in (failed_sms, failed_mail, sent):
        record = by_message[message]
        assert record["service"] == "duban-notifier"  # the service of the current span
        assert record["level"] in {"INFO", "WARNING"}
        assert record["logger"] == "notifier.use_cases.dispatching"
        assert record["timestamp"]
        # Logged inside the send span: its trace and span ids.
        assert (record["trace_id"], record["span_id"]) in send_spans
    assert by_message[sent]["channel"] == "email"  # extra fields come along
    assert by_message[sent]["alert_id"]


def _in_fresh_process(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a new interpreter (logging configured there, not in the test process)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )


def test_text_format_and_configuration() -> None:
    script = (
        "import logging, logging.config\n"
        "from duban_shared.logs import logging_config\n"
        "from duban_shared.telemetry import create_tracer_provider\n"
        "logging.config.dictConfig(logging_config('duban-x'))\n"
        "provider = create_tracer_provider(\n"
        "    'duban-progress', env={'OTEL_TRACES_EXPORTER': 'none'})\n"
        "with provider.get_tracer('test').start_as_current_span('work') as span:\n"
        "    logging.getLogger('progress.test').warning('inside')\n"
        "logging.getLogger('progress.test').warning('outside')\n"
        "print(format(span.get_span_context().trace_id, '032x'))\n"
        "print(logging.getLogger('httpx').getEffectiveLevel())\n"
    )
    done = _in_fresh_process(script, DUBAN_LOG_FORMAT="text", DUBAN_LOG_LEVEL="INFO")
    trace_id, httpx_level = done.stdout.split()
    assert int(httpx_level) == logging.WARNING  # webhook keys in URLs
    inside, outside = done.stderr.splitlines()
    assert f"WARNING duban-progress progress.test [trace={trace_id} span=" in inside
    assert inside.endswith("inside")
    assert "WARNING duban-x progress.test [trace= span=] outside" in outside
    with pytest.raises(ValueError, match="DUBAN_LOG_FORMAT"):
        logging_config("duban-x", env={"DUBAN_LOG_FORMAT": "xml"})


def test_serve_gives_uvicorn_the_same_logging_for_each_of_its_processes() -> None:
    # uvicorn applies log_config in every worker process it spawns: run it in a fresh one.
    script = (
        "import logging, logging.config\n"
        "from duban_shared.logs import uvicorn_options\n"
        "logging.config.dictConfig(uvicorn_options('duban-progress')['log_config'])\n"
        "logging.getLogger('uvicorn.access').info('POST /v1/events 202')\n"
        "logging.getLogger('httpx').info('https://qyapi.weixin.qq.com/?key=secret')\n"
    )
    done = _in_fresh_process(script, DUBAN_LOG_FORMAT="json", DUBAN_LOG_LEVEL="INFO")
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["logger"], r["message"], r["service"]) for r in lines] == [
        ("uvicorn.access", "POST /v1/events 202", "duban-progress")
    ]


def test_uvicorns_access_log_never_shows_secrets_sent_in_urls() -> None:
    # A real uvicorn, configured as `serve` configures it, answering requests with secrets in
    # their query strings (the registry refuses them; what matters here is what is logged).
    script = (
        "import asyncio, socket, httpx, uvicorn\n"
        "from duban_shared.logs import uvicorn_options\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http': return\n"
        "    await send({'type': 'http.response.start', 'status': 400, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b''})\n"
        "sock = socket.socket(); sock.bind(('127.0.0.1', 0))\n"
        "port = sock.getsockname()[1]\n"
        "config = uvicorn.Config(app, lifespan='off', **uvicorn_options('duban-registry'))\n"
        "server = uvicorn.Server(config)\n"
        "async def main():\n"
        "    task = asyncio.create_task(server.serve(sockets=[sock]))\n"
        "    while not server.started: await asyncio.sleep(0.01)\n"
        "    async with httpx.AsyncClient(base_url=f'http://127.0.0.1:{port}') as http:\n"
        "        await http.post('/oauth/token?client_id=agency-1&client_secret=dcs_LEAK1')\n"
        "        await http.get('/v1/plans?access_token=eyLEAK2&limit=5')\n"
        "        await http.get('/board/login?next=/board&Client_Secret=dcs_LEAK3')\n"
        "    server.should_exit = True\n"
        "    await task\n"
        "asyncio.run(main())\n"
    )
    done = _in_fresh_process(script, DUBAN_LOG_FORMAT="json", DUBAN_LOG_LEVEL="INFO")
    access = [
        json.loads(line)["message"]
        for line in done.stderr.splitlines()
        if json.loads(line)["logger"] == "uvicorn.access"
    ]
    assert len(access) == 3, done.stderr
    assert "LEAK" not in done.stderr
    assert '"POST /oauth/token?[redacted] HTTP/1.1" 400' in access[0]
    assert "/v1/plans?access_token=[redacted]&limit=5" in access[1]
    assert "/board/login?next=/board&Client_Secret=[redacted]" in access[2]
