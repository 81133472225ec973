"""A local SMS gateway that keeps every message: the `http_sms` channel's far end for demos.

It speaks the generic HTTP SMS gateway contract of `notifier.adapters.channels.http_sms`:
`POST` JSON `{to, text, reference}` with `Authorization: Bearer <token>`, answered 200 with
`{"id", "segments"}`; a wrong token is refused with 401, a malformed body with 400. Each
message is kept as one JSON file in a folder (named by arrival order and id), and the same
`Idempotency-Key` twice keeps one file. `GET /` shows a page listing the messages, newest first;
`GET /messages` the same as JSON.
"""

from __future__ import annotations

import hmac
import html
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notifier.domain.sms_segments import analyze

MAX_BODY = 64 * 1024


class SmsSink:
    """The gateway's state: the folder of kept messages and the token callers must present."""

    def __init__(self, folder: Path, token: str) -> None:
        self.folder = folder
        self.token = token
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def messages(self) -> list[dict[str, Any]]:
        """Every kept message, newest first."""
        found = []
        for path in sorted(self.folder.glob("*.json"), reverse=True):
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # a file being written by hand, or not ours
        return found

    def keep(self, to: str, text: str, reference: str, idempotency_key: str) -> dict[str, Any]:
        """Store one message (once per idempotency key) and return what was stored."""
        with self._lock:
            key = idempotency_key or uuid.uuid4().hex
            for path in self.folder.glob(f"*-{_safe(key)}.json"):
                return dict(json.loads(path.read_text(encoding="utf-8")))
            sequence = len(list(self.folder.glob("*.json"))) + 1
            message = {
                "id": f"sms-{sequence:06d}",
                "to": to,
                "text": text,
                "reference": reference,
                "segments": analyze(text).segments,
                "received_at": datetime.now(UTC).isoformat(),
            }
            path = self.folder / f"{sequence:06d}-{_safe(key)}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(message, ensure_ascii=False, indent=2), encoding="utf-8")
            tmp.replace(path)
            return message

    def index_page(self) -> str:
        """A small HTML page listing the messages."""
        rows = "".join(
            f"<tr><td>{html.escape(m.get('received_at', ''))}</td>"
            f"<td>{html.escape(m.get('to', ''))}</td>"
            f"<td>{html.escape(m.get('text', ''))}</td>"
            f"<td>{m.get('segments', '')}</td></tr>"
            for m in self.messages()
        )
        return (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            "<title>SMS sink</title><style>body{font-family:sans-serif}td{padding:4px 8px;"
            "border-bottom:1px solid #ddd;vertical-align:top}</style></head><body>"
            f"<h1>SMS sink: {len(self.messages())} message(s)</h1>"
            "<table><tr><th>received</th><th>to</th><th>text</th><th>parts</th></tr>"
            f"{rows}</table></body></html>"
        )


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:80]


def make_server(sink: SmsSink, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for the sink (port 0: any free port); run serve_forever() on it."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the kept files are the record

        def _answer(self, status: int, payload: Any, content_type: str = "") -> None:
            body = (
                payload.encode()
                if isinstance(payload, str)
                else json.dumps(payload, ensure_ascii=False).encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/messages":
                self._answer(200, sink.messages())
            elif self.path in ("/", "/index.html"):
                self._answer(200, sink.index_page(), "text/html; charset=utf-8")
            elif self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"code": "not_found", "message": "GET / lists the messages"})

        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {sink.token}".encode()):
                self._answer(401, {"code": "unauthorized", "message": "wrong bearer token"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"code": "too_large", "message": "body too large"})
                return
            try:
                body = json.loads(self.rfile.read(length))
                to, text = str(body["to"]), str(body["text"])
                reference = str(body.get("reference") or "")
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"code": "bad_request", "message": "send JSON {to, text}"})
                return
            key = self.headers.get("Idempotency-Key") or reference
            message = sink.keep(to, text, reference, key)
            self._answer(200, {"id": message["id"], "segments": message["segments"]})

    return ThreadingHTTPServer((host, port), Handler)


def serve(folder: Path, token: str, host: str, port: int) -> None:
    """Run the sink until interrupted."""
    server = make_server(SmsSink(folder, token), host, port)
    print(f"sms-sink: http://{host}:{server.server_port}/ keeps messages in {folder}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
