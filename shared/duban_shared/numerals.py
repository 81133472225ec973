"""Chinese numerals for work points (第三十五项): the notifier's messages and the board."""

from __future__ import annotations

_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """Write 1..99 in Chinese numerals (35 -> 三十五); other numbers stay Arabic."""
    if not 1 <= n <= 99:
        return str(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    head = "" if tens == 1 else _DIGITS[tens]
    return head + "十" + (_DIGITS[ones] if ones else "")
