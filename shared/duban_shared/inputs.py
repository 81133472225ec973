"""Strict input shared by the services' HTTP APIs: what a request may carry, refused with a
stable code before it reaches a route (JSON bodies) or by the request models (fields).

- JSON bodies are parsed once here, strictly: valid UTF-8, no duplicate keys, no NaN or
  Infinity, no number too long to be a quantity, no nesting past `MAX_DEPTH`, no lone UTF-16
  surrogate (a string PostgreSQL and Kafka cannot store). Each problem has its own code (422).
- Numbers and booleans are not coerced from other types (`StrictInt`, `StrictBool`, `Number`);
  dates and times must be ISO 8601 text, not epoch numbers (`IsoDate`, `IsoDateTime`).
- Text never carries control characters (`Text`, `Line`): NUL breaks PostgreSQL, the others
  hide text from the people who read it.
- Every integer in a path or a query is bounded (`PathNumber`, `Position`, `Year`, and
  `duban_shared.api.Limit`/`Offset`), so none can overflow the database's integers; a work
  point's code in a path matches its pattern (`WorkPointCode`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from email.message import Message
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from duban_shared.api import ApiError, refuse
from duban_shared.events import WORK_POINT_CODE_PATTERN

MAX_DEPTH = 32
"""JSON nesting allowed in a body; our deepest request model is 4 levels deep."""
MAX_DIGITS = 40
"""Digits allowed in a JSON number: more than any quantity or identifier we store."""


def _integer_only(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError('must be a JSON integer, e.g. 40 (not "40", not true)')
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON Schema counts 40.0 as an integer
    return value


StrictInt = Annotated[int, BeforeValidator(_integer_only)]
"""An integer that must be sent as a JSON integer (40 or 40.0; not "40", not true)."""
StrictBool = Annotated[bool, Strict()]
"""A boolean that must be sent as true or false (not "yes", not 1)."""
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite number sent as a JSON number (an integer is fine; "5.2" and true are not)."""


def text_only(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be ISO 8601 text, e.g. 2024-09-02T09:30:00+08:00")
    return value


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(text_only)]
"""An aware date and time as ISO 8601 text with a UTC offset (not an epoch number)."""
IsoDate = Annotated[date, BeforeValidator(text_only)]
"""A date as ISO 8601 text, e.g. 2024-12-31."""

_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _no_control_characters(value: str) -> str:
    for i, char in enumerate(value):
        if char not in _ALLOWED_CONTROLS and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(
                f"contains the control character U+{ord(char):04X} at position {i}; remove it"
            )
    return value


def _single_line(value: str) -> str:
    for i, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            raise ValueError(
                f"contains the control character U+{ord(char):04X} at position {i}; "
                "send a single line of text"
            )
    return value


