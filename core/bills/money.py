"""Numbers, names and the small checked fields of a bill: Decimal parsing, bounds, formatting.

Money and quantities are :class:`decimal.Decimal`. Numbers arrive as ``str``/``int``/``float``
and are converted through ``str`` so ``0.1`` stays ``0.1``; NaN, infinities and booleans are
rejected. Text formats: money as decimal strings with at least two places (``"12.50"``, more
only when a unit price has them, e.g. ``"0.125"``); quantities as plain decimals without
trailing zeros (``"2"``, ``"1.5"``); timestamps ISO 8601 UTC with a ``Z`` suffix.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from datetime import date as _date
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import ToolError

CENT = Decimal("0.01")
# Bounds keep every product and sum far inside the 60-digit context used below, and stop a
# model from storing absurd values ("1e999") that would break exports.
MAX_QUANTITY = Decimal("1000000000")
MAX_UNIT = Decimal("1000000000000")
MAX_PLACES = 6
MAX_ITEMS = 500
MAX_NAME = 200
MAX_NOTE = 2000
PRECISION = 60

ZH_FIELD = {"unit_cost": "进价", "unit_price": "售价"}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
# Invisible characters that ride along from copy-paste and CSV BOMs; they would split one item
# into two visually identical ones.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u2060\u00ad"), None)


# --- names ---------------------------------------------------------------------------------


def clean_name(raw: str) -> str:
    """Display form of a name: NFKC, invisible characters dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE)
    return " ".join(text.split())


def normalize_name(s: str) -> str:
    """The comparison key of an item name.

    NFKC folds full-width letters and digits (``"Ｒｏｓｅ２"`` → ``"rose2"``), whitespace is
    trimmed and collapsed, and the result is casefolded (a no-op for Chinese), so
    ``"向日葵"``, ``" 向日葵 "`` and ``"Sunflower"``/``"sunflower"`` each name one item.
    """
    return clean_name(s).casefold()


def shown(value: Any) -> str:
    """A value as a message shows it: text quoted, numbers plain, never ``Decimal('1E+30')``."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        return str(value)
    return repr(value)


def invalid(message: str, zh: str, code: str = "invalid_item") -> ToolError:
    """The ToolError for a bad bill input, in English and Chinese."""
    return ToolError(message, code=code, zh=zh)


# --- numbers -------------------------------------------------------------------------------


def to_decimal(value: Any, what: str = "value") -> Decimal:
    """Convert a number from a model, a CSV or a person to a finite ``Decimal``.

    Floats go through ``str`` (``0.1`` → ``Decimal("0.1")``, not its binary expansion).
    Raises :class:`ToolError` for booleans, NaN, infinities and non-numeric text.
    """
    if isinstance(value, bool):  # bool is an int subclass; "true" is not a quantity
        raise invalid(
            f"{what} must be a number, got {shown(value)}",
            f"{what} 必须是数字，收到 {shown(value)}",
        )
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if not text or len(text) > 50:
            raise invalid(
                f"{what} must be a number, got {shown(value)}",
                f"{what} 必须是数字，收到 {shown(value)}",
            )
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise invalid(
                f"{what} must be a number, got {shown(value)}",
                f"{what} 必须是数字，收到 {shown(value)}",
            ) from None
    else:
        raise invalid(
            f"{what} must be a number, got {shown(value)}",
            f"{what} 必须是数字，收到 {shown(value)}",
        )
    if not number.is_finite():
        raise invalid(
            f"{what} must be a finite number, got {shown(value)}",
            f"{what} 必须是有限的数字，收到 {shown(value)}",
        )
    return number


def _check_places(
    number: Decimal, what: str, zh_what: str, raw: Any, code: str = "invalid_price"
) -> Decimal:
    number = number.normalize() if number else Decimal(0)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PLACES:
        raise invalid(
            f"{what} has more than {MAX_PLACES} decimal places: {shown(raw)}",
            f"{zh_what}的小数位超过 {MAX_PLACES} 位：{shown(raw)}",
            code=code,
        )
    return number


def parse_quantity(value: Any, name: str) -> Decimal:
    """A line's quantity: positive, at most MAX_QUANTITY, at most MAX_PLACES decimals."""
    what = f"quantity of {name}"
    try:
        number = to_decimal(value, what)
    except ToolError as exc:
        raise invalid(
            f"quantity of {name} must be a positive number, got {shown(value)}",
            f"{name} 的数量必须是正数，收到 {shown(value)}",
            code="invalid_quantity",
        ) from exc
    if number <= 0 or number > MAX_QUANTITY:
        raise invalid(
            f"quantity of {name} must be a positive number up to {MAX_QUANTITY}, got {shown(value)}",
            f"{name} 的数量必须是不超过 {MAX_QUANTITY} 的正数，收到 {shown(value)}",
            code="invalid_quantity",
        )
    return _check_places(number, what, f"{name} 的数量", value, "invalid_quantity")


def parse_unit(value: Any, name: str, field: str) -> Decimal | None:
    """A unit cost/price, or None when absent (None or empty text) so it can be filled."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    what = f"{field} of {name}"
    number = to_decimal(value, what)
    if number < 0 or number > MAX_UNIT:
        raise invalid(
            f"{what} must be between 0 and {MAX_UNIT}, got {shown(value)}",
            f"{name} 的{ZH_FIELD[field]}必须在 0 到 {MAX_UNIT} 之间，收到 {shown(value)}",
            code="invalid_price",
        )
    return _check_places(number, what, f"{name} 的{ZH_FIELD[field]}", value)


def format_money(value: Decimal) -> str:
    """Money as text: at least two decimal places, never an exponent, never rounded."""
    number = value.normalize() if value else Decimal(0)  # also turns -0 into 0
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        number = number.quantize(CENT)
    return format(number, "f")


def format_quantity(value: Decimal) -> str:
    """Quantity as text: plain decimal without trailing zeros (``"2"``, ``"1.25"``, ``"100"``)."""
    number = value.normalize() if value else Decimal(0)
    return format(number, "f")


def iso(moment: datetime) -> str:
    """A timestamp as ISO 8601 UTC with a ``Z`` suffix, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the other checked fields --------------------------------------------------------------


def check_date(value: Any) -> str:
    """A real calendar date as ``YYYY-MM-DD``; raises ToolError otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if _DATE_RE.match(text):
        try:
            _date.fromisoformat(text)
            return text
        except ValueError:
            pass
    raise ToolError(
        f"date must be a real calendar date as YYYY-MM-DD, got {shown(value)}",
        code="invalid_date",
        zh=f"日期格式应为 YYYY-MM-DD 且为有效日期，收到 {shown(value)}",
    )


def check_currency(value: Any) -> str:
    """A three-letter currency code, upper-cased; raises ToolError otherwise."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY_RE.match(text):
        raise ToolError(
            f"currency must be a 3-letter code such as CNY or USD, got {shown(value)}",
            code="invalid_currency",
            zh=f"币种应为三个字母的代码，例如 CNY 或 USD，收到 {shown(value)}",
        )
    return text


def check_note(note: str | None) -> str | None:
    """A note trimmed to MAX_NOTE characters; empty becomes None."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise ToolError("note must be text", code="invalid_note", zh="备注必须是文本")
    return note.strip()[:MAX_NOTE] or None
