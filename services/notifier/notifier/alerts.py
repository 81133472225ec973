"""Alerts: one per stall episode of a work point, firing -> acknowledged -> resolved.

Stall transitions drive the lifecycle (opened fires an alert, level_changed updates it,
recovered and closed resolve it; a closed work point resolves every alert it still has). People
acknowledge an alert with a token (the alerted agency or the coordinating office) or with a
signed, expiring, single-use link from the message they received.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from duban_shared.events import StallTransition, StallTransitionKind
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.models import AckLinkUse, Alert

FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"


async def apply_transition(
    session: AsyncSession, transition: StallTransition, now: datetime
) -> Alert | None:
    """Move the episode's alert along; return it (None for a closure without an episode)."""
    alert = None
    if transition.episode_id is not None:
        alert = (
            await session.exec(select(Alert).where(Alert.episode_id == transition.episode_id))
        ).first()
    if alert is None and transition.episode_id is not None:
        alert = Alert(
            episode_id=transition.episode_id,
            work_point_id=transition.work_point_id,
            plan_slug=transition.plan_slug,
            number=transition.work_point_number,
            title=transition.work_point_title,
            level=transition.level.value,
            lead_agencies=[a.model_dump(mode="json") for a in transition.lead_agencies],
            co_agencies=[a.model_dump(mode="json") for a in transition.co_agencies],
            coordinating_agency_id=transition.coordinating_agency_id,
            fired_at=transition.occurred_at,
            updated_at=now,
        )
    if alert is not None and alert.state != RESOLVED:
        _update(alert, transition, now)
        session.add(alert)
    if transition.kind == StallTransitionKind.CLOSED:
        await _resolve_all(
            session, transition.work_point_id, now, except_id=alert.id if alert else None
        )
    return alert


def _update(alert: Alert, transition: StallTransition, now: datetime) -> None:
    alert.updated_at = now
    alert.note = transition.note
    alert.silent_working_days = transition.silent_working_days
    if transition.kind in (StallTransitionKind.RECOVERED, StallTransitionKind.CLOSED):
        alert.state, alert.resolved_at = RESOLVED, transition.occurred_at
        alert.resolution = (
            "closed" if transition.kind == StallTransitionKind.CLOSED else "recovered"
        )
        return
    alert.previous_level = transition.previous_level.value if transition.previous_level else None
    alert.level = transition.level.value
    alert.reasons = [r.value for r in transition.reasons]


async def _resolve_all(
    session: AsyncSession, work_point_id: str, now: datetime, except_id: uuid.UUID | None
) -> None:
    rows = await session.exec(
        select(Alert).where(Alert.work_point_id == work_point_id, col(Alert.state) != RESOLVED)
    )
    for alert in rows.all():
        if alert.id == except_id:
            continue
        alert.state, alert.resolved_at, alert.resolution, alert.updated_at = (
            RESOLVED,
            now,
            "closed",
            now,
        )
        session.add(alert)


class AckRefused(Exception):
    """An acknowledgement that cannot be taken, with a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def acknowledge(alert: Alert, by: str, now: datetime) -> bool:
    """Acknowledge a firing alert; True if this call did it (acknowledging twice is harmless)."""
    if alert.state == RESOLVED:
        raise AckRefused(
            409,
            "alert_resolved",
            f"Alert {alert.id} is resolved ({alert.resolution}); there is nothing to acknowledge.",
        )
    if alert.state == ACKNOWLEDGED:
        return False
    alert.state, alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = (
        ACKNOWLEDGED,
        now,
        by,
        now,
    )
    return True


@dataclass(frozen=True)
class AckLink:
    """What a signed acknowledgement link says."""

    alert_id: uuid.UUID
    agency_id: uuid.UUID
    expires_at: datetime
    nonce: str


class AckLinks:
    """Signs and checks acknowledgement links (HMAC via itsdangerous; expiry on our clock)."""

    def __init__(self, secret: str, base_url: str, lifetime: timedelta) -> None:
        self._serializer = URLSafeSerializer(secret, salt="duban.ack.v1")
        self._base_url = base_url.rstrip("/")
        self._lifetime = lifetime

    def url(self, alert_id: uuid.UUID, agency_id: uuid.UUID, now: datetime) -> str:
        """A link acknowledging `alert_id` on behalf of `agency_id`, valid for the lifetime."""
        token = self._serializer.dumps(
            {
                "a": str(alert_id),
                "g": str(agency_id),
                "x": int((now + self._lifetime).timestamp()),
                "n": secrets.token_urlsafe(12),
            }
        )
        return f"{self._base_url}/v1/ack/{token}"

    def read(self, token: str, now: datetime) -> AckLink:
        """Check a link's signature and expiry; refuse with a clear code otherwise."""
        try:
            data = self._serializer.loads(token)
            link = AckLink(
                alert_id=uuid.UUID(data["a"]),
                agency_id=uuid.UUID(data["g"]),
                expires_at=datetime.fromtimestamp(int(data["x"]), tz=now.tzinfo),
                nonce=str(data["n"]),
            )
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise AckRefused(
                400,
                "invalid_link",
                "This acknowledgement link is not valid (it may have been cut or altered); "
                "open it from the message again, or acknowledge in the system.",
            ) from exc
        if now >= link.expires_at:
            raise AckRefused(
                410,
                "link_expired",
                f"This acknowledgement link expired at {link.expires_at.isoformat()}; "
                "acknowledge the alert in the system, or use a link from a newer message.",
            )
        return link


async def use_link(session: AsyncSession, link: AckLink, now: datetime) -> Alert:
    """Acknowledge through a link, once: a second use of the same link is refused."""
    alert = await session.get(Alert, link.alert_id, with_for_update=True)
    if alert is None:
        raise AckRefused(404, "unknown_alert", f"No alert {link.alert_id}.")
    session.add(
        AckLinkUse(nonce=link.nonce, alert_id=alert.id, agency_id=link.agency_id, used_at=now)
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AckRefused(
            410,
            "link_used",
            "This acknowledgement link was already used; the alert stays acknowledged.",
        ) from exc
    acknowledge(alert, f"link:{link.agency_id}", now)
    session.add(alert)
    return alert