@dataclass(frozen=True)
class _Pattern:
    """Document a pattern in the JSON Schema only; a validator enforces it with a message a
    person can act on (the pattern's own error would only quote the regex)."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", self.pattern)
        return json_schema


TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F\u2028\u2029]*$"
NO_CONTROL_CHARACTERS = AfterValidator(_no_control_characters)
SINGLE_LINE = AfterValidator(_single_line)
Text = Annotated[str, NO_CONTROL_CHARACTERS, _Pattern(TEXT_PATTERN)]
"""Text a person wrote: line breaks and tabs allowed, other control characters refused."""
Line = Annotated[str, SINGLE_LINE, _Pattern(LINE_PATTERN)]
"""A single line (a name, a title, a label): no control characters at all."""

PathNumber = Annotated[int, Path(ge=0, le=9999, description="A number of the plan (0-9999)")]
"""A section number in a path."""
_CODE = re.compile(rf"{WORK_POINT_CODE_PATTERN}")


def _work_point_code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a work point code: send its number where the plan numbers "
            "continuously (35), else section.item (3.2) or section.group.item (2.1.3), as the "
            "registry lists it"
        )
    return value


WorkPointCode = Annotated[
    str,
    Path(
        min_length=1,
        max_length=19,
        description="The work point's code in its plan: its number where the plan numbers "
        "continuously ('35'), else section.item ('3.2') or section.group.item ('2.1.3'); "
        "one to four levels of one to four digits.",
        examples=["35", "3.2"],
    ),
    AfterValidator(_work_point_code),
    _Pattern(rf"^{WORK_POINT_CODE_PATTERN}$"),
]
"""A work point's code in a path (what follows the plan slug in its id); anything else, e.g.
'3.', '.2' or '03a', is refused 422 `invalid_request` before the route runs."""
Position = Annotated[int, Path(ge=0, le=999, description="The target's position (0-999)")]
"""A target's position in its work point's list."""
Year = Annotated[int, Query(ge=1949, le=9999, description="A plan's year")]


class _BodyProblem(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _BodyProblem(
            "duplicate_key",
            f"The key '{duplicate}' appears twice in one JSON object; send each key once.",
        )
    return result


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _BodyProblem(
            "number_too_long",
            f"A number in the body has {len(text)} digits; at most {MAX_DIGITS} are accepted.",
        )
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_DIGITS * 2:
        raise _BodyProblem(
            "number_too_long",
            f"A number in the body has {len(text)} characters; send at most {MAX_DIGITS * 2}.",
        )
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BodyProblem(
            "number_out_of_range", f"The number {text} is too large for a 64-bit float."
        )
    return value


def _constant(name: str) -> Any:
    raise _BodyProblem("invalid_json", f"{name} is not JSON; send a number or null.")


def _depth_and_surrogates(value: Any, depth: int = 1) -> None:
    """Refuse nesting past MAX_DEPTH and strings holding a lone surrogate (from a \\ud800
    escape), which no UTF-8 store accepts."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, dict):
        for key, item in value.items():
            _depth_and_surrogates(key, depth)
            _depth_and_surrogates(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _depth_and_surrogates(item, depth + 1)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _BodyProblem(
                "invalid_unicode",
                "A string in the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff); "
                "send real characters.",
            ) from None


def _too_deep() -> _BodyProblem:
    return _BodyProblem(
        "json_too_deep", f"The JSON body nests deeper than {MAX_DEPTH} levels; flatten it."
    )


def loads_strict(body: bytes) -> Any:
    """Parse a JSON body strictly; raise ApiError(422) with the problem's own code."""
    try:
        text = body.decode("utf-8-sig") if body.startswith(b"\xef\xbb\xbf") else body.decode()
    except UnicodeDecodeError as exc:
        raise ApiError(
            422,
            "invalid_encoding",
            f"The body is not valid UTF-8 (byte {exc.start}); send JSON encoded as UTF-8.",
        ) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
        if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
            _depth_and_surrogates(value)
    except _BodyProblem as problem:
        raise ApiError(422, problem.code, problem.message) from None
    except RecursionError:
        deep = _too_deep()
        raise ApiError(422, deep.code, deep.message) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            422,
            "invalid_json",
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
        ) from None
    return value


def _is_json(content_type: str | None) -> bool:
    """FastAPI reads a body as JSON when its content type is JSON (application/json or
    */*+json); without a content type it does not (strict content type)."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    main, sub = message.get_content_maintype(), message.get_content_subtype()
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class StrictJsonBody:
    """Check every JSON request body with `loads_strict` before the app sees it; a body that
    fails is answered 422 with its code, one that passes is handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the (size-checked) body, check it if it is JSON, then replay it to the app."""
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type")
        if not _is_json(content_type.decode("latin-1") if content_type else None):
            await self.app(scope, receive, send)
            return
        messages: list[AsgiMessage] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                loads_strict(body)
            except ApiError as error:
                await refuse(send, error)
                return

        async def replay() -> AsgiMessage:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


PlanSlug = Annotated[
    str,
    Path(
        min_length=1,
        max_length=80,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="A plan's slug: lower-case letters, digits and hyphens, e.g. "
        "'zhaoqing-digital-2024'.",
    ),
]
"""A plan slug in a path (the part of a work point id before the slash)."""
