"""A generic HTTP SMS gateway: POST `{to, text, reference}` as JSON with a bearer token.

For operators' own gateways (a carrier's 行业短信 platform behind an adapter, or a government
SMS platform). The contract is plain HTTP semantics: 2xx accepted; 408, 429 and 5xx transient
(Retry-After honoured); any other 4xx permanent. `reference` also goes out as the
Idempotency-Key header, so a gateway can drop the copy the consumer sends when an answer was
lost.
"""

from __future__ import annotations

import httpx
from duban_shared.clock import Clock

from notifier.adapters.channels._sms import recipient_e164, template_text
from notifier.adapters.channels.base import OutgoingMessage, Receipt
from notifier.adapters.channels.http import HttpChannel, json_object
from notifier.domain.sms_segments import analyze
from notifier.settings import HttpSmsSettings

NAME = "http_sms"


class HttpSmsChannel(HttpChannel):
    """Sends the message text to one phone number through the configured gateway."""

    name = NAME

    def __init__(
        self,
        settings: HttpSmsSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`client` lets the caller share or instrument one; otherwise the channel owns one."""
        super().__init__(
            settings.timeout_seconds, settings.connect_timeout_seconds, client=client, clock=clock
        )
        self._s = settings

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """POST the text; SMS has no subject, so only `msg.text` is sent (cut to the budget)."""
        e164 = recipient_e164(msg, self._s.default_region, NAME)
        text = template_text(msg, self._s.max_segments)
        response = await self._post(
            self._s.url,
            json={"to": e164, "text": text, "reference": msg.reference},
            headers={
                "Authorization": f"Bearer {self._s.token.get_secret_value()}",
                "Idempotency-Key": msg.reference,
            },
        )
        body = json_object(response)
        request_id = response.headers.get("x-request-id")
        if not response.is_success:
            provider_code = body.get("code") or body.get("error")
            detail = body.get("message") or response.reason_phrase
            raise self._refused(
                response,
                f"HTTP {response.status_code}: {detail}"
                + (f" (request {request_id})" if request_id else ""),
                str(provider_code) if provider_code else str(response.status_code),
            )
        provider_id = body.get("id") or body.get("message_id")
        segments = body.get("segments")
        return Receipt(
            channel=NAME,
            recipient=e164,
            provider_id=str(provider_id) if provider_id is not None else None,
            request_id=request_id,
            segments=segments if isinstance(segments, int) else analyze(text).segments,
        )
