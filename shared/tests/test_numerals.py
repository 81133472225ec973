"""Work points are named in Chinese numerals, as the plan names them."""

from __future__ import annotations

import pytest
from duban_shared.numerals import chinese_number


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "一"),
        (10, "十"),
        (11, "十一"),
        (20, "二十"),
        (35, "三十五"),
        (50, "五十"),
        (99, "九十九"),
    ],
)
def test_chinese_number_writes_1_to_99_in_chinese_numerals(n: int, words: str) -> None:
    assert chinese_number(n) == words


@pytest.mark.parametrize("n", [0, 100, 135, -1])
def test_chinese_number_leaves_numbers_outside_1_to_99_in_arabic(n: int) -> None:
    assert chinese_number(n) == str(n)


def test_a_whole_code_reads_as_before_and_a_dotted_code_as_it_is() -> None:
    from duban_shared.numerals import chinese_code

    assert chinese_code("35") == "三十五"
    assert chinese_code("3.2") == "3.2"
    assert chinese_code("2.1.3") == "2.1.3"
    assert chinese_code("120") == "120"
