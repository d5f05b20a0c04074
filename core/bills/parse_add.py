"""The ``/add`` command's argument parser: free text like ``2支向日葵, 3 玫瑰 @15`` into items."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from core.errors import CommandError

_NUM = r"\d+(?:\.\d+)?"
# Counting words that may follow a number directly ("2支向日葵", "3盆绿萝").
_CJK_UNIT = r"(?:支|枝|朵|束|株|棵|盆|把|扎|个|只|件|份|箱|盒|包|瓶|斤|公斤|千克)"
_LATIN_UNIT = r"(?:x|×|\*|pcs?|stems?|kg)"
_PRICE_RE = re.compile(
    rf"""(?:
        \s*(?:@|单价|each|at\s|每{_CJK_UNIT}?)\s*[¥$]?\s*(?P<a>{_NUM})\s*(?:元|块)?
      | \s*[¥$]\s*(?P<b>{_NUM})
      | (?<![\d.])\s*(?P<c>{_NUM})\s*(?:元|块|yuan|rmb)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LEAD_RE = re.compile(
    rf"^(?P<q>{_NUM})(?:{_CJK_UNIT}|\s*{_LATIN_UNIT}(?=\s|$))?\s*(?P<name>.+)$", re.IGNORECASE
)
_TRAIL_RE = re.compile(
    rf"^(?P<name>.+?)\s*(?:x|×|\*)?\s*(?P<q>{_NUM})\s*(?:{_CJK_UNIT}|{_LATIN_UNIT})?\s*$",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"[,、;\n]+")
# "2 牡丹 8/15": unit cost / unit price at the end of an item.
_COST_PRICE_RE = re.compile(rf"(?<![\d.])\s*[¥$]?(?P<cost>{_NUM})\s*/\s*[¥$]?(?P<price>{_NUM})\s*$")
_NEGATIVE_RE = re.compile(rf"(?:^|\s)-\s*{_NUM}")
_EXPONENT_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?[eE][-+]?\d+)(?![\w.])")
_MAX_DIGITS = 15  # a number with more integer digits than this is no quantity or price
_ADD_USAGE_EN = (
    "Use: /add 2 向日葵, 3 玫瑰 @15 — quantity and name (either order, e.g. 2支向日葵 or "
    "向日葵 2), items separated by commas, an optional unit price after @ or before 元, "
    "or cost/price for a new item: /add 2 牡丹 8/15."
)
_ADD_USAGE_ZH = (
    "格式：/add 2 向日葵, 3 玫瑰 @15 —— 数量和品名（顺序不限，如 2支向日葵 或 向日葵 2），"
    "多个项目用逗号、顿号或分号分隔，单价可选，写在 @ 之后或“元”之前；"
    "新商品可写进价/售价：/add 2 牡丹 8/15。"
)


def _add_error(segment: str, why_en: str, why_zh: str) -> CommandError:
    return CommandError(
        f"Could not read {segment!r}: {why_en}. {_ADD_USAGE_EN}",
        code="bad_add",
        zh=f"无法识别“{segment}”：{why_zh}。{_ADD_USAGE_ZH}",
    )


def parse_add(text: str) -> list[dict[str, str]]:
    """Parse the ``/add`` command's argument into ledger items.

    Accepts ``"2 向日葵"``, ``"向日葵 2"``, ``"2支向日葵"``, ``"2 sunflower"``, several items
    separated by ``,`` ``，`` ``、`` ``;`` ``；`` and an optional unit price (``"@15"``,
    ``"15元"``, ``"¥15"``, ``"每支15元"``) or unit cost and price (``"2 牡丹 8/15"``). Returns
    ``[{"name", "quantity"[, "unit_cost"][, "unit_price"]}]``
    with numbers as exact decimal strings. Raises CommandError (en + zh) with the expected form.
    """
    folded = unicodedata.normalize("NFKC", text or "")  # full-width digits, ，；＠￥ fold
    segments = [s.strip() for s in _SPLIT_RE.split(folded) if s.strip()]
    if not segments:
        raise CommandError(
            f"Nothing to add. {_ADD_USAGE_EN}",
            code="bad_add",
            zh=f"没有要添加的内容。{_ADD_USAGE_ZH}",
        )
    items: list[dict[str, str]] = []
    for raw_segment in segments:
        segment = _plain_numbers(raw_segment)
        if _NEGATIVE_RE.search(segment):
            raise _add_error(
                raw_segment, "the quantity must be positive", "数量必须是正数（大于 0）"
            )
        body, price, cost = segment, None, None
        pair = _COST_PRICE_RE.search(segment)
        m = None if pair else _PRICE_RE.search(segment)
        if pair and pair.start() > 0:
            cost, price = pair.group("cost"), pair.group("price")
            body = segment[: pair.start()].strip()
        elif m and m.start() > 0:
            price = m.group("a") or m.group("b") or m.group("c")
            body = segment[: m.start()].strip()
        lead = _LEAD_RE.match(body)
        trail = None if lead else _TRAIL_RE.match(body)
        found = lead or trail
        if found is None:
            raise _add_error(segment, "no quantity found", "没有找到数量")
        name = " ".join(found.group("name").split())
        qty = found.group("q")
        if lead and re.search(rf"\s{_NUM}$", name):
            raise _add_error(
                segment,
                "two numbers; write the price after @ (2 向日葵 @15)",
                "有两个数字；单价请写在 @ 之后（2 向日葵 @15）",
            )
        if not any(ch.isalpha() for ch in name):
            raise _add_error(segment, "no item name found", "没有找到品名")
        if Decimal(qty) <= 0:
            raise _add_error(segment, "the quantity must be more than 0", "数量必须大于 0")
        item = {"name": name, "quantity": qty}
        if cost is not None:
            item["unit_cost"] = cost
        if price is not None:
            item["unit_price"] = price
        items.append(item)
    return items


def _plain_numbers(segment: str) -> str:
    """``1e3`` read as the number it is (``1000``); one too large to be a quantity or price
    (``1e30``) is refused as a number, not misread as ``1`` of an item called ``e30``."""

    def plain(match: re.Match[str]) -> str:
        number = Decimal(match.group(1))
        if number.adjusted() >= _MAX_DIGITS:
            raise _add_error(
                segment,
                f"{match.group(1)} is too large for a quantity or price",
                f"{match.group(1)} 太大，不能作为数量或价格",
            )
        return format(number.normalize(), "f")

    return _EXPONENT_RE.sub(plain, segment)
