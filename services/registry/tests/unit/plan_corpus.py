"""The corpus of invented plan texts the parser tests read (tests/data/plans/ of the registry).

Each plan ``<name>.txt`` has next to it ``<name>.expected.json``, written by hand from reading
the text; the folder's README.md describes the plans and the format.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CORPUS_RELATIVE = Path("tests/data/plans")
EXPECTED_SUFFIX = ".expected.json"


@cache
def corpus_dir() -> Path:
    """The corpus folder, found from this file upwards."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / CORPUS_RELATIVE
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(CORPUS_RELATIVE)


def corpus_names() -> list[str]:
    """The names of the plans that have both a text and an expected file, sorted."""
    folder = corpus_dir()
    return sorted(
        path.name.removesuffix(EXPECTED_SUFFIX)
        for path in folder.glob(f"*{EXPECTED_SUFFIX}")
        if _text_path(path.name.removesuffix(EXPECTED_SUFFIX)).is_file()
    )


def _text_path(name: str) -> Path:
    """A corpus plan's text: beside its expectations, or among the plans the system ships
    (data/plans/, for the invented 2025 plan the demo imports beside the 2024 one)."""
    beside = corpus_dir() / f"{name}.txt"
    return beside if beside.is_file() else corpus_dir().parents[4] / "data" / "plans" / beside.name


def corpus_text(name: str) -> str:
    """The plan text ``<name>.txt``."""
    return _text_path(name).read_text(encoding="utf-8")


def corpus_expected(name: str) -> dict[str, Any]:
    """The hand-written expectations ``<name>.expected.json``."""
    expected: dict[str, Any] = json.loads(
        (corpus_dir() / f"{name}{EXPECTED_SUFFIX}").read_text(encoding="utf-8")
    )
    return expected
