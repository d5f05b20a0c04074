"""TALLYBOT_RUN_TIMEOUT: a bound on one run's wall time (issue 13).

A small local model can take minutes per turn; without a bound a CLI turn never ends. The
deadline is set when ``Engine.execute`` starts (time a run spends waiting for a person's
approval does not count) and checked while the model streams and before every turn; past it
the run fails with :class:`RunTimedOut` and a message that says which setting to change.
"""

from __future__ import annotations

import asyncio

from core.errors import RunError


class RunTimedOut(RunError):
    """The run took longer than ``TALLYBOT_RUN_TIMEOUT`` seconds."""

    code = "run_timeout"


def deadline_after(seconds: float) -> float | None:
    """The loop time ``seconds`` from now; None when the bound is off (0 or less)."""
    if seconds <= 0:
        return None
    return asyncio.get_running_loop().time() + seconds


def timed_out(limit: float) -> RunTimedOut:
    """The error a run past its deadline fails with (en + zh)."""
    return RunTimedOut(
        f"the run took longer than {limit:g} s and was stopped (TALLYBOT_RUN_TIMEOUT={limit:g}); "
        "ask a simpler question, or raise the limit for a slow model",
        zh=f"处理超过 {limit:g} 秒，已停止（TALLYBOT_RUN_TIMEOUT={limit:g}）。"
        "请把问题拆小，或为较慢的模型调高这个上限。",
    )


def check_deadline(deadline: float | None, limit: float) -> None:
    """Raise :class:`RunTimedOut` when ``deadline`` has passed."""
    if deadline is not None and asyncio.get_running_loop().time() >= deadline:
        raise timed_out(limit)
