"""Cursor pages as the API lists them: ``limit``, ``order``, ``after``, ``before``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.assistants_api.errors import bad_request


@dataclass(frozen=True, slots=True)
class PageParams:
    """One list request's cursor: ``order`` is ``desc`` (newest first) unless asked."""

    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None


def page_params(query: Mapping[str, str]) -> PageParams:
    """Read and check the list parameters of a query string."""
    raw = query.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"Invalid 'limit': {raw!r} is not an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise bad_request(f"Invalid 'limit': {limit}; it must be between 1 and 100.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': {order!r}; use 'asc' or 'desc'.", param="order")
    return PageParams(limit, order, query.get("after") or None, query.get("before") or None)


def page(items: Sequence[dict[str, Any]], params: PageParams) -> dict[str, Any]:
    """A list object of ``items`` (given oldest first), cut at the cursors."""
    ordered = list(items) if params.order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    start, end = 0, len(ordered)
    if params.after is not None:
        if params.after not in ids:
            raise bad_request(f"No object with id '{params.after}' to page after.", param="after")
        start = ids.index(params.after) + 1
    if params.before is not None:
        if params.before not in ids:
            raise bad_request(
                f"No object with id '{params.before}' to page before.", param="before"
            )
        end = ids.index(params.before)
    window = ordered[start:end]
    if params.before is not None and params.after is None:
        chosen = window[-params.limit :]  # the page just before the cursor
        has_more = len(window) > params.limit
    else:
        chosen = window[: params.limit]
        has_more = len(window) > params.limit
    return {
        "object": "list",
        "data": chosen,
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
        "has_more": has_more,
    }
