"""Alerts: one per stall episode of a work point, firing -> acknowledged -> resolved.

Stall transitions drive the lifecycle (opened fires an alert, level_changed updates it,
recovered and closed resolve it; a closed work point resolves every alert it still has). People
acknowledge an alert with a token (the alerted agency or the coordinating office) or with a
short signed, expiring, single-use link from the message they received (`LinkSigner` signs and
checks such links; the codes themselves are stored by the use cases).

The rules work on any object with the alert's fields (`AlertState`), so they hold for the
stored row without this module knowing how it is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Protocol

from duban_shared.events import StallTransition, StallTransitionKind

FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"
STALL, NOTICE = "stall", "notice"
"""An alert's kind: a stall episode, or a supervision notice (督办单) awaiting its reply."""
ISSUED = "issued"
"""A notice's alert before it is overdue: the lead was told, nothing escalates yet."""


class AlertState(Protocol):
    """The fields of an alert its lifecycle reads and changes."""

    id: uuid.UUID
    state: str
    level: str
    previous_level: str | None
    reasons: list[str]
    note: str | None
    silent_working_days: int | None
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution: str | None


class AckRefused(Exception):
    """An acknowledgement that cannot be taken, with a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def follow(alert: AlertState, transition: StallTransition, now: datetime) -> None:
    """Move an alert that is not resolved along with a transition of its episode."""
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


def close(alert: AlertState, now: datetime) -> None:
    """Resolve an alert because its work point was closed."""
    alert.state, alert.resolved_at, alert.resolution, alert.updated_at = (
        RESOLVED,
        now,
        "closed",
        now,
    )


def acknowledge(alert: AlertState, by: str, now: datetime) -> bool:
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


def check_code(expires_at: datetime, used_at: datetime | None, now: datetime) -> None:
    """Refuse a stored link code that expired or was used."""
    if now >= expires_at:
        raise AckRefused(
            410,
            "link_expired",
            f"This acknowledgement link expired at {expires_at.isoformat()}; acknowledge "
            "the alert in the system, or use a link from a newer message.",
        )
    if used_at is not None:
        raise AckRefused(
            410,
            "link_used",
            "This acknowledgement link was already used; the alert stays acknowledged.",
        )


class LinkSigner:
    """Short acknowledgement links that fit in an SMS: `{public_url}/a/<code><signature>`.

    The code (12 characters, 72 random bits) is stored with its alert, agency and expiry; the
    signature (an HMAC-SHA256 of the code with the notifier's secret, 8 characters) lets a
    forged or mistyped link be refused before the database is asked.
    """

    CODE, SIGNATURE = 12, 8

    def __init__(self, secret: str, base_url: str) -> None:
        self._key = secret.encode()
        self._base_url = base_url.rstrip("/")

    def _sign(self, code: str) -> str:
        digest = hmac.new(self._key, code.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:6]).decode()

    @staticmethod
    def new_code() -> str:
        """A fresh random code."""
        return secrets.token_urlsafe(9)

    def link(self, code: str) -> str:
        """The signed link of a code."""
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
