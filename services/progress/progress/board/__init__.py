"""The supervision board (督办看板): server-rendered pages for the coordinating office and the
agencies, under /board. See routes.py."""

from progress.board.routes import router

__all__ = ["router"]
