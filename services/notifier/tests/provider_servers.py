"""Local stand-ins for the SMS and WeCom providers: real HTTP servers on 127.0.0.1.

Each server runs http.server in a thread on a free port, records every request it receives,
and answers the way its provider does, closely enough for the official SDKs to parse the
answers: Aliyun's RPC JSON (`RequestId`, `Code`, `Message`, `BizId`) after checking the
ACS3-HMAC-SHA256 signature, Tencent Cloud's `{"Response": ...}` envelope after checking the
TC3-HMAC-SHA256 signature, a bearer-token JSON gateway, and a WeCom group robot. Tests queue
one-off answers (`then`) to make a provider fail as it does in life: a given error code, an
HTTP 500/503, or a hang that outlasts the client's timeout (released when the server closes,
so nothing sleeps). `refused_address` gives an address where nothing listens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (header names in lower case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """What to answer; `hang` keeps the client waiting until the server closes."""

    status: int = 200
    payload: Any = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False

    def encoded(self) -> bytes:
        if self.payload is not None:
            return json.dumps(self.payload, ensure_ascii=False).encode()
        return self.body


Responder = Callable[[Seen], Reply]


class ProviderServer:
    """An HTTP server in a thread that answers with `responder` unless an answer is queued."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[Seen] = []
        self._queued: deque[Reply | Responder] = deque()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll interval only makes shutdown() quick; requests are served at once.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> str:
        """host:port, as the SDKs take their endpoint."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"

    def then(self, *answers: Reply | Responder) -> None:
        """Answer the next requests with these, in order, then go back to the responder."""
        with self._lock:
            self._queued.extend(answers)

    @property
    def last(self) -> Seen:
        return self.requests[-1]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            answer = self._queued.popleft() if self._queued else self.responder
        return answer if isinstance(answer, Reply) else answer(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = server._answer(seen)
                if reply.hang:
                    server._release.wait()
                    return
                data = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up first

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def serve(responder: Responder) -> Iterator[ProviderServer]:
    """Run a provider server for the duration of the block."""
    server = ProviderServer(responder)
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def refused_address() -> Iterator[str]:
    """host:port where a connection is refused at once: bound, never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _hex_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


# --- Aliyun SMS (Dysmsapi 2017-05-25, RPC style, ACS3-HMAC-SHA256 signature) --------------

_ACS3 = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=(?P<ak>[^,]+),SignedHeaders=(?P<signed>[^,]+),"
    r"Signature=(?P<sig>[0-9a-f]+)$"
)


def aliyun_reply(code: str = "OK", *, status: int = 200, message: str | None = None) -> Reply:
    """An Aliyun RPC answer; business errors come with HTTP 200, auth errors with 4xx."""
    payload: dict[str, Any] = {
        "RequestId": _request_id(),
        "Code": code,
        "Message": message or ("OK" if code == "OK" else f"fake {code}"),
    }
    if code == "OK":
        payload["BizId"] = f"{uuid.uuid4().int % 10**15}^0"
    return Reply(status=status, payload=payload)


def aliyun_throttled(retry_after_ms: int) -> Reply:
    """Flow control with the wait the gateway asks for (the SDK reads x-acs-retry-after)."""
    reply = aliyun_reply("Throttling.User", status=400, message="Request was denied due to user")
    return Reply(
        status=reply.status,
        payload=reply.payload,
        headers={"x-acs-retry-after": str(retry_after_ms)},
    )


@dataclass
class AliyunSms:
    """Aliyun SendSms: checks the signature and the parameters as the real API does."""

    access_key_id: str
    access_key_secret: str

    def signature_problem(self, seen: Seen) -> str | None:
        """None when the request is signed with our key pair, else the Aliyun error code."""
        match = _ACS3.match(seen.headers.get("authorization", ""))
        if match is None:
            return "IncompleteSignature"
        if match["ak"] != self.access_key_id:
            return "InvalidAccessKeyId.NotFound"
        if seen.headers.get("x-acs-content-sha256") != _hex_sha256(seen.body):
            return "SignatureDoesNotMatch"
        names = match["signed"].split(";")
        canonical = "\n".join(
            [
                seen.method,
                seen.path or "/",
                "&".join(
                    f"{quote(k, safe='~')}={quote(v, safe='~')}"
                    for k, v in sorted(seen.query.items())
                ),
                "".join(f"{n}:{seen.headers.get(n, '').strip()}\n" for n in names),
                match["signed"],
                _hex_sha256(seen.body),
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + _hex_sha256(canonical.encode())
        expected = hmac.new(
            self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        return None if hmac.compare_digest(expected, match["sig"]) else "SignatureDoesNotMatch"

    def __call__(self, seen: Seen) -> Reply:
        if (seen.headers.get("x-acs-action"), seen.headers.get("x-acs-version")) != (
            "SendSms",
            "2017-05-25",
        ):
            return aliyun_reply("InvalidAction.NotFound", status=404)
        problem = self.signature_problem(seen)
        if problem == "InvalidAccessKeyId.NotFound":
            return aliyun_reply(problem, status=404, message="Specified access key is not found.")
        if problem is not None:
            return aliyun_reply(problem, status=400, message="The signature does not match.")
        q = seen.query
        if not re.fullmatch(r"1\d{10}|[2-9]\d{7,14}", q.get("PhoneNumbers", "")):
            return aliyun_reply("isv.MOBILE_NUMBER_ILLEGAL")
        if not q.get("SignName") or not q.get("TemplateCode"):
            return aliyun_reply("isv.INVALID_PARAMETERS")
        try:
            json.loads(q.get("TemplateParam", "{}"))
        except ValueError:
            return aliyun_reply("isv.INVALID_JSON_PARAM")
        return aliyun_reply("OK")


# --- Tencent Cloud SMS (2021-01-11, TC3-HMAC-SHA256 signature) -----------------------------

_TC3 = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<svc>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]+)$"
)


