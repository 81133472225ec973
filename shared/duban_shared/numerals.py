"""Chinese numerals for work points (第三十五项, 第3.2项): the notifier's messages and the board."""

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


def chinese_code(code: str) -> str:
    """Write a work point's code as people read it after 第…项: a whole number in Chinese
    numerals as before ('35' -> 三十五, so 第三十五项), a dotted code as it is ('3.2' -> 3.2,
    so 第3.2项: section.item, the way plans cite their own items)."""
    return chinese_number(int(code)) if code.isdigit() else code
