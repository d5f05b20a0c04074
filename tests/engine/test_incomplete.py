"""Issue 13: an answer cut at the model's output limit is kept, shown with a note, and the run
is ``completed`` with ``incomplete_details`` -- never lost."""

from __future__ import annotations

from core.domain import RunStatus
from core.events import RunFinished, TextDelta
from core.models.base import ModelDone, ModelTextDelta
from tests.models.fake_openai import Fault


async def test_cut_off_answer_is_kept_with_a_note(make_harness, store) -> None:
    fault = Fault.incomplete("max_output_tokens", events=[ModelTextDelta("Revenue is 1")])
    harness = await make_harness([fault])
    if not hasattr(harness, "fake"):  # the scripted model plays the adapter's outcome
        harness.model.turns = [[ModelTextDelta("Revenue is 1"), ModelDone(incomplete="length")]]
    events = await harness.send("revenue?")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.startswith("Revenue is 1") and "cut off" in text
    final = events[-1]
    assert isinstance(final, RunFinished) and final.status == RunStatus.COMPLETED
    assert final.text == text
    run = await store.get_run(final.run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.incomplete_details and run.incomplete_details["reason"] in (
        "max_output_tokens",
        "length",
    )
    thread = await harness.thread()
    (answer,) = await store.list_messages(thread.id, role="assistant")
    assert answer.text == text
