"""`/add` argument parsing: the forms people type, and errors that show the expected form."""

from __future__ import annotations

import pytest

from core.bills import parse_add
from core.errors import CommandError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 向日葵", [{"name": "向日葵", "quantity": "2"}]),
        ("向日葵 2", [{"name": "向日葵", "quantity": "2"}]),
        ("2支向日葵", [{"name": "向日葵", "quantity": "2"}]),
        ("向日葵2支", [{"name": "向日葵", "quantity": "2"}]),
        ("向日葵 2 支", [{"name": "向日葵", "quantity": "2"}]),
        ("2 sunflower", [{"name": "sunflower", "quantity": "2"}]),
        ("2 red  roses", [{"name": "red roses", "quantity": "2"}]),
        ("sunflower x2", [{"name": "sunflower", "quantity": "2"}]),
        ("2 xylophone", [{"name": "xylophone", "quantity": "2"}]),  # "x" is not eaten as a unit
        ("２ 向日葵", [{"name": "向日葵", "quantity": "2"}]),  # full-width digit
        ("1.5kg 苹果", [{"name": "苹果", "quantity": "1.5"}]),
        ("2 向日葵 @15", [{"name": "向日葵", "quantity": "2", "unit_price": "15"}]),
        ("2 向日葵＠15.5", [{"name": "向日葵", "quantity": "2", "unit_price": "15.5"}]),
        ("2 向日葵 15元", [{"name": "向日葵", "quantity": "2", "unit_price": "15"}]),
        ("2支向日葵15元", [{"name": "向日葵", "quantity": "2", "unit_price": "15"}]),
        ("3盆绿萝 每盆12元", [{"name": "绿萝", "quantity": "3", "unit_price": "12"}]),
        ("2 sunflower $3.5", [{"name": "sunflower", "quantity": "2", "unit_price": "3.5"}]),
        ("2 向日葵 ￥15", [{"name": "向日葵", "quantity": "2", "unit_price": "15"}]),
        (
            "2 向日葵, 3 玫瑰",
            [{"name": "向日葵", "quantity": "2"}, {"name": "玫瑰", "quantity": "3"}],
        ),
        (
            "2 向日葵，3 玫瑰 @8、百合 1；4 tulip",
            [
                {"name": "向日葵", "quantity": "2"},
                {"name": "玫瑰", "quantity": "3", "unit_price": "8"},
                {"name": "百合", "quantity": "1"},
                {"name": "tulip", "quantity": "4"},
            ],
        ),
        ("2 向日葵,", [{"name": "向日葵", "quantity": "2"}]),  # trailing separator
    ],
)
def test_forms(text: str, expected: list[dict[str, str]]) -> None:
    assert parse_add(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "Nothing to add"),
        ("   ", "Nothing to add"),
        ("向日葵", "no quantity"),
        ("@15", "no item name"),
        ("2", "no quantity"),  # a bare number has no name
        ("0 向日葵", "more than 0"),
        ("2 向日葵 15", "two numbers"),
        ("2 向日葵, 玫瑰", "no quantity"),
    ],
)
def test_errors_show_the_expected_form(text: str, why: str) -> None:
    with pytest.raises(CommandError) as err:
        parse_add(text)
    assert why in err.value.message
    assert "/add 2 向日葵, 3 玫瑰 @15" in err.value.message
    assert err.value.zh and "格式：/add 2 向日葵" in err.value.zh
    assert err.value.code == "bad_add"
