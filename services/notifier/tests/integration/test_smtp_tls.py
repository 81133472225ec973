"""Email over STARTTLS and implicit TLS with authentication, against a real aiosmtpd server
with a certificate from a test CA (trustme): the mailer trusts that CA through its setting,
logs in; a wrong password is a refused login (the operator's to fix, not the contact's)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from notifier.adapters.mailer import DeliveryError, SmtpMailer, Stage, Verdict
from notifier.settings import NotifierSettings

from tests.harness import SmtpSink, free_port

USER, PASSWORD = "duban", "s3cret-for-tests"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _check(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    return authority, bundle


def _server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(params=["starttls", "implicit"])
def tls_server(request: pytest.FixtureRequest, ca: tuple[trustme.CA, Path]) -> Iterator[SmtpSink]:
    authority, _ = ca
    sink = SmtpSink(port=free_port())
    context = _server_context(authority)
    common: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": sink.port,
        "authenticator": _check,
        "auth_required": True,
    }
    if request.param == "starttls":
        controller = Controller(sink, tls_context=context, require_starttls=True, **common)
    else:
        # The whole connection is TLS; aiosmtpd's auth_require_tls is about STARTTLS only.
        controller = Controller(sink, ssl_context=context, auth_require_tls=False, **common)
    controller.start()
    sink.mode = request.param  # type: ignore[attr-defined]
    yield sink
    controller.stop()


def _mailer(sink: SmtpSink, bundle: Path, password: str = PASSWORD) -> SmtpMailer:
    implicit = getattr(sink, "mode", "") == "implicit"
    settings = NotifierSettings.model_validate(
        {
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
            "smtp_start_tls": not implicit,
            "smtp_use_tls": implicit,
            "smtp_username": USER,
            "smtp_password": password,
            "smtp_ca_file": bundle,
            "smtp_timeout_seconds": 5,
            "environment": "test",
        }
    )
    return SmtpMailer(settings)


async def test_mail_goes_over_tls_with_a_login(
    tls_server: SmtpSink, ca: tuple[trustme.CA, Path]
) -> None:
    await _mailer(tls_server, ca[1]).send("linye@zhaoqing.example.cn", "主题", "正文")
    [mail] = tls_server.mailbox("linye@zhaoqing.example.cn")
    assert mail["Subject"] == "主题"


async def test_a_wrong_password_is_a_refused_login(
    tls_server: SmtpSink, ca: tuple[trustme.CA, Path]
) -> None:
    with pytest.raises(DeliveryError) as refused:
        await _mailer(tls_server, ca[1], password="wrong").send("a@zhaoqing.example.cn", "s", "b")
    assert (refused.value.verdict, refused.value.stage) == (Verdict.LOGIN_REFUSED, Stage.AUTH)
    assert tls_server.messages == []


async def test_an_untrusted_certificate_is_refused(tls_server: SmtpSink, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(DeliveryError) as refused:
        await _mailer(tls_server, other).send("a@zhaoqing.example.cn", "s", "b")
    assert tls_server.messages == []
    assert refused.value.verdict is Verdict.RETRY  # our configuration: no contact is at fault
