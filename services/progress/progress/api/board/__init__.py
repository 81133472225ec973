"""The supervision board (督办看板): server-rendered pages for the coordinating office and the
agencies, under /board. See pages.py."""

from __future__ import annotations

from fastapi import APIRouter

from progress.api.board import (
    account,
    audit,
    circulars,
    extensions,
    login,
    notices,
    pages,
    reports,
)

router = APIRouter()
router.include_router(login.router)
router.include_router(account.router)
router.include_router(pages.router)
router.include_router(notices.router)
router.include_router(extensions.router)
router.include_router(circulars.router)
router.include_router(audit.router)
router.include_router(reports.router)
