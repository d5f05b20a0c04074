"""Azure OpenAI: the SDK's ``AsyncAzureOpenAI`` client when ``AZURE_OPENAI_ENDPOINT`` is set.

Azure differs from a plain OpenAI-compatible base URL in three ways the SDK's Azure client
handles: requests go to ``{endpoint}/openai/deployments/{deployment}/chat/completions``
(``TALLYBOT_MODEL`` names the deployment), every request carries ``?api-version=`` from
``OPENAI_API_VERSION``, and the key goes in an ``api-key`` header (``AZURE_OPENAI_API_KEY``,
else ``OPENAI_API_KEY``). The Responses API works too (``TALLYBOT_MODEL_API=responses``:
``{endpoint}/openai/responses``); Chat Completions is the default for Azure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.config import Settings
from core.errors import ConfigError

if TYPE_CHECKING:
    import openai


def azure_key(settings: Settings) -> str:
    """The key the Azure client sends; a clear ConfigError when a setting is missing."""
    key = settings.azure_openai_api_key or settings.openai_api_key
    if not settings.openai_api_version:
        raise ConfigError(
            "AZURE_OPENAI_ENDPOINT is set but OPENAI_API_VERSION is not: set it to the API "
            "version of your Azure OpenAI resource, e.g. OPENAI_API_VERSION=2024-10-21"
        )
    if not key:
        raise ConfigError(
            "AZURE_OPENAI_ENDPOINT is set but no key: set AZURE_OPENAI_API_KEY (Keys and "
            "Endpoint in the Azure portal)"
        )
    return key


def build_azure_client(settings: Settings) -> openai.AsyncAzureOpenAI:
    """An ``AsyncAzureOpenAI`` client from settings; a clear ConfigError when one is missing."""
    import openai

    key = azure_key(settings)
    return openai.AsyncAzureOpenAI(
        azure_endpoint=settings.azure_openai_endpoint or "",
        api_key=key,
        api_version=settings.openai_api_version,
        timeout=settings.model_timeout,
        max_retries=settings.model_max_retries,
    )
