"""Progress HTTP API: ingestion for agency systems; progress, scorecards, closure and audit for
the coordinating office and the agencies; the supervision board (HTML under /board)."""

from __future__ import annotations

from duban_shared.audit_api import audit_router
from fastapi import APIRouter

from progress.api import (
    audit,
    board,
    circulars,
    closure,
    events,
    notices,
    plans,
    scorecards,
    work_points,
)
from progress.store.models import AuditLog

router = APIRouter()
for module in (events, work_points, plans, scorecards, closure, circulars, notices, audit, board):
    router.include_router(module.router)
router.include_router(audit_router(AuditLog))
