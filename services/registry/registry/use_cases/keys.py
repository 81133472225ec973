"""The registry's token signing keys in memory: the signer, and public keys for verification.

Keys are made by the registry itself: the first start makes one, `duban-registry
rotate-signing-key` makes a new one and retires the others. The newest unretired key signs;
retired keys stay published (and accepted) for `retired_key_retention_seconds`, long enough
for the tokens they signed to expire and for every verifier to refresh its cache.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from duban_shared.clock import Clock
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.store.keys import new_signing_key, published_keys, rotate
from registry.use_cases.context import Context

log = logging.getLogger(__name__)


async def rotate_signing_key(ctx: Context, retention: timedelta) -> str:
    """Make a new signing key and retire the active ones; return the new kid."""
    async with ctx.transaction(wall=True) as now:
        return (await rotate(ctx.session, now, retention)).kid


@dataclass(frozen=True)
class Signer:
    """The key that signs tokens now."""

    kid: str
    algorithm: str
    private_key: ec.EllipticCurvePrivateKey


class KeyRing:
    """The registry's keys in memory: the signer, and public keys for local verification.

    Loaded from the database, and loaded again when older than `reload_seconds` (so a
    rotation by the CLI or another replica is picked up) or when a token names an unknown
    kid (at most once per `min_reload_seconds`). If no active key exists, one is made.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        retention: timedelta,
        reload_seconds: float = 60.0,
        min_reload_seconds: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.retention = retention
        self._reload = timedelta(seconds=reload_seconds)
        self._min_reload = timedelta(seconds=min_reload_seconds)
        self._signer: Signer | None = None
        self._public: dict[str, jwt.PyJWK] = {}
        self._loaded_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def signer(self) -> Signer:
        """Return the key to sign with, loading (or making) it when needed."""
        return await self._load_if_due(self._reload)

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """Return the public key of a published kid (a KeySource for JwtVerifier)."""
        await self._load_if_due(self._reload)
        if kid not in self._public:
            await self._load_if_due(self._min_reload)
        return self._public.get(kid)

    def _due(self, interval: timedelta) -> bool:
        if self._loaded_at is None:
            return True
        elapsed = self._clock.now() - self._loaded_at
        return elapsed >= interval or elapsed < timedelta(0)

    async def _load_if_due(self, interval: timedelta) -> Signer:
        if self._signer is not None and not self._due(interval):
            return self._signer
        async with self._lock:  # concurrent callers wait for one load, then reuse it
            if self._signer is not None and not self._due(interval):
                return self._signer
            return await self._load()

    async def load(self) -> Signer:
        """Read the published keys from the database now; make a signing key if none is active."""
        async with self._lock:
            return await self._load()

    async def _load(self) -> Signer:
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            keys = await published_keys(session, now, self.retention)
            if not any(k.retired_at is None for k in keys):
                created = new_signing_key(now)
                session.add(created)
                keys.insert(0, created)
                log.info("made token signing key %s (none was active)", created.kid)
        active = next(k for k in keys if k.retired_at is None)
        signer = self._signer
        if signer is None or signer.kid != active.kid:
            private = serialization.load_pem_private_key(
                active.private_key_pem.encode(), password=None
            )
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise RuntimeError(f"signing key {active.kid} is not an EC key")
            signer = Signer(active.kid, active.algorithm, private)
            if self._signer is not None:
                log.info("signing tokens with key %s now", signer.kid)
        self._signer = signer
        self._public = {k.kid: jwt.PyJWK(k.public_jwk) for k in keys}
        self._loaded_at = now
        return signer
