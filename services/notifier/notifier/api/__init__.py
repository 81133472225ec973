"""The notifier's HTTP entry points: one router module per resource, assembled here."""

from duban_shared.audit_api import audit_router
from fastapi import APIRouter

from notifier.api import alerts, contacts, links, notifications
from notifier.store.models import AuditLog

router = APIRouter()
router.include_router(alerts.router)
router.include_router(links.router)
router.include_router(contacts.router)
router.include_router(notifications.router)
router.include_router(audit_router(AuditLog))

__all__ = ["router"]
