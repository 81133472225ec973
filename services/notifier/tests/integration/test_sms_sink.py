"""The local SMS sink: it speaks the http_sms contract and keeps every message as a file."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from duban_shared.clock import SystemClock
from notifier.adapters.channels import ChannelError, HttpSmsChannel, OutgoingMessage
from notifier.adapters.sms_sink import SmsSink, make_server
from notifier.domain.sms_segments import analyze
from notifier.settings import HttpSmsSettings
from pydantic import SecretStr

TOKEN = "sink-token"
TEXT = "市林业局:第三十五项“加强林业数字化应用”进展停滞(报告工作受阻)。确认:http://x/a/1"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[SmsSink, str]]:
    kept = SmsSink(tmp_path / "sms", TOKEN)
    server = make_server(kept)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield kept, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def test_a_post_like_the_channel_sends_is_kept_once_and_listed(
    sink: tuple[SmsSink, str], http: httpx.AsyncClient
) -> None:
    kept, url = sink
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "ref-1"}
    body = {"to": "+8613800138000", "text": TEXT, "reference": "ref-1"}
    first = await http.post(f"{url}/v1/sms", json=body, headers=headers)
    again = await http.post(f"{url}/v1/sms", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"id": "sms-000001", "segments": analyze(TEXT).segments}
    [path] = sorted(kept.folder.glob("*.json"))
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert (stored["to"], stored["text"], stored["reference"]) == ("+8613800138000", TEXT, "ref-1")

    page = await http.get(f"{url}/")
    assert page.status_code == 200 and "第三十五项" in page.text and "+8613800138000" in page.text
    assert [m["id"] for m in (await http.get(f"{url}/messages")).json()] == ["sms-000001"]

    wrong = await http.post(f"{url}/v1/sms", json=body, headers={"Authorization": "Bearer no"})
    bad = await http.post(
        f"{url}/v1/sms", content=b"{", headers={"Authorization": headers["Authorization"]}
    )
    assert (wrong.status_code, bad.status_code) == (401, 400)
    assert len(list(kept.folder.glob("*.json"))) == 1


async def test_the_http_sms_channel_delivers_to_the_sink(sink: tuple[SmsSink, str]) -> None:
    kept, url = sink
    settings = HttpSmsSettings(url=f"{url}/v1/sms", token=SecretStr(TOKEN), timeout_seconds=5)
    channel = HttpSmsChannel(settings, clock=SystemClock())
    try:
        receipt = await channel.send(
            OutgoingMessage(recipient="13800138000", subject="", text=TEXT, reference="n-7")
        )
        assert (receipt.recipient, receipt.provider_id, receipt.segments) == (
            "+8613800138000",
            "sms-000001",
            analyze(TEXT).segments,
        )
        [message] = kept.messages()
        assert message["text"] == TEXT and message["reference"] == "n-7"

        wrong = HttpSmsChannel(
            HttpSmsSettings(url=f"{url}/v1/sms", token=SecretStr("other"), timeout_seconds=5)
        )
        with pytest.raises(ChannelError) as refused:
            await wrong.send(
                OutgoingMessage(recipient="13800138000", subject="", text=TEXT, reference="n-8")
            )
        await wrong.aclose()
        assert refused.value.permanent  # 401: a wrong token is not retried
        assert len(kept.messages()) == 1
    finally:
        await channel.aclose()
