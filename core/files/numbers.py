"""Number text as people write it in sales sheets: plain, with thousands separators, with a
currency sign. No pandas here, so the sales-file reader and model-free commands stay light."""

from __future__ import annotations

import re

_PLAIN_NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY = re.compile(r"^([+-]?)[¥￥$€£]\s*")


def number_text(cell: str) -> tuple[str | None, bool, bool]:
    """``(plain number text or None, had thousands separators, had a currency sign)``."""
    s = cell.strip()
    currency = False
    m = _CURRENCY.match(s)
    if m:
        s = m.group(1) + s[m.end() :]
        currency = True
    if _PLAIN_NUM.match(s):
        return s, False, currency
    if _THOUSANDS.match(s):
        return s.replace(",", ""), True, currency
    return None, False, currency
