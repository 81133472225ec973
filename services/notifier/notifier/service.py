"""The running notifier: its use cases, the loops and consumers around them, built once by
`notifier.main.build` and closed once. The HTTP app reaches it through `notifier.api.deps`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx
from aiokafka import ConsumerRecord
from duban_shared import topics
from duban_shared.auth import JwksVerifier
from duban_shared.clock import Clock
from duban_shared.deadletters import DeadLetterSink
from duban_shared.kafka import BatchHandler, make_consumer
from duban_shared.offsets import OffsetKeeper, OffsetStore
from duban_shared.outbox import OutboxRelay
from duban_shared.retention import (
    RETENTION_CHECK,
    START_CHECK_SECONDS,
    Pruner,
    check_at_start,
    check_broker_retention,
)
from duban_shared.revocations import REVOCATIONS, RevocationFeed
from duban_shared.runtime import PRODUCER
from duban_shared.service import ServiceCore

from notifier.adapters.channels.base import Channel
from notifier.settings import NotifierSettings
from notifier.store.models import ConsumerOffset
from notifier.use_cases.ack_links import AckLinks
from notifier.use_cases.alerts import Alerts
from notifier.use_cases.circulars import CircularMail
from notifier.use_cases.contacts import Contacts
from notifier.use_cases.dispatching import Dispatcher
from notifier.use_cases.escalation import Escalator
from notifier.use_cases.notifications import Notifications

SERVICE = "duban-notifier"
DELIVERY_REPLAY = "deliveries topic read"
"""What the start-up read of the deliveries topic is called among the background starts: not
ready (and nothing sent) until it reached the topic's end."""


class Consumer(Protocol):
    """A Kafka entry point (`notifier.consumers`): handles a batch of records."""

    @property
    def handle_batch(self) -> BatchHandler: ...


class StartupRead(Protocol):
    """A topic read once at start-up (`notifier.consumers.DeliveryReplay`)."""

    async def run(self) -> None: ...


