"""Fetching a document a person sent: ``getFile`` then a download from the file URL.

The public Bot API serves files up to 20 MB. A bigger file is refused with a reply that says
so and how to lift the limit (a local telegram-bot-api server, ``TELEGRAM_API_URL``), instead of
a generic error.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Audio, Bot, Document, PhotoSize, Voice
from telegram.error import BadRequest

OFFICIAL_API = "https://api.telegram.org"
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024

TOO_BIG = {
    "en": (
        "{name} is {size:.1f} MB; the Telegram Bot API only lets bots download files up to "
        "20 MB. Send a smaller file (e.g. split it or zip it), or ask the administrator to run "
        "a local Bot API server (telegram-bot-api --local) and set TELEGRAM_API_URL to it, "
        "which lifts the limit to 2000 MB."
    ),
    "zh": (
        "{name} 大小为 {size:.1f} MB，Telegram Bot API 只允许机器人下载不超过 20 MB 的文件。"
        "请发送较小的文件（例如拆分或压缩），或请管理员运行本地 Bot API 服务器"
        "（telegram-bot-api --local）并将 TELEGRAM_API_URL 指向它，上限即可提高到 2000 MB。"
    ),
}


class TooBig(Exception):
    """The file is over the Bot API download limit; ``message(lang)`` explains it."""

    def __init__(self, name: str, size: int | None) -> None:
        super().__init__(name)
        self.name = name
        self.size = size

    def message(self, lang: str) -> str:
        size = (self.size or BOT_API_DOWNLOAD_LIMIT + 1) / (1024 * 1024)
        return TOO_BIG.get(lang, TOO_BIG["en"]).format(name=self.name, size=size)


@dataclass(frozen=True, slots=True)
class Downloaded:
    name: str
    data: bytes


def download_limit(api_url: str) -> int | None:
    """20 MB against the public Bot API; a local server has its own (much larger) limit."""
    return BOT_API_DOWNLOAD_LIMIT if api_url.rstrip("/") == OFFICIAL_API else None


async def fetch(
    bot: Bot,
    document: Document | PhotoSize | Voice | Audio,
    limit: int | None,
    *,
    name: str | None = None,
) -> Downloaded:
    """Download ``document`` (or a photo, voice note, audio file); raises :class:`TooBig`
    before or instead of a doomed download."""
    name = name or getattr(document, "file_name", None) or f"{document.file_unique_id}.bin"
    if limit is not None and document.file_size and document.file_size > limit:
        raise TooBig(name, document.file_size)
    try:
        file = await bot.get_file(document.file_id)
    except BadRequest as exc:
        # A local server may have a lower limit than we assumed; Telegram says "file is too big".
        if "too big" in exc.message.lower():
            raise TooBig(name, document.file_size) from exc
        raise
    data = await file.download_as_bytearray()
    return Downloaded(name, bytes(data))
