"""Downloading files people share in Slack (``url_private``, bot token in the header).

The bot token goes only to Slack's own hosts (or the configured API host, for GovSlack and the
test server): a forged or odd URL in a payload must not be able to collect it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

SLACK_FILE_DOMAINS = ("slack.com", "slack-edge.com", "slack-gov.com", "slack-files.com")


class DownloadError(Exception):
    """A shared file could not be fetched; ``reason`` is short and safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SharedFile:
    """The fields of a Slack file object that intake needs."""

    id: str
    name: str
    url: str
    size: int | None

    @classmethod
    def from_event(cls, raw: Mapping[str, Any]) -> SharedFile | None:
        """None for files that cannot be downloaded (deleted, external, no URL)."""
        url = raw.get("url_private_download") or raw.get("url_private")
        if not url or raw.get("mode") in ("tombstone", "hidden_by_limit", "external"):
            return None
        name = raw.get("name") or raw.get("title") or f"{raw.get('id', 'file')}"
        size = raw.get("size")
        return cls(str(raw.get("id", "")), str(name), str(url), int(size) if size else None)


def host_allowed(url: str, api_base_url: str) -> bool:
    """HTTPS to a Slack domain, or exactly the configured Web API host (any scheme)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    api_host = (urlsplit(api_base_url).hostname or "").lower()
    if host and host == api_host:
        return True
    if parts.scheme != "https":
        return False
    return any(host == d or host.endswith("." + d) for d in SLACK_FILE_DOMAINS)


async def download(
    file: SharedFile,
    *,
    token: str,
    api_base_url: str,
    max_bytes: int,
    session: aiohttp.ClientSession | None = None,
    timeout_seconds: float = 60.0,
) -> bytes:
    """Fetch ``file`` with the bot token; refuses other hosts, oversize files and login pages."""
    if not host_allowed(file.url, api_base_url):
        raise DownloadError("not a Slack file URL")
    if file.size is not None and file.size > max_bytes:
        raise DownloadError(f"larger than {max_bytes // (1024 * 1024)} MB")
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds))
    try:
        async with session.get(
            file.url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=True
        ) as resp:
            if resp.status != 200:
                raise DownloadError(f"HTTP {resp.status}")
            # Without the files:read scope Slack answers 200 with its sign-in page.
            if resp.content_type == "text/html":
                raise DownloadError("Slack returned a sign-in page; is files:read granted?")
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise DownloadError(f"larger than {max_bytes // (1024 * 1024)} MB")
            return bytes(data)
    except aiohttp.ClientError as exc:
        raise DownloadError(type(exc).__name__) from exc
    finally:
        if own:
            await session.close()
