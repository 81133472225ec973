"""Deadlines stated in a work point's text: 2025年6月底前, 9月底前, 年底前, 2025年10月31日前.

A work point is due when its last stated part is due, so :func:`due_date` gives the latest
deadline found. A month or "年底" without a year is in the plan's year.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

_BEFORE = r"(?:前|以前|之前)"
_DEADLINE = re.compile(
    r"(?:(?P<y>\d{4})年)?"
    r"(?:(?P<m>\d{1,2})月(?:(?P<d>\d{1,2})日" + _BEFORE + r"|(?P<end>底|末)" + _BEFORE + r"?|"
    r"(?P<before>" + _BEFORE + r"))"
    r"|(?P<year_end>(?:(?<=年)|年)(?:底|末)" + _BEFORE + r"?)"
    r"|(?P<half>上半年))"
)


def deadlines(text: str, plan_year: int) -> list[date]:
    """Every deadline in the text, in order of appearance.

    * ``2025年6月底前`` / ``6月底`` (no year: the plan's year): the month's last day;
    * ``2025年10月31日前``: that day (a date without 前 is not a deadline);
    * ``9月前``: the day before 1 September;
    * ``年底前`` / ``2026年底``: 31 December; ``上半年``: 30 June.

    Years and months that are no date (2025年13月底) are skipped.
    """
    found: list[date] = []
    for match in _DEADLINE.finditer(text):
        year = int(match["y"]) if match["y"] else plan_year
        try:
            if match["year_end"] is not None:
                found.append(date(year, 12, 31))
            elif match["half"] is not None:
                found.append(date(year, 6, 30))
            elif match["d"] is not None:
                found.append(date(year, int(match["m"]), int(match["d"])))
            elif match["end"] is not None:
                month = int(match["m"])
                found.append(date(year, month, calendar.monthrange(year, month)[1]))
            elif match["before"] is not None:
                found.append(date(year, int(match["m"]), 1) - timedelta(days=1))
        except ValueError:  # 13月, 2月30日, a year out of range
            continue
    return found


def due_date(text: str, plan_year: int) -> date | None:
    """The latest deadline in the text, or None when it states none."""
    found = deadlines(text, plan_year)
    return max(found) if found else None