def tencent_error(code: str, message: str | None = None) -> Reply:
    """An API error: HTTP 200 with `Response.Error`, as Tencent Cloud answers every error."""
    return Reply(
        payload={
            "Response": {
                "Error": {"Code": code, "Message": message or f"fake {code}"},
                "RequestId": str(uuid.uuid4()),
            }
        }
    )


def tencent_statuses(seen: Seen, code_for: Callable[[str], str]) -> Reply:
    """A successful call with one SendStatus per number, each with the code `code_for` says."""
    body = seen.json()
    statuses = []
    for number in body.get("PhoneNumberSet", []):
        code = code_for(number)
        statuses.append(
            {
                "SerialNo": f"2433:{uuid.uuid4().int % 10**20}" if code == "Ok" else "",
                "PhoneNumber": number,
                "Fee": 1 if code == "Ok" else 0,
                "SessionContext": body.get("SessionContext", ""),
                "Code": code,
                "Message": "send success" if code == "Ok" else f"fake {code}",
                "IsoCode": "CN" if number.startswith("+86") else "",
            }
        )
    return Reply(payload={"Response": {"SendStatusSet": statuses, "RequestId": _request_id()}})


def tencent_status(code: str) -> Responder:
    """Answer the next call with this per-number status code."""
    return lambda seen: tencent_statuses(seen, lambda _number: code)


@dataclass
class TencentSms:
    """Tencent Cloud SendSms: checks the TC3 signature, then answers per number."""

    secret_id: str
    secret_key: str

    def signature_problem(self, seen: Seen) -> str | None:
        match = _TC3.match(seen.headers.get("authorization", ""))
        if match is None:
            return "AuthFailure.SignatureFailure"
        if match["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        canonical = "\n".join(
            [
                seen.method,
                seen.path or "/",
                "",  # POST: no query
                "".join(f"{n}:{seen.headers.get(n, '')}\n" for n in match["signed"].split(";")),
                match["signed"],
                _hex_sha256(seen.body),
            ]
        )
        stamp = seen.headers.get("x-tc-timestamp", "")
        date = datetime.fromtimestamp(int(stamp or 0), UTC).strftime("%Y-%m-%d")
        scope = f"{date}/{match['svc']}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n{_hex_sha256(canonical.encode())}"

        def sign(key: bytes, text: str) -> bytes:
            return hmac.new(key, text.encode(), hashlib.sha256).digest()

        key = sign(sign(sign(f"TC3{self.secret_key}".encode(), date), match["svc"]), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, match["sig"]) and match["date"] == date
        return None if ok else "AuthFailure.SignatureFailure"

    def __call__(self, seen: Seen) -> Reply:
        if (seen.headers.get("x-tc-action"), seen.headers.get("x-tc-version")) != (
            "SendSms",
            "2021-01-11",
        ):
            return tencent_error("InvalidAction")
        problem = self.signature_problem(seen)
        if problem is not None:
            return tencent_error(problem)
        body = seen.json()
        for name in ("SmsSdkAppId", "TemplateId", "PhoneNumberSet"):
            if not body.get(name):
                return tencent_error("MissingParameter", f"The request is missing {name}.")
        return tencent_statuses(
            seen,
            lambda n: (
                "Ok"
                if re.fullmatch(r"\+\d{8,15}", n)
                else "InvalidParameterValue.IncorrectPhoneNumber"
            ),
        )


# --- A generic JSON SMS gateway with a bearer token --------------------------------------


@dataclass
class JsonGateway:
    """POST {to, text, reference} with `Authorization: Bearer <token>`; 202 with an id."""

    token: str

    def __call__(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(status=401, payload={"code": "unauthorized", "message": "bad token"})
        body = seen.json()
        if not re.fullmatch(r"\+\d{8,15}", str(body.get("to", ""))):
            return Reply(status=422, payload={"code": "invalid_to", "message": "not E.164"})
        return Reply(
            status=202,
            payload={"id": f"msg-{uuid.uuid4().hex[:12]}"},
            headers={"X-Request-Id": _request_id()},
        )


# --- WeCom group robot webhook ------------------------------------------------------------

WECOM_PATH = "/cgi-bin/webhook/send"


def wecom_reply(errcode: int, errmsg: str | None = None) -> Reply:
    """A robot's answer: always HTTP 200, success or not."""
    return Reply(payload={"errcode": errcode, "errmsg": errmsg or ("ok" if errcode == 0 else "x")})


@dataclass
class WeComRobot:
    """A group robot webhook that knows some keys and checks markdown messages."""

    keys: set[str]

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != WECOM_PATH or seen.query.get("key") not in self.keys:
            return wecom_reply(93000, "invalid webhook url, hint: [fake]")
        body = seen.json()
        if body.get("msgtype") != "markdown":
            return wecom_reply(40008, "invalid message type")
        content = body.get("markdown", {}).get("content", "")
        if not content:
            return wecom_reply(44004, "empty content")
        if len(content.encode()) > 4096:
            return wecom_reply(40058, "markdown.content exceed max length 4096")
        return wecom_reply(0)
