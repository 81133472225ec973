"""The supervision board (督办看板): server-rendered pages for the coordinating office and the
agencies, under /board. See pages.py."""

from __future__ import annotations

from fastapi import APIRouter

from progress.api.board import login, notices, pages, reports

router = APIRouter()
router.include_router(login.router)
router.include_router(pages.router)
router.include_router(notices.router)
router.include_router(reports.router)