@dataclass(kw_only=True)
class NotifierService(ServiceCore):
    """Everything the notifier runs, built once and closed once. Its producer carries dead
    letters and, through the outbox relay, alert transitions (duban.alerts.v1)."""

    settings: NotifierSettings
    clock: Clock  # domain time: alerts, escalation, quiet hours; may be simulated
    wall_clock: Clock  # real seconds: token checks, JWKS cache, rate limits, provider answers
    stall_consumer: Consumer
    notice_consumer: Consumer
    agency_consumer: Consumer
    circular_consumer: Consumer
    circular_mail: CircularMail  # circulars (通报) mailed to the configured list
    delivery_replay: StartupRead  # the deliveries sent, read before sending anything
    relay: OutboxRelay  # alert transitions, written with the alerts' state changes
    dispatcher: Dispatcher
    escalator: Escalator
    alerts: Alerts
    contacts: Contacts
    pruner: Pruner  # retention: the inbox, finished deliveries, old links (store.retention)
    notifications: Notifications
    channels: dict[str, Channel]
    verifier: JwksVerifier
    revocation_feed: RevocationFeed
    ack_links: AckLinks
    owned_http: httpx.AsyncClient | None = None  # the JWKS client, when build() made it
    # Each consumer group's positions as the database knows them (duban_shared.offsets).
    offset_keepers: dict[str, OffsetKeeper] = field(default_factory=dict)

    async def start(self) -> None:
        """Fetch the registry's keys (best effort), read the deliveries topic (the dispatcher
        sends nothing, and /healthz is not ready, until it is read), check the Kafka rule (the
        inbox outlives the consumed topics' records; a broken rule refuses the start), then
        consume stall transitions, notice transitions, agencies and circulars, relay the
        outbox, and prune (retention)."""
        await self.verifier.prefetch()
        self.background.start_soon(PRODUCER, self.producer.start)
        self.background.start_soon(DELIVERY_REPLAY, self._read_deliveries)
        feed = self.revocation_feed
        self.background.follow("notifier-revocations", feed.consumer, feed.run, name=REVOCATIONS)
        prefix, bootstrap = self.settings.topic_prefix, self.settings.kafka_bootstrap_servers
        await check_at_start(
            self.background, self.check_topic_retention, timeout_seconds=START_CHECK_SECONDS
        )
        stalls_group, agencies_group = f"{prefix}{SERVICE}.stalls", f"{prefix}{SERVICE}.agencies"
        stalls = make_consumer(
            bootstrap,
            stalls_group,
            prefix + topics.STALLS,
            client_id=SERVICE,
            keeper=self._keeper(stalls_group),
        )
        agencies = make_consumer(
            bootstrap,
            agencies_group,
            prefix + topics.AGENCIES,
            client_id=SERVICE,
            keeper=self._keeper(agencies_group),
        )
        lag = self.metrics.consumer_lag
        await self.background.consume(
            "notifier-stalls",
            stalls,
            self.stall_consumer.handle_batch,
            name="stalls",
            retry=self.settings.retry_policy(pause_seconds=self.settings.retry_seconds),
            lag=lag.tracker(stalls_group),
            dead_letters=self._dead_letters(stalls_group),
            offsets=self.offset_keepers[stalls_group],
        )
        notices_group = f"{prefix}{SERVICE}.notices"
        notices = make_consumer(
            bootstrap,
            notices_group,
            prefix + topics.NOTICES,
            client_id=SERVICE,
            keeper=self._keeper(notices_group),
        )
        await self.background.consume(
            "notifier-notices",
            notices,
            self.notice_consumer.handle_batch,
            name="notices",
            retry=self.settings.retry_policy(pause_seconds=self.settings.retry_seconds),
            lag=lag.tracker(notices_group),
            dead_letters=self._dead_letters(notices_group),
            offsets=self.offset_keepers[notices_group],
        )
        await self.background.consume(
            "notifier-agencies",
            agencies,
            self.agency_consumer.handle_batch,
            name="agencies",
            lag=lag.tracker(agencies_group),
            dead_letters=self._dead_letters(agencies_group),
            offsets=self.offset_keepers[agencies_group],
        )
        circulars_group = f"{prefix}{SERVICE}.circulars"
        circulars = make_consumer(
            bootstrap,
            circulars_group,
            prefix + topics.CIRCULARS,
            client_id=SERVICE,
            keeper=self._keeper(circulars_group),
        )

        async def mail_circulars(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            # A circular is mailed only once the deliveries topic says whom it was mailed to.
            await self.background.wait_ready(DELIVERY_REPLAY)
            await self.circular_consumer.handle_batch(records)

        await self.background.consume(
            "notifier-circulars",
            circulars,
            mail_circulars,
            name="circulars",
            retry=self.settings.retry_policy(pause_seconds=self.settings.retry_seconds),
            lag=lag.tracker(circulars_group),
            dead_letters=self._dead_letters(circulars_group),
            offsets=self.offset_keepers[circulars_group],
        )
        stop = self.background.stop

        async def relay() -> None:
            await self.background.wait_ready(PRODUCER)
            await self.relay.run(stop)

        self.background.spawn("notifier-outbox", relay())
        if self.settings.run_retention:
            self.background.spawn(
                "notifier-retention",
                self.pruner.run(
                    stop,
                    self.settings.retention_interval_seconds,
                    after=lambda: self.background.wait_ready(RETENTION_CHECK),
                ),
            )
        if self.settings.run_loops:

            async def dispatch() -> None:
                # Nothing is sent before the deliveries topic was read (no message twice).
                await self.background.wait_ready(DELIVERY_REPLAY)
                await self.dispatcher.run(stop, self.settings.dispatch_interval_seconds)

            self.background.spawn("notifier-dispatcher", dispatch())
            self.background.spawn(
                "notifier-escalator",
                self.escalator.run(
                    stop, self.settings.escalate_interval_seconds, self.dispatcher.wake
                ),
            )

    async def _read_deliveries(self) -> None:
        """Read the deliveries topic to its end (once the producer can park a bad record)."""
        await self.background.wait_ready(PRODUCER)
        await self.delivery_replay.run()

    def _keeper(self, group_id: str) -> OffsetKeeper:
        """The database's positions of one consumer group (kept for tests and logs)."""
        keeper = OffsetKeeper(OffsetStore(ConsumerOffset, self.sessions, self.wall_clock), group_id)
        self.offset_keepers[group_id] = keeper
        return keeper

    async def check_topic_retention(self) -> dict[str, int | None]:
        """The Kafka rule against the broker: the inbox outlives the consumed topics' records
        (stalls, notices, circulars)."""
        settings = self.settings
        return await check_broker_retention(
            settings.kafka_bootstrap_servers,
            [settings.topic_prefix + t for t in settings.consumed_inbox_topics],
            settings.retention_inbox_days,
            setting="DUBAN_NOTIFIER_RETENTION_INBOX_DAYS",
        )

    def _dead_letters(self, group: str) -> DeadLetterSink:
        """Where one of the notifier's consumers parks what it cannot apply."""
        topic = self.settings.topic_prefix + topics.NOTIFIER_DLQ
        return DeadLetterSink(self.producer, self.tracer, topic, group, self.metrics)

    async def close(self) -> None:
        """Stop consuming and the loops (the core), then close the channels and the JWKS
        client."""
        await super().close()
        for channel in self.channels.values():
            await channel.aclose()
        if self.owned_http is not None:
            await self.owned_http.aclose()
