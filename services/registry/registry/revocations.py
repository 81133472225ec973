"""What the registry tells verifiers to refuse before expiry: revoked or rotated clients and
logged-out tokens, as `Revocation` events through the outbox (topic
duban.registry.revocations.v1, see duban_shared.revocations)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from duban_shared import topics
from duban_shared.events import Revocation, RevocationKind
from duban_shared.outbox import outbox_row
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.models import OutboxMessage
from registry.settings import MAX_TOKEN_LIFETIME_SECONDS


def queue(session: AsyncSession, revocation: Revocation, now: datetime) -> Revocation:
    """Add a revocation to the outbox, in the caller's transaction."""
    session.add(
        outbox_row(OutboxMessage, topics.REVOCATIONS, revocation.key, revocation.to_bytes(), now)
    )
    return revocation


def of_client(
    session: AsyncSession, client_id: str, reason: Literal["revoked", "rotated"], now: datetime
) -> Revocation:
    """Refuse the tokens a client holds now: every one (revoked) or its old secret's (rotated).
    They all expire within the longest token lifetime."""
    revocation = Revocation(
        event_id=uuid.uuid4(),
        occurred_at=now,
        kind=RevocationKind.CLIENT,
        reason=reason,
        client_id=client_id,
        expires_at=now + timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS),
    )
    return queue(session, revocation, now)


def of_token(
    session: AsyncSession, client_id: str, jti: str, exp: float, now: datetime
) -> Revocation:
    """Refuse one token until it expires (a logout)."""
    revocation = Revocation(
        event_id=uuid.uuid4(),
        occurred_at=now,
        kind=RevocationKind.TOKEN,
        reason="logout",
        client_id=client_id,
        jti=jti,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
    return queue(session, revocation, now)
