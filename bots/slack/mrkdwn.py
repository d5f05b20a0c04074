"""Markdown (what models write) → Slack mrkdwn (what ``chat.postMessage`` text renders).

Only needed where Slack does not take Markdown itself: streamed messages (``chat.startStream``
``markdown_text``) render Markdown natively; the ``chat.update`` fallback and plain posts do not.
Code is left alone; ``&``, ``<`` and ``>`` are escaped everywhere, as Slack requires.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_HR = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tables_to_code(text: str) -> str:
    # Slack has no tables; a monospace block keeps the columns readable.
    out: list[str] = []
    table: list[str] = []
    for line in text.split("\n"):
        if _TABLE_ROW.match(line):
            table.append(line.strip())
            continue
        if table:
            out.append("```\n" + "\n".join(table) + "\n```")
            table = []
        out.append(line)
    if table:
        out.append("```\n" + "\n".join(table) + "\n```")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Convert the non-code part of a text."""
    codes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return f"\x00{len(codes) - 1}\x00"

    text = _INLINE_CODE.sub(keep, text)
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    bolds: list[str] = []

    def bold(match: re.Match[str]) -> str:
        bolds.append(match.group(1) or match.group(2))
        return f"\x01{len(bolds) - 1}\x01"

    text = _HEADING.sub(lambda m: f"**{m.group(1)}**", text)
    text = _BOLD.sub(bold, text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = _HR.sub("──────────", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = re.sub(r"\x01(\d+)\x01", lambda m: f"*{bolds[int(m.group(1))]}*", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)


def to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack mrkdwn, leaving code blocks and inline code untouched."""
    text = _tables_to_code(escape(markdown))
    out: list[str] = []
    pos = 0
    for match in _FENCE.finditer(text):
        out.append(_inline(text[pos : match.start()]))
        # Slack shows a language tag as code text, so it is dropped.
        out.append("```\n" + match.group(1).strip("\n") + "\n```")
        pos = match.end()
    out.append(_inline(text[pos:]))
    return "".join(out)
