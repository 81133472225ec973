"""The Digital Zhaoqing 2024 plan text the parser tests read (data/plans/ of the repository)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

PLAN_RELATIVE = Path("data/plans/zhaoqing-digital-2024.txt")


def plan_path() -> Path:
    """The plan file, found from this file upwards."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / PLAN_RELATIVE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(PLAN_RELATIVE)


@cache
def plan_text() -> str:
    """The plan text."""
    return plan_path().read_text(encoding="utf-8")


def plan_lines() -> list[str]:
    """The plan's lines (a new list each time)."""
    return plan_text().splitlines()
