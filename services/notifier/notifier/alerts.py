"""Alerts: one per stall episode of a work point, firing -> acknowledged -> resolved.

Stall transitions drive the lifecycle (opened fires an alert, level_changed updates it,
recovered and closed resolve it; a closed work point resolves every alert it still has). People
acknowledge an alert with a token (the alerted agency or the coordinating office) or with a
short signed, expiring, single-use link from the message they received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from duban_shared.events import StallTransition, StallTransitionKind
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.models import AckCode, Alert

FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"


async def apply_transition(
    session: AsyncSession, transition: StallTransition, now: datetime
) -> Alert:
    """Move the episode's alert along; return it."""
    # A closure without an open episode still tells the leads: it gets an alert record of its
    # own, resolved from the start, keyed by the transition.
    episode = transition.episode_id or transition.event_id
    alert = (await session.exec(select(Alert).where(Alert.episode_id == episode))).first()
    if alert is None:
        alert = Alert(
            episode_id=episode,
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
        await _resolve_all(session, transition.work_point_id, now, except_id=alert.id)
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


class AckLinks:
    """Short acknowledgement links that fit in an SMS: `{public_url}/a/<code><signature>`.

    The code (12 characters, 72 random bits) is stored with its alert, agency and expiry; the
    signature (an HMAC-SHA256 of the code with the notifier's secret, 8 characters) lets a
    forged or mistyped link be refused before the database is asked. Expiry is checked on the
    injected clock; a stored code is used once.
    """

    CODE, SIGNATURE = 12, 8

    def __init__(self, secret: str, base_url: str, lifetime: timedelta) -> None:
        self._key = secret.encode()
        self._base_url = base_url.rstrip("/")
        self._lifetime = lifetime

    def _sign(self, code: str) -> str:
        digest = hmac.new(self._key, code.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:6]).decode()

    async def issue(
        self, session: AsyncSession, alert_id: uuid.UUID, agency_id: uuid.UUID, now: datetime
    ) -> str:
        """Store a new code for (alert, agency) and return its link."""
        code = secrets.token_urlsafe(9)
        session.add(
            AckCode(
                code=code,
                alert_id=alert_id,
                agency_id=agency_id,
                created_at=now,
                expires_at=now + self._lifetime,
            )
        )
        return f"{self._base_url}/a/{code}{self._sign(code)}"

    def code_of(self, token: str) -> str:
        """The code of a link whose signature holds; refuse anything else."""
        code, signature = token[: self.CODE], token[self.CODE :]
        if len(token) != self.CODE + self.SIGNATURE or not hmac.compare_digest(
            signature, self._sign(code)
        ):
            raise AckRefused(
                400,
                "invalid_link",
                "This acknowledgement link is not valid (it may have been cut or altered); "
                "open it from the message again, or acknowledge in the system.",
            )
        return code


async def ack_code(session: AsyncSession, code: str, now: datetime) -> AckCode:
    """The stored code, if it may still be used."""
    row = await session.get(AckCode, code, with_for_update=True)
    if row is None:
        raise AckRefused(404, "unknown_link", "This acknowledgement link is not known here.")
    if now >= row.expires_at:
        raise AckRefused(
            410,
            "link_expired",
            f"This acknowledgement link expired at {row.expires_at.isoformat()}; acknowledge "
            "the alert in the system, or use a link from a newer message.",
        )
    if row.used_at is not None:
        raise AckRefused(
            410,
            "link_used",
            "This acknowledgement link was already used; the alert stays acknowledged.",
        )
    return row


async def use_code(session: AsyncSession, code: str, now: datetime) -> Alert:
    """Acknowledge through a link, once."""
    row = await ack_code(session, code, now)
    alert = await session.get(Alert, row.alert_id, with_for_update=True)
    if alert is None:
        raise AckRefused(404, "unknown_alert", f"No alert {row.alert_id}.")
    acknowledge(alert, f"link:{row.agency_id}", now)
    alert.next_step_at = now  # re-plan: steps that run while acknowledged may start
    row.used_at = now
    session.add(row)
    session.add(alert)
    return alert
