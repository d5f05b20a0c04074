"""Telegram channel: python-telegram-bot 22 ``Application`` → :class:`core.app.Tallybot`.

See docs/telegram.md. Entry points: :class:`bots.telegram.adapter.TelegramAdapter` and
``tallybot telegram`` (:mod:`bots.telegram.cli`).
"""
