"""What happens to runs outside a live ``Engine.execute``: cancelling one that is not
streaming, expiring approvals nobody gave, and readying runs a crash interrupted for recovery.

Functions over the store only, so channels' background tasks and start-up recovery need no
engine state.
"""

from __future__ import annotations

from core.domain import Run, RunStatus, StepStatus, StepType, utcnow
from core.errors import IllegalTransition, NotFound
from core.store import Store


async def mark_cancelled(store: Store, run: Run) -> None:
    """``run`` (and its open steps) to ``cancelled``, through ``cancelling``."""
    current = await store.get_run(run.id)
    if current.status.terminal:
        run.status = current.status
        return
    if current.status != RunStatus.CANCELLING:
        await store.set_run_status(current, RunStatus.CANCELLING)
    for step in current.steps:
        if step.status == StepStatus.IN_PROGRESS:
            await store.set_step_status(step, StepStatus.CANCELLED)
    await store.set_run_status(current, RunStatus.CANCELLED, required_action=None)
    run.status = current.status


async def expire(store: Store, run: Run) -> None:
    """``run`` and its open steps to ``expired`` (an approval nobody gave in time)."""
    for step in run.steps:
        if step.status == StepStatus.IN_PROGRESS:
            await store.set_step_status(step, StepStatus.EXPIRED)
    await store.set_run_status(run, RunStatus.EXPIRED, required_action=None)


async def expire_due(store: Store) -> list[Run]:
    """Move ``requires_action`` runs past ``expires_at`` to ``expired``."""
    now = utcnow()
    expired = []
    for run in await store.list_runs(statuses=[RunStatus.REQUIRES_ACTION]):
        if run.expires_at and run.expires_at <= now:
            full = await store.get_run(run.id)
            try:
                await expire(store, full)
            except IllegalTransition:
                continue  # answered at the same moment
            expired.append(full)
    return expired


async def interrupted_runs(store: Store) -> list[Run]:
    """Runs a crash left ``queued``, ``in_progress`` or ``cancelling`` (for recovery)."""
    runs = await store.list_runs(
        statuses=[RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING]
    )
    result = []
    for run in runs:
        try:
            result.append(await store.get_run(run.id))
        except NotFound:
            continue
    return result


async def prepare_resume(store: Store, run: Run) -> None:
    """Make a crashed run resumable: half-written text steps fail, cancelling completes."""
    if run.status == RunStatus.CANCELLING:
        await mark_cancelled(store, run)
        return
    for step in run.steps:
        if step.type == StepType.MESSAGE_CREATION and step.status == StepStatus.IN_PROGRESS:
            await store.set_step_status(step, StepStatus.FAILED)
