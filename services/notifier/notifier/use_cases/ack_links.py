"""Acknowledgement links handed out in messages: a stored code per (alert, agency), signed.

Expiry is checked on the injected clock; a stored code is used once (`notifier.use_cases.alerts`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import LinkSigner
from notifier.store import alerts as alert_store


class AckLinks:
    """Issues links (`{public_url}/a/<code><signature>`) and reads their codes back."""

    def __init__(self, secret: str, base_url: str, lifetime: timedelta) -> None:
        self._signer = LinkSigner(secret, base_url)
        self._lifetime = lifetime

    async def issue(
        self, session: AsyncSession, alert_id: uuid.UUID, agency_id: uuid.UUID, now: datetime
    ) -> str:
        """Store a new code for (alert, agency) in the caller's transaction; return its link."""
        code = self._signer.new_code()
        alert_store.add_ack_code(session, code, alert_id, agency_id, now, now + self._lifetime)
        return self._signer.link(code)

    def code_of(self, token: str) -> str:
        """The code of a link whose signature holds; refuse (AckRefused) anything else."""
        return self._signer.code_of(token)
