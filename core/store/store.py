"""The one place :class:`Store` is assembled from its per-aggregate repositories."""

from __future__ import annotations

from core.store.assistants import AssistantsRepo
from core.store.base import StoreBase
from core.store.bills import BillsRepo
from core.store.files import FilesRepo
from core.store.leases import LeasesRepo
from core.store.platform import PlatformRepo
from core.store.runs import RunsRepo
from core.store.search import SearchRepo
from core.store.threads import ThreadsRepo
from core.store.turns import TurnsRepo


# A new aggregate is one more mixin module under core/store/ and one more base here; StoreBase
# stays last so every mixin sees the engine it sets.
class Store(
    ThreadsRepo,
    RunsRepo,
    FilesRepo,
    PlatformRepo,
    BillsRepo,
    SearchRepo,
    AssistantsRepo,  # issue 14
    LeasesRepo,  # issue 10
    TurnsRepo,  # issue 12: the hot path of a turn
    StoreBase,
):
    """Async repository. Create with :meth:`open` (applies migrations)."""
