"""Provider: builds the OpenAI SDK client and the wire adapter from settings.

The model (wire format) is kept apart from the provider (client, base URL, auth), as in
pydantic-ai: the adapters in ``responses.py`` and ``chat.py`` never read settings. Errors are
converted in :mod:`core.models.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings
from core.models.base import Model, ModelEvent, ModelRequest

if TYPE_CHECKING:
    import openai

# Local servers (Ollama, llama.cpp, vLLM) accept any key, but the SDK sends one on every
# request; a visible placeholder is clearer in their logs than an empty bearer token.
NO_KEY = "not-needed"


def build_client(settings: Settings) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client from settings; a placeholder key for servers that need none.
    With ``AZURE_OPENAI_ENDPOINT``: the SDK's Azure client (:mod:`core.models.azure`)."""
    if settings.azure_openai_endpoint:
        from core.models.azure import build_azure_client

        return build_azure_client(settings)
    import openai

    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key or NO_KEY,
        base_url=settings.openai_base_url or None,
        timeout=settings.model_timeout,
        max_retries=settings.model_max_retries,
    )


def build_model(settings: Settings, client: openai.AsyncOpenAI | None = None) -> Model:
    """The wire adapter that ``settings.wire_api`` names; ``scripted:PATH`` plays a JSON script."""
    if settings.model.startswith("scripted:"):
        from core.models.scripted import load_script

        return load_script(Path(settings.model.removeprefix("scripted:")))
    client = client or build_client(settings)
    if settings.wire_api == "chat":
        from core.models.chat import ChatModel

        # Small local models write their calls in the text (issue 13).
        return ChatModel(client, settings.model, text_tool_calls=settings.reads_text_tool_calls)
    from core.models.responses import ResponsesModel

    return ResponsesModel(client, settings.model)


class DeferredModel:
    """A wire adapter that is built on its first turn, not when the bot opens.

    Building one imports the OpenAI SDK, about a second of start-up that model-free commands
    (``/help``, ``/bill``, ``tallybot bills``) never use (issue 12). Settings the client would
    refuse are checked when this is made (:func:`deferred_model`), so they still fail at start.
    """

    def __init__(self, name: str, build: Callable[[], Model]) -> None:
        self.name = name
        self._build = build
        self._model: Model | None = None

    @property
    def model(self) -> Model:
        """The real adapter (built now, the first time)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        return self.model.stream(request)


def deferred_model(settings: Settings) -> Model:
    """:func:`build_model` for a bot: the SDK adapter on its first turn, a script at once."""
    if settings.model.startswith("scripted:"):
        return build_model(settings)
    if settings.azure_openai_endpoint:
        from core.models.azure import azure_key

        azure_key(settings)  # a missing Azure setting is a ConfigError at start, as before
    return DeferredModel(settings.model, lambda: build_model(settings))
