"""Progress HTTP API: ingestion for agency systems; progress, scorecards, closure and audit for
the coordinating office and the agencies."""

from __future__ import annotations

from fastapi import APIRouter

from progress import api_ingest, api_read, board

router = APIRouter()
router.include_router(api_ingest.router)
router.include_router(api_read.router)
router.include_router(board.router)  # the supervision board (督办看板), HTML under /board
