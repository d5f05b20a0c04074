"""The history window's exchange cache (core.prompt.ExchangeCache): every request is the one
built without it, it stays bounded, and only finished runs go into it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.domain import Message, Run, RunStatus, RunStep, StepStatus, StepType
from core.models.base import AssistantText, ModelRequest
from core.models.scripted import ScriptedModel, call, text
from core.prompt import ExchangeCache, Prompt
from core.store import Store
from core.store.history import History
from core.store.turns import TurnContext
from tests.engine.helpers import SPEC, Harness


def _script(turns: int) -> list[Any]:
    """Every other question gets an echo call (a long output) before its answer."""
    script: list[Any] = []
    for i in range(turns):
        if i % 2:
            script.append([call("echo", {"text": f"{i} " + "z" * 300}, f"c{i}")])
        script.append(text(f"answer {i} " + "a" * (i * 7)))
    return script


async def _play(root: Path, *, cache: ExchangeCache | None, **changes: Any) -> Harness:
    settings = Settings(data_dir=root, _env_file=None)  # type: ignore[call-arg]
    settings.ensure_dirs()
    settings.history_max_messages = 7  # the window slides: runs leave it, after_seq moves
    settings.tool_output_limit = 120
    for name, value in changes.items():
        setattr(settings, name, value)
    store = await Store.open(settings.db_url)
    h = Harness(settings, store, ScriptedModel(_script(12)))
    h.engine.exchanges = cache
    for i in range(12):
        await h.send(f"question {i} " + "q" * (i * 5))
    await store.close()
    return h


def _requests(h: Harness) -> list[ModelRequest]:
    assert isinstance(h.model, ScriptedModel)
    return h.model.requests


@pytest.mark.parametrize("context_tokens", [None, 700])
async def test_requests_are_the_same_with_and_without_the_cache(
    tmp_path: Path, context_tokens: int | None
) -> None:
    cache = ExchangeCache()
    cached = await _play(tmp_path / "a", cache=cache, context_tokens=context_tokens)
    plain = await _play(tmp_path / "b", cache=None, context_tokens=context_tokens)
    assert len(cache) >= 11  # every finished run was built once and kept
    assert _requests(cached) == _requests(plain)
    assert len(_requests(cached)) == 18  # 12 questions, 6 of them with a tool round


async def test_the_engine_cache_is_bounded_and_still_right(tmp_path: Path) -> None:
    small = ExchangeCache(limit=2)
    cached = await _play(tmp_path / "a", cache=small)
    plain = await _play(tmp_path / "b", cache=None)
    assert len(small) == 2
    assert _requests(cached) == _requests(plain)


def test_the_cache_drops_the_least_recently_used() -> None:
    from core.prompt import _Exchange

    cache = ExchangeCache(limit=3)
    for n in range(3):
        cache.put((f"run_{n}", 0, 10), _Exchange([AssistantText(str(n))]))
    assert cache.get(("run_0", 0, 10)) is not None  # now the most recent
    cache.put(("run_3", 0, 10), _Exchange([]))
    assert len(cache) == 3
    assert ("run_1", 0, 10) not in cache
    assert ("run_0", 0, 10) in cache and ("run_3", 0, 10) in cache
    with pytest.raises(ValueError, match="at least 1"):
        ExchangeCache(limit=0)


def _answered(run_id: str, status: RunStatus, upto: int, answer: str) -> Run:
    step = RunStep(
        id=f"step_{run_id}",
        run_id=run_id,
        type=StepType.MESSAGE_CREATION,
        status=StepStatus.COMPLETED,
        text=answer,
    )
    return Run(id=run_id, thread_id="t", model="m", status=status, upto_seq=upto, steps=[step])


@pytest.mark.parametrize(
    "status", [RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING]
)
async def test_a_run_not_finished_is_never_cached(
    settings: Settings, store: Store, status: RunStatus
) -> None:
    thread = await store.get_or_create_thread("test:cache")
    cache = ExchangeCache()
    prompt = Prompt(settings, store, Harness(settings, store, ScriptedModel()).tools, SPEC, cache)
    done = _answered("run_done", RunStatus.COMPLETED, 1, "first answer")
    live = _answered("run_live", status, 2, "partial")
    messages = [
        Message(id=f"m{n}", thread_id=thread.id, role="user", text=f"q{n}", seq=n)
        for n in (1, 2, 3)
    ]
    ctx = TurnContext(thread, [], History([done, live], messages, 0))
    current = Run(id="run_now", thread_id=thread.id, model="m", upto_seq=3)
    first = prompt._history(ctx, current)
    assert AssistantText("partial") in first
    assert ("run_done", 0, settings.tool_output_limit) in cache
    assert len(cache) == 1  # the live run was built, not kept

    live.steps[0].text = "partial, then more"  # it moves on; the next request sees it
    again = prompt._history(ctx, current)
    assert AssistantText("partial, then more") in again
    assert AssistantText("partial") not in again
    assert again[:2] == first[:2]  # the finished run's exchange, from the cache
