"""The Assistants API service: what the HTTP adapter (bots/assistants_api) calls.

    api = AssistantsApi(bot)
    caller = await api.caller(bearer_token, beta_header)   # None: 401
    await api.objects.create_assistant(caller, body)
    run, events = await api.runs.create(caller, thread_id, body)

It holds no state of its own but the background tasks of runs (:meth:`aclose` ends them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.assistants_api.errors import bad_request
from core.assistants_api.keys import project_for
from core.assistants_api.objects import Objects
from core.assistants_api.runs import Runs
from core.assistants_api.views import Caller

if TYPE_CHECKING:
    from core.app import Tallybot


def api_version(header: str | None) -> str:
    """``OpenAI-Beta: assistants=v1`` or ``=v2``; v2 when absent."""
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() == "assistants":
            value = value.strip()
            if value not in ("v1", "v2"):
                raise bad_request(
                    f"Unknown OpenAI-Beta assistants version {value!r}; use v1 or v2."
                )
            return value
    return "v2"


class AssistantsApi:
    """Objects and runs of the Assistants API over one :class:`~core.app.Tallybot`."""

    def __init__(self, bot: Tallybot) -> None:
        self.bot = bot
        self.objects = Objects(bot)
        self.runs = Runs(bot, self.objects)

    async def caller(self, token: str, beta: str | None) -> Caller | None:
        """Who a request comes from, or None when the key is no live key."""
        project = await project_for(self.bot.settings, self.bot.store, token)
        if project is None:
            return None
        return Caller(project, api_version(beta))

    async def recover(self) -> int:
        """Resume the API runs a crash interrupted (call once at start-up)."""
        return await self.runs.recover()

    async def aclose(self) -> None:
        """Stop the runs still going (recorded as cancelled; left live when serving)."""
        await self.runs.driver.aclose()
