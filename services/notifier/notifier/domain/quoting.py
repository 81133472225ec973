"""Text someone else wrote (an agency's note, the office's review), made safe to quote.

A message of the system must not let a quoted note pass for the system: no line of it may
read as a mail header, a signature, a tag of the system or one of its acknowledgement links.
`quote` makes the text inert; the templates then show it as a block introduced by who wrote it
(`_words.j2`, `quote_head`), each line after the quote mark `QUOTE_MARK`:

1. Line breaks of every kind (CR LF, CR, VT, FF, NEL, U+2028, U+2029) become one line break.
2. Control characters, format characters (bidi overrides and isolates, zero-width spaces and
   joiners, BOM, soft hyphen), private-use, surrogate and unassigned code points are dropped;
   any other space becomes an ASCII space and runs of spaces one; blank lines are dropped.
3. Links are defanged, so no mail client, handset or chat app turns them into links:
   `http://` -> `hxxp://`, `https://` -> `hxxps://`, another `scheme://` -> `scheme[:]//`,
   and the dots of a host name or IPv4 address -> `[.]` (`evil.example` -> `evil[.]example`,
   `user@mail.example` -> `user@mail[.]example`). Step 2 runs first, so a zero-width character
   inside `http://` cannot hide the scheme from this step.
4. The system's own markers become look-alikes that are not them: `【】` (the tags of
   subjects and the SMS provider's signature) -> `〔〕`, `「」` (the SMS's quotation marks)
   -> `『』`, the em dashes of the email signature `——` -> `－`.
5. Bounded: at most `MAX_CHARS` characters (then `CUT_MARK`), lines wrapped at `WIDTH`
   characters, at most `MAX_LINES` lines.

Each line of `quote` gets the quote mark in the code, not in a template, so an edited template
cannot print a line of the note without it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

QUOTE_MARK: Final = "｜ "
"""Starts every line of quoted text (a full-width bar: no mail client treats it as markup)."""
MAX_CHARS: Final = 500
WIDTH: Final = 60
MAX_LINES: Final = 12
CUT_MARK: Final = "…(原文过长,以下从略)"

_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_SPACES = re.compile(r"\s+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,30}):(?=//|\\\\)")
_HOST = re.compile(r"(?<![A-Za-z0-9.-])(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])")
_IPV4 = re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9])")
_MARKERS = str.maketrans({"【": "〔", "】": "〕", "「": "『", "」": "』", "—": "－", "―": "－"})


def _clean_line(line: str) -> str:
    kept = "".join(c for c in line if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return _SPACES.sub(" ", kept).strip()


def _defang_scheme(match: re.Match[str]) -> str:
    scheme = match.group(1)
    if scheme.lower() in ("http", "https"):
        return scheme[0] + "xx" + scheme[3:] + ":"
    return scheme + "[:]"


def defang(text: str) -> str:
    """`text` with every link, host name and IPv4 address made unclickable (step 3)."""
    text = _SCHEME.sub(_defang_scheme, text)
    text = _HOST.sub(lambda m: m.group().replace(".", "[.]"), text)
    return _IPV4.sub(lambda m: m.group().replace(".", "[.]"), text)


def clean(text: str | None) -> list[str]:
    """The lines of `text`, inert (steps 1 to 4), before any bound; none when nothing is left."""
    if not text:
        return []
    lines = (_clean_line(line) for line in _LINE_BREAKS.split(text))
    return [defang(line).translate(_MARKERS) for line in lines if line]


def quote(text: str | None) -> list[str]:
    """`text` as lines to show under a quote heading, each starting with `QUOTE_MARK`."""
    shown: list[str] = []
    room = MAX_CHARS
    for line in clean(text):
        if room <= 0:
            shown.append(CUT_MARK)
            break
        cut = len(line) > room
        if cut:
            line = line[:room].rstrip() + CUT_MARK
        room -= len(line)
        shown += [line[i : i + WIDTH] for i in range(0, len(line), WIDTH)]
        if cut:
            break
    if len(shown) > MAX_LINES:
        shown = [*shown[: MAX_LINES - 1], CUT_MARK]
    return [QUOTE_MARK + line for line in shown]


def one_line(text: str | None) -> str:
    """`text` inert on one line (lines joined by ` / `), for an SMS; cut by its budget later."""
    return " / ".join(clean(text))
