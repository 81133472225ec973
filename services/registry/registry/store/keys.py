"""The registry's token signing keys in its database: the published ones, a rotation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.signing_keys import ALGORITHM, new_key_pair
from registry.store.auth_models import SigningKey


def new_signing_key(now: datetime) -> SigningKey:
    """Generate a key pair as a SigningKey row (not added to any session)."""
    pair = new_key_pair()
    return SigningKey(
        kid=pair.kid,
        algorithm=ALGORITHM,
        private_key_pem=pair.private_key_pem,
        public_jwk=pair.public_jwk,
        created_at=now,
    )


async def published_keys(
    session: AsyncSession, now: datetime, retention: timedelta
) -> list[SigningKey]:
    """Return the active keys (newest first), then those retired less than `retention` ago."""
    query = (
        select(SigningKey)
        .where(
            or_(
                col(SigningKey.retired_at).is_(None),
                col(SigningKey.retired_at) > now - retention,
            )
        )
        .order_by(
            col(SigningKey.retired_at).desc().nulls_first(),  # active first, then by retirement
            col(SigningKey.created_at).desc(),
            col(SigningKey.kid),
        )
    )
    return list((await session.exec(query)).all())


async def rotate(session: AsyncSession, now: datetime, retention: timedelta) -> SigningKey:
    """Make a new signing key, retire the active ones, delete keys past their retention."""
    for old in (await session.exec(select(SigningKey))).all():
        if old.retired_at is None:
            old.retired_at = now
            session.add(old)
        elif old.retired_at <= now - retention:
            await session.delete(old)
    key = new_signing_key(now)
    session.add(key)
    await session.flush()
    return key
