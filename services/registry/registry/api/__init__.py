"""The registry's HTTP API: OAuth2 token endpoints, API clients, plans, work points, agencies.

Reads need any valid token (the plan is a public document); changes need the coordinating
office (role coordinator or operator). Lists are paginated with limit and offset.
"""

from duban_shared.audit_api import audit_router
from fastapi import APIRouter

from registry.api import (
    accounts,
    agencies,
    clients,
    extensions,
    oauth,
    plans,
    sessions,
    work_points,
)
from registry.api.errors import answer_refusals
from registry.store.models import AuditLog

router = APIRouter()
for part in (oauth, sessions, accounts, clients, plans, work_points, extensions, agencies):
    router.include_router(part.router)
router.include_router(extensions.plan_router)
router.include_router(audit_router(AuditLog))

__all__ = ["answer_refusals", "router"]
