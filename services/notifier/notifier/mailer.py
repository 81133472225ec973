"""Email over SMTP with aiosmtplib; errors say whether a retry can help."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from notifier.settings import NotifierSettings


class DeliveryError(Exception):
    """A failed send; permanent ones must not be retried on the same address."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmtpMailer:
    """Sends one message per call through the configured SMTP server."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._s = settings

    async def send(self, to: str, subject: str, body: str) -> str:
        """Send a plain-text email; return its Message-ID."""
        msg = EmailMessage()
        msg["From"] = self._s.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = make_msgid(domain="duban.local")
        msg.set_content(body)
        try:
            await aiosmtplib.send(
                msg,
                hostname=self._s.smtp_host,
                port=self._s.smtp_port,
                username=self._s.smtp_username,
                password=self._s.smtp_password,
                start_tls=self._s.smtp_start_tls,
                use_tls=self._s.smtp_use_tls,
                cert_bundle=str(self._s.smtp_ca_file) if self._s.smtp_ca_file else None,
                timeout=self._s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise DeliveryError(
                f"recipient refused: {codes}", permanent=all(500 <= c < 600 for c in codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP unavailable: {exc}", permanent=False) from exc
        return str(msg["Message-ID"])
