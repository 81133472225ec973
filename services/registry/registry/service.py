"""The running registry: its parts, how they start in the background and how they stop."""

from __future__ import annotations

from dataclasses import dataclass

from duban_shared.auth import JwtVerifier
from duban_shared.clock import Clock
from duban_shared.outbox import OutboxRelay
from duban_shared.retention import Pruner
from duban_shared.revocations import REVOCATIONS, RevocationFeed
from duban_shared.runtime import PRODUCER
from duban_shared.service import ServiceCore
from duban_shared.throttle import LoginThrottle

from registry.settings import RegistrySettings
from registry.use_cases.keys import KeyRing
from registry.use_cases.tokens import TokenIssuer


@dataclass(kw_only=True)
class RegistryService(ServiceCore):
    """Everything the registry runs, built once and closed once."""

    settings: RegistrySettings
    clock: Clock  # domain time (plan edits); may be simulated (DUBAN_SIM_CLOCK_*)
    wall_clock: Clock  # real seconds: tokens, signing keys, clients, the outbox
    relay: OutboxRelay
    keys: KeyRing
    issuer: TokenIssuer
    verifier: JwtVerifier
    revocation_feed: RevocationFeed
    throttle: LoginThrottle  # failed token requests per client id and source address
    pruner: Pruner  # retention: published outbox rows (registry.store.retention)

    async def start(self) -> None:
        """Load the signing keys (making the first) and connect to Kafka, then relay the
        outbox, and follow the revocations; in the background, retried until the database and
        the broker answer."""
        self.background.start_soon("signing keys", self.keys.load)
        self.background.start_soon(
            PRODUCER, self.producer.start, then=lambda: self.relay.run(self.background.stop)
        )
        feed = self.revocation_feed
        self.background.follow("registry-revocations", feed.consumer, feed.run, name=REVOCATIONS)
        if self.settings.run_retention:
            self.background.spawn(
                "registry-retention",
                self.pruner.run(self.background.stop, self.settings.retention_interval_seconds),
            )
