"""The history window (core.store.history) reads the same with its cache as without, keeps
only finished runs, and stays bounded; on both backends."""

from __future__ import annotations

from core.domain import Run, RunStatus, StepStatus, StepType, Thread, new_id
from core.store import Store
from core.store.history import History, HistoryCache


async def _answered(store: Store, thread: Thread, text: str, *, finish: bool = True) -> Run:
    """A user message and a run answering it; finished with a text answer unless not."""
    message = await store.add_message(thread.id, "user", text)
    run = await store.create_run(
        Run(id=new_id("run"), thread_id=thread.id, model="m", upto_seq=message.seq)
    )
    await store.set_run_status(run, RunStatus.IN_PROGRESS)
    step = await store.add_step(run, StepType.MESSAGE_CREATION)
    if finish:
        await store.set_step_status(step, StepStatus.COMPLETED, text=f"answer to {text}")
        await store.set_run_status(run, RunStatus.COMPLETED)
    return run


async def _window(store: Store, thread: Thread, upto: int, window: int = 5) -> History:
    probe = Run(id="run_probe", thread_id=thread.id, model="m", upto_seq=upto)
    ctx = await store.turn_context(thread.id, probe, window=window)
    assert ctx.history is not None
    return ctx.history


async def _fresh(store: Store, thread: Thread, upto: int) -> History:
    kept = store._history()
    store._history_cache = HistoryCache()  # nothing known: every row read
    try:
        return await _window(store, thread, upto)
    finally:
        store._history_cache = kept


async def test_the_cached_window_is_the_one_read_afresh(any_store: Store) -> None:
    store = any_store
    thread = await store.get_or_create_thread("test:window")
    for i in range(6):
        await _answered(store, thread, f"q{i}")
    live = await _answered(store, thread, "q6", finish=False)
    last = await store.add_message(thread.id, "user", "q7")

    first = await _window(store, thread, last.seq)
    again = await _window(store, thread, last.seq)
    assert first == again == await _fresh(store, thread, last.seq)
    assert [r.status for r in again.runs][-1] == RunStatus.IN_PROGRESS
    assert len(again.runs) == 4 and again.after_seq > 0  # the window slid past q0-q2
    assert [m.text for m in again.messages] == ["q3", "q4", "q5", "q6", "q7"]
    assert live.id not in store._history().runs  # a run not finished is not kept

    # The live run finishes: the next window sees it as it is now, not as it was.
    await store.set_step_status(live.steps[0], StepStatus.COMPLETED, text="late answer")
    await store.set_run_status(live, RunStatus.COMPLETED)
    after = await _window(store, thread, last.seq)
    assert after == await _fresh(store, thread, last.seq)
    assert after.runs[-1].status == RunStatus.COMPLETED
    assert after.runs[-1].steps[0].text == "late answer"
    assert live.id in store._history().runs


async def test_the_window_cache_is_bounded(any_store: Store) -> None:
    store = any_store
    thread = await store.get_or_create_thread("test:bounded")
    for i in range(6):
        await _answered(store, thread, f"q{i}")
    last = await store.add_message(thread.id, "user", "q6")
    store._history_cache = HistoryCache(runs_limit=2, messages_limit=3)
    for _ in range(2):
        window = await _window(store, thread, last.seq)
        assert window == await _fresh(store, thread, last.seq)
        assert len(store._history().runs) == 2
        assert len(store._history().messages) == 3
    assert [m.text for m in window.messages] == ["q2", "q3", "q4", "q5", "q6"]
