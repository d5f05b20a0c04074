"""The one Slack Web API client the app uses, built from settings.

``SLACK_API_URL`` replaces https://slack.com/api/ (GovSlack, tests); the same client serves
bolt's listeners, file uploads and Socket Mode's ``apps.connections.open``. Rate-limited calls
(HTTP 429) are retried after Slack's ``Retry-After``.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from core.config import Settings

DEFAULT_API_URL = "https://slack.com/api/"


def api_base_url(settings: Settings) -> str:
    """The Web API base URL, always ending in ``/`` (slack_sdk appends method names)."""
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def make_client(settings: Settings, *, rate_limit_retries: int = 3) -> AsyncWebClient:
    """An :class:`AsyncWebClient` with the bot token, the configured base URL and retries."""
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=api_base_url(settings),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    )
