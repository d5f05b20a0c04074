"""The shared channel pieces: allowlist rules, once-only delivery, approval records claimed once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bots.channel import PLATFORMS, Allowlist, ApprovalRecords, Deliveries, platform_cli
from core.channels import ChannelState
from core.store import Store


def test_allowlist_any_lets_a_listed_person_or_place_in() -> None:
    rule = Allowlist(["7"], ["-100"])
    assert rule.allows(7, 5) and rule.allows(8, -100)
    assert not rule.allows(8, 5) and not rule.allows(None, None)


def test_allowlist_all_needs_every_list_that_is_set() -> None:
    both = Allowlist(["U1"], ["T1"], match="all")
    assert both.allows("U1", "T1")
    assert not both.allows("U1", "T2") and not both.allows("U2", "T1")
    teams_only = Allowlist([], ["T1"], match="all")
    assert teams_only.allows("anyone", "T1") and not teams_only.allows("anyone", None)


def test_empty_allowlists_are_open() -> None:
    assert Allowlist([], [" "], match="all").open
    assert Allowlist([], []).allows(None, None)


def _bot(store: Store) -> Any:
    return SimpleNamespace(channels=ChannelState(store))


async def test_a_delivery_is_first_once(store: Store) -> None:
    events = Deliveries(_bot(store), "test:event")
    assert await events.first("e1")
    assert not await events.first("e1")
    assert await Deliveries(_bot(store), "other:event").first("e1")  # sources are apart


async def test_an_approval_record_is_claimed_once(store: Store) -> None:
    records = ApprovalRecords(_bot(store), "test")
    await records.remember("run_1", {"chat": 1, "text": "确认？"})
    assert await records.peek("run_1") == {"chat": 1, "text": "确认？"}
    claims = await asyncio.gather(*(records.claim("run_1") for _ in range(3)))
    assert claims.count(None) == 2 and {"chat": 1, "text": "确认？"} in claims
    assert await records.peek("run_1") is None
    assert await records.claim("run_2") is None


def test_every_platform_has_a_cli() -> None:
    for name in PLATFORMS:
        module = platform_cli(name)
        assert module is not None and callable(module.add_parser) and callable(module.run)
    assert platform_cli("nowhere") is None
