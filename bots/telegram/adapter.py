"""The Telegram adapter: a python-telegram-bot ``Application`` wired to a :class:`Tallybot`.

    adapter = TelegramAdapter(tallybot, settings)
    await adapter.start()            # long polling, or a webhook when TELEGRAM_WEBHOOK_URL is set
    ...
    await adapter.stop()

Handlers (one per module): :mod:`.guard` (once-only + allowlist, group -1), :mod:`.message`
(text, commands, documents) and :mod:`.approval` (buttons). The Bot API server is
``settings.telegram_api_url``: methods at ``$URL/bot<token>/``, files at ``$URL/file/bot<token>/``,
so a local telegram-bot-api server -- or the tests' fake one -- is a setting away.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    ContextTypes,
)

from bots.channel import Allowlist, ApprovalTokens, Deliveries, thread_context
from bots.render import Throttle
from bots.telegram import approval, documents, guard, menu, message
from bots.telegram.addressing import is_addressed, topic_of
from bots.telegram.records import ApprovalBook, Offset
from bots.telegram.responder import Responder
from core import receipt
from core.errors import ConfigError
from core.events import Event
from core.i18n import lang_from_locale, t

if TYPE_CHECKING:
    from core.app import Tallybot
    from core.config import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
INTERNAL_ERROR = {
    "en": "an internal error. Please try again; if it keeps happening, tell the administrator.",
    "zh": "内部错误。请重试；如果一直出现，请联系管理员。",
}
EDIT_INTERVAL = 1.0  # seconds between edits (or drafts) in one chat: Telegram's pace


class TelegramAdapter:
    """Owns the ``Application``; handlers reach the facade and shared state through it
    (they see it as a :class:`bots.telegram.host.Host`)."""

    def __init__(
        self,
        tallybot: Tallybot,
        settings: Settings,
        *,
        rate_limiter: BaseRateLimiter | None = None,  # type: ignore[type-arg]
        edit_interval: float = EDIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        poll_timeout: int = 30,
        download_limit: int | None | str = "auto",
    ) -> None:
        token = settings.telegram_bot_token
        if not token:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather and put its token "
                "in the environment or .env."
            )
        self.tallybot = tallybot
        self.settings = settings
        self.allowlist = Allowlist(settings.telegram_allowed_users, settings.telegram_allowed_chats)
        self.drafts_supported = True
        self.download_limit: int | None = (
            documents.download_limit(settings.telegram_api_url)
            if download_limit == "auto"
            else download_limit  # type: ignore[assignment]
        )
        self._edit_interval = edit_interval
        self._clock = clock
        self._throttles: dict[int, Throttle] = {}
        self._poll_timeout = poll_timeout
        api = settings.telegram_api_url.rstrip("/")
        self.application: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            # 429 retry_after is waited out and the call retried, for every request.
            .rate_limiter(rate_limiter or AIORateLimiter(max_retries=3))
            # Chats must not wait on each other, and /stop must get through a running answer.
            .concurrent_updates(True)
            .build()
        )
        # Bot id scopes the once-only keys: one database may serve several bots.
        bot_id = token.split(":", 1)[0]
        self.source = f"telegram:{bot_id}"
        self.deliveries = Deliveries(tallybot, self.source)
        self.offset = Offset(tallybot, f"{self.source}:offset")
        self.approvals = ApprovalBook(tallybot, self.source)
        self.tokens = ApprovalTokens(tallybot, self.source, settings.admins)
        self.application.add_handler(guard.build(self), group=-1)
        self.application.add_handler(message.build(self))
        self.application.add_handler(approval.build(self))
        self.application.add_error_handler(self._on_error)
        tallybot.on_expired(approval.expiry_listener(self))

    def throttle(self, chat_id: int) -> Throttle:
        """The edit pace of one chat, shared by every answer streaming in it (and its topics)."""
        found = self._throttles.get(chat_id)
        if found is None:
            found = self._throttles[chat_id] = Throttle(self._edit_interval, self._clock)
        return found

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    async def start(self, *, listen: str = "0.0.0.0", port: int = 8443) -> None:
        """Initialise, register the command menu, then poll or serve the webhook."""
        if self.webhook_mode and not self.settings.telegram_webhook_secret:
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_WEBHOOK_URL: without it anyone "
                "who finds the URL can post fake updates. Set it to 1-256 characters of A-Z a-z "
                "0-9 _ -."
            )
        try:
            await self._start(listen, port)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, listen: str, port: int) -> None:
        app = self.application
        await app.initialize()
        await menu.register(app.bot)
        await app.start()
        assert app.updater is not None
        if self.webhook_mode:
            await app.updater.start_webhook(
                listen=listen,
                port=port,
                url_path=urlparse(self.settings.telegram_webhook_url or "").path.lstrip("/"),
                webhook_url=self.settings.telegram_webhook_url,
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
            return
        stored = await self.offset.load()
        if stored:
            # getUpdates with an offset confirms every earlier update, so a restart does not
            # fetch again what was already handled.
            await app.bot.delete_webhook()
            await app.bot.get_updates(offset=stored, timeout=0, limit=1)
        await app.updater.start_polling(
            poll_interval=0.0,
            timeout=self._poll_timeout,
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )

    async def start_hosted(self, *, set_webhook: bool) -> None:
        """Start without a server of its own: ``tallybot serve`` feeds webhook updates in
        (:meth:`feed`) or, with ``set_webhook=False`` and no webhook URL, nothing polls."""
        if self.webhook_mode and not self.settings.telegram_webhook_secret:
            await self.start()  # raises the same ConfigError
        app = self.application
        await app.initialize()
        await menu.register(app.bot)
        await app.start()
        if set_webhook and self.webhook_mode:
            await app.bot.set_webhook(
                self.settings.telegram_webhook_url or "",
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )

    def secret_ok(self, header: str | None) -> bool:
        """The ``X-Telegram-Bot-Api-Secret-Token`` header matches TELEGRAM_WEBHOOK_SECRET."""
        expected = self.settings.telegram_webhook_secret
        return bool(expected) and hmac.compare_digest(header or "", expected or "")

    async def feed(self, data: object) -> None:
        """Handle one webhook update (a decoded JSON object) to the end."""
        update = Update.de_json(data, self.application.bot)  # type: ignore[arg-type]
        await self.application.process_update(update)

    async def deliver(self, key: str, events: AsyncIterator[Event]) -> None:
        """Post ``events`` into the chat (and topic) of thread key ``key`` with no update to
        answer: a run recovered after a restart, a message picked up by another replica."""
        _, chat, topic = (key.split(":", 2) + ["0", "0"])[:3]
        chat_id, topic_id = int(chat), int(topic or 0) or None
        lang, person = await thread_context(self.tallybot, key)
        async with Responder(
            self, chat_id, topic_id=topic_id, lang=lang or "en", private=chat_id > 0, user=person
        ) as responder:
            async for event in events:
                await responder.on_event(event)

    async def stop(self) -> None:
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure and tell the person something went wrong, in their language."""
        log.error("error while handling a Telegram update", exc_info=context.error)
        service = self.tallybot.service
        if service is not None and isinstance(context.error, TelegramError):
            service.metrics.platform_errors.labels("telegram", "update").inc()
        current = receipt.current()
        if current is not None:  # a webhook update not stored is not acknowledged
            await current.failed()
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        user = update.effective_user
        lang = lang_from_locale(user.language_code if user else None)
        if update.callback_query is not None or (
            update.message is not None and is_addressed(update.message, self.application.bot.bot)
        ):
            try:
                await self.application.bot.send_message(
                    update.effective_chat.id,
                    t("run_failed", lang, message=INTERNAL_ERROR.get(lang or "en", "")),
                    message_thread_id=topic_of(update.message) if update.message else None,
                )
            except TelegramError:
                log.exception("could not report the error to chat %s", update.effective_chat.id)
