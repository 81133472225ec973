"""Tokens refused before they expire: revoked or rotated clients, and logged-out sessions.

The registry publishes a `Revocation` (duban_shared.events) through its outbox to the compacted
topic `duban.registry.revocations.v1` when a client is revoked or its secret rotated, and when a
session logs out (`POST /oauth/revoke`). Every verifying process reads the whole topic from its
beginning into a `RevocationList` (`RevocationFeed`, a consumer without a group: each process
needs every record) and keeps following it, so a revoked client's tokens are refused everywhere
within the time the outbox relay and a fetch take (about a second), not when they expire.

What is refused:
- `client`, revoked: every token of the client (it gets no new ones).
- `client`, rotated: the tokens of the client issued with a secret set before the rotation
  (the token's `secret_at` claim, milliseconds; a token without it counts as issued at `iat`);
  the new secret's tokens stay valid.
- `token`: the token with that `jti`, until it expires.

An entry is forgotten once every token it concerns has expired (`expires_at` plus the leeway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from duban_shared import topics
from duban_shared.clock import Clock
from duban_shared.events import Revocation, RevocationKind
from duban_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

REVOCATIONS = "revocations"
"""What the revocation feed is called among a service's background starts (not ready until
its consumer connected)."""

SECRET_AT_CLAIM = "secret_at"  # noqa: S105 - a claim name, not a secret
"""When the secret a token was issued with was set: unix milliseconds (a private claim)."""


def millis(moment: datetime) -> int:
    """Unix milliseconds of an aware moment (how revocations and `secret_at` compare)."""
    return int(moment.timestamp() * 1000)


class TokenRevoked(Exception):
    """A token a revocation refuses; the message says why, for the 401."""


class RevocationList:
    """The revocations a process knows of, checked on every request (in memory)."""

    PRUNE_EVERY = 1000  # entries applied between two sweeps of expired ones

    def __init__(self, clock: Clock, *, leeway_seconds: float = 30.0) -> None:
        self._clock = clock
        self._leeway = timedelta(seconds=leeway_seconds)
        self._clients: dict[str, tuple[int, datetime, str]] = {}  # before ms, expiry, reason
        self._tokens: dict[str, datetime] = {}  # jti -> expiry
        self._applied = 0

    def __len__(self) -> int:
        return len(self._clients) + len(self._tokens)

    def apply(self, revocation: Revocation) -> None:
        """Take a revocation into account (idempotent; a later one of a client wins)."""
        if revocation.kind == RevocationKind.TOKEN:
            assert revocation.jti is not None  # the model checks it
            self._tokens[revocation.jti] = revocation.expires_at
        else:
            before = millis(revocation.occurred_at)
            known = self._clients.get(revocation.client_id)
            if known is None or known[0] <= before:
                self._clients[revocation.client_id] = (
                    before,
                    revocation.expires_at,
                    revocation.reason,
                )
        self._applied += 1
        if self._applied % self.PRUNE_EVERY == 0:
            self.prune()

    def revoke_token(self, jti: str, expires_at: datetime) -> None:
        """Refuse one token at once in this process (a logout handled here)."""
        self._tokens[jti] = expires_at

    def prune(self) -> None:
        """Forget entries whose tokens have all expired."""
        horizon = self._clock.now() - self._leeway
        self._tokens = {jti: exp for jti, exp in self._tokens.items() if exp > horizon}
        self._clients = {cid: entry for cid, entry in self._clients.items() if entry[1] > horizon}

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise TokenRevoked when a revocation refuses a token with these verified claims."""
        jti = claims.get("jti")
        if isinstance(jti, str) and jti in self._tokens:
            raise TokenRevoked("The token was revoked (its session logged out)")
        entry = self._clients.get(str(claims.get("sub", "")))
        if entry is None:
            return
        before, _, reason = entry
        if reason == "revoked":  # a revoked client gets no new token: none of its is valid
            raise TokenRevoked("The token's client was revoked")
        secret_at = claims.get(SECRET_AT_CLAIM)
        if isinstance(secret_at, bool) or not isinstance(secret_at, int | float):
            iat = claims.get("iat")
            secret_at = float(iat) * 1000 if isinstance(iat, int | float) else 0
        if secret_at < before:
            raise TokenRevoked(
                "The token was issued with a secret its client has replaced since (rotated)"
            )


class RevocationFeed:
    """Reads the revocations topic from its beginning into a RevocationList, then follows it.

    A consumer without a group: every process reads every partition and commits nothing (its
    list is in memory and is rebuilt from the topic at each start).
    """

    def __init__(
        self, bootstrap_servers: str, topic: str, client_id: str, revocations: RevocationList
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.topic = topic
        self._client_id = client_id
        self.revocations = revocations
        self.applied = 0
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The feed's consumer, made when the service starts (not when it is built)."""
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self._bootstrap,
                group_id=None,  # every process reads every record
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
        return self._consumer

    async def run(self, stop: asyncio.Event) -> None:
        """Apply records until stopped; a record that is not a revocation is logged and skipped
        (it cannot refuse anything)."""
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self._apply(record.value)

    def _apply(self, value: bytes | None) -> None:
        if value is None:  # a tombstone: nothing to refuse
            return
        try:
            revocation = Revocation.model_validate_json(value)
        except ValidationError as exc:
            log.warning("revocations: skipping a record that is not a revocation: %s", exc)
            return
        self.revocations.apply(revocation)
        self.applied += 1


def revocation_feed(
    settings: ServiceSettings, client_id: str, revocations: RevocationList
) -> RevocationFeed:
    """A feed of the service's revocations topic (its prefix included) into `revocations`."""
    return RevocationFeed(
        settings.kafka_bootstrap_servers,
        settings.topic_prefix + topics.REVOCATIONS,
        client_id,
        revocations,
    )
