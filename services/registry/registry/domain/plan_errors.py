"""What the plan parser says about a text: a refusal (:class:`PlanParseError`) or a note."""

from __future__ import annotations

from pydantic import BaseModel


class PlanParseError(ValueError):
    """A text that does not have the shape of a work plan; ``code`` is stable, ``line`` 1-based."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.line = line


class ParseNote(BaseModel):
    """Something the office should know about a parsed text that did not stop the parse."""

    line: int | None
    code: str
    message: str
