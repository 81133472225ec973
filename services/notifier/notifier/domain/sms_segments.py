"""How many SMS parts a text costs, and how to cut it to a budget.

Providers bill per part, and a long alert split into many parts may arrive out of order or
partly. A text is sent as GSM-7 (160 septets, or 153 per part once concatenated, since the
concatenation header takes the rest) only when every character is in the GSM 03.38 alphabet;
one character outside it (any Chinese character) makes the whole text UCS-2: 70 UTF-16 units,
or 67 per part. Extension characters such as `€` or `{` cost two septets (an escape first),
and a part never ends between the two halves of such a pair or of a UTF-16 surrogate pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# 3GPP TS 23.038 default alphabet, in table order (0x1B, the escape, is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs the escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
_ELLIPSIS: dict[Encoding, str] = {"GSM-7": "...", "UCS-2": "…"}  # … itself is not GSM-7


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a text costs as SMS: `units` are septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: Encoding
    characters: int
    units: int
    segments: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM alphabet, else UCS-2."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return "GSM-7"
    return "UCS-2"


def _weight(c: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if c in GSM7_EXTENSION else 1
    return 2 if ord(c) > 0xFFFF else 1


def _parts(weights: list[int], per_part: int) -> int:
    """Fill parts greedily, never splitting a character's units across two parts."""
    parts, used = 1, 0
    for w in weights:
        if used + w > per_part:
            parts, used = parts + 1, 0
        used += w
    return parts


def analyze(text: str) -> SmsInfo:
    """Encoding, length and number of parts of `text` (an empty text is still one SMS)."""
    encoding = encoding_of(text)
    weights = [_weight(c, encoding) for c in text]
    units = sum(weights)
    single, per_part = _LIMITS[encoding]
    segments = 1 if units <= single else _parts(weights, per_part)
    return SmsInfo(encoding, len(text), units, segments)


def truncate_to_segments(text: str, max_segments: int) -> str:
    """Cut `text` to at most `max_segments` parts, marking the cut with an ellipsis.

    The ellipsis follows the encoding of what is kept ("..." for GSM-7, "…" for UCS-2), so
    cutting an ASCII text never turns it into UCS-2 and halves its room.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if analyze(text).segments <= max_segments:
        return text

    def cut(keep: int) -> str:
        head = text[:keep].rstrip()
        return head + _ELLIPSIS[encoding_of(head)]

    # More characters never cost fewer parts, so the longest prefix that fits is found by
    # bisection; keep=0 (the ellipsis alone) always fits.
    low, high = 0, len(text) - 1
    while low < high:
        mid = math.ceil((low + high) / 2)
        if analyze(cut(mid)).segments <= max_segments:
            low = mid
        else:
            high = mid - 1
    return cut(low)
