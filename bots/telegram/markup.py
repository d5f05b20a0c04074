"""Sending text to Telegram safely: Markdown → Telegram HTML, 4096-character chunks, and a
plain-text fallback when Telegram rejects the entities anyway.

HTML is used rather than MarkdownV2 because its escaping rules are three characters (``& < >``)
instead of eighteen, so model output that is not quite Markdown still goes through. Text that is
still refused ("can't parse entities") is resent as plain text: a person always gets the answer.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest

from bots.render import split_text

log = logging.getLogger(__name__)

LIMIT = MessageLimit.MAX_TEXT_LENGTH  # 4096 characters after entity parsing

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n?(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.MULTILINE)


def to_html(markdown: str) -> str:
    """Convert the Markdown a model writes into the HTML subset Telegram accepts.

    Code (fenced and inline) is escaped verbatim; Markdown tables become ``<pre>`` blocks
    because Telegram has no tables and a monospace grid keeps the columns aligned.
    """
    out: list[str] = []
    pos = 0
    for match in _FENCE.finditer(markdown):
        out.append(_inline(markdown[pos : match.start()]))
        lang, code = match.group(1), match.group(2).rstrip("\n")
        attr = f' class="language-{html.escape(lang)}"' if lang else ""
        out.append(f"<pre><code{attr}>{html.escape(code, quote=False)}</code></pre>")
        pos = match.end()
    out.append(_inline(markdown[pos:]))
    return "".join(out)


def _inline(text: str) -> str:
    """Everything outside fenced code: tables, inline code, then emphasis and links."""
    lines = text.split("\n")
    blocks: list[str] = []
    table: list[str] = []
    for line in lines + [""]:
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            rows = [r for r in table if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", r)]
            blocks.append("<pre>" + html.escape("\n".join(rows), quote=False) + "</pre>")
            table = []
        blocks.append(_spans(line))
    return "\n".join(blocks[:-1]) if blocks else ""


def _spans(line: str) -> str:
    parts: list[str] = []
    pos = 0
    for match in _INLINE_CODE.finditer(line):
        parts.append(_emphasis(line[pos : match.start()]))
        parts.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        pos = match.end()
    parts.append(_emphasis(line[pos:]))
    return "".join(parts)


def _emphasis(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _HEADING.sub(r"<b>\1</b>", text)
    # The URL is already HTML-escaped with the rest; only the attribute's quote is left.
    text = _LINK.sub(
        lambda m: f'<a href="{m.group(2).replace(chr(34), "&quot;")}">{m.group(1)}</a>', text
    )
    text = _BOLD.sub(lambda m: f"<b>{m.group(1) or m.group(2)}</b>", text)
    text = _STRIKE.sub(r"<s>\1</s>", text)
    return _ITALIC.sub(r"<i>\1</i>", text)


def render(text: str, style: str) -> str:
    """``markdown`` → HTML; ``pre`` → one monospace block (bill tables); ``plain`` → as is."""
    if style == "markdown":
        return to_html(text)
    if style == "pre":
        return f"<pre>{html.escape(text, quote=False)}</pre>"
    return text


def _entities_refused(exc: BadRequest) -> bool:
    return "parse entities" in exc.message.lower() or "entit" in exc.message.lower()


def not_modified(exc: BadRequest) -> bool:
    return "not modified" in exc.message.lower()


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    thread_id: int | None = None,
    style: str = "markdown",
    reply_to: int | None = None,
    keyboard: InlineKeyboardMarkup | None = None,
) -> list[Message]:
    """Send ``text`` as one or more messages; the keyboard goes under the last one."""
    chunks = split_text(text, LIMIT - 16 if style == "pre" else LIMIT)
    sent: list[Message] = []
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        markup = keyboard if i == len(chunks) - 1 else None
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to and not sent
            else None
        )
        sent.append(await _send_one(bot, chat_id, chunk, style, thread_id, reply, markup))
    return sent


async def _send_one(
    bot: Bot,
    chat_id: int,
    chunk: str,
    style: str,
    thread_id: int | None,
    reply: ReplyParameters | None,
    markup: InlineKeyboardMarkup | None,
) -> Message:
    if style != "plain":
        try:
            return await bot.send_message(
                chat_id,
                render(chunk, style),
                parse_mode=ParseMode.HTML,
                message_thread_id=thread_id,
                reply_parameters=reply,
                reply_markup=markup,
            )
        except BadRequest as exc:
            if not _entities_refused(exc):
                raise
            log.info("Telegram refused the formatting (%s); sending plain text", exc.message)
    return await bot.send_message(
        chat_id, chunk, message_thread_id=thread_id, reply_parameters=reply, reply_markup=markup
    )


async def edit_text(
    bot: Bot,
    chat_id: int,
    message_id: int,
    text: str,
    *,
    style: str = "plain",
    keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """Replace a message's text (at most one chunk); an unchanged text is not an error."""
    text = text[:LIMIT]
    try:
        if style != "plain":
            try:
                await bot.edit_message_text(
                    render(text, style),
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard,
                )
                return
            except BadRequest as exc:
                if not _entities_refused(exc):
                    raise
        await bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard
        )
    except BadRequest as exc:
        if not not_modified(exc):
            raise


def chunks_of(text: str) -> Sequence[str]:
    """The message-sized pieces ``send_text`` would send (for edit-then-send finishing)."""
    return [c for c in split_text(text, LIMIT) if c.strip()]
