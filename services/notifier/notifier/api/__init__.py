"""The notifier's HTTP entry points: one router module per resource, assembled here."""

from fastapi import APIRouter

from notifier.api import alerts, contacts, links, notifications

router = APIRouter()
router.include_router(alerts.router)
router.include_router(links.router)
router.include_router(contacts.router)
router.include_router(notifications.router)

__all__ = ["router"]
