"""Block Kit for approvals, and the few fixed Slack-only labels (status lines, prompts).

An approval message carries the run id in its buttons; the same summary is redrawn without
buttons once the run is approved, denied or expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.i18n import t
from core.tools.registry import activity

from .mrkdwn import escape

APPROVE_ACTION = "tallybot_approve"
DENY_ACTION = "tallybot_deny"
APPROVAL_BLOCK = "tallybot_approval"
_SECTION_LIMIT = 3000  # Slack's limit for a section's text

LABELS: dict[str, dict[str, str]] = {
    "approve": {"en": "Approve", "zh": "确认"},
    "deny": {"en": "Deny", "zh": "拒绝"},
    "expires": {"en": "Expires", "zh": "过期时间"},
    "by": {"en": "by", "zh": "操作人"},
    "thinking": {"en": "is analysing the data…", "zh": "正在分析数据…"},
    "reasoning": {"en": "is thinking…", "zh": "正在思考…"},  # issue 13: reasoning streams
    "running_code": {"en": "is running Python…", "zh": "正在运行 Python…"},
    "updating_bill": {"en": "is updating the bill…", "zh": "正在更新账单…"},
    "searching": {"en": "is searching the files…", "zh": "正在搜索文件…"},
    "download_failed": {
        "en": "Could not download {name} from Slack ({reason}). Please upload it again.",
        "zh": "无法从 Slack 下载 {name}（{reason}），请重新上传。",
    },
    "already_answered": {
        "en": "This request was already answered.",
        "zh": "此请求已经处理过了。",
    },
}

# Offered when someone opens the assistant panel: one click sends the message.
SUGGESTED_PROMPTS: dict[str, list[dict[str, str]]] = {
    "zh": [
        {"title": "统计今天的成本和收入", "message": "统计今天的成本和收入"},
        {"title": "画出各花的利润", "message": "画出各花的利润"},
        {"title": "查看当前账单", "message": "/show"},
    ],
    "en": [
        {"title": "Today's cost and revenue", "message": "What are today's cost and revenue?"},
        {"title": "Chart profit per flower", "message": "Draw the profit of each flower"},
        {"title": "Show the current bill", "message": "/show"},
    ],
}


def label(key: str, lang: str | None, **params: object) -> str:
    """A Slack-only fixed text in ``lang`` (English fallback)."""
    entry = LABELS[key]
    text = entry.get(lang or "en") or entry["en"]
    return text.format(**params) if params else text


def tool_status(tool: str, lang: str | None) -> str:
    """The status line shown while ``tool`` runs."""
    return label(activity(tool), lang)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary_blocks(summaries: Sequence[str], lang: str | None) -> list[dict[str, Any]]:
    lines = "\n".join(f"• {escape(s)}" for s in summaries)
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{t('approval_prompt', lang)}*"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(lines, _SECTION_LIMIT)}},
    ]


def approval_blocks(
    run_id: str, summaries: Sequence[str], expires_at: datetime | None, lang: str | None
) -> list[dict[str, Any]]:
    """What the pending calls will do, and approve / deny buttons carrying the run id."""
    blocks = _summary_blocks(summaries, lang)
    if expires_at is not None:
        stamp = int(expires_at.timestamp())
        fallback = expires_at.strftime("%Y-%m-%d %H:%M UTC")
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{label('expires', lang)}: "
                        f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>",
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": APPROVAL_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": label("approve", lang)},
                    "value": run_id,
                },
                {
                    "type": "button",
                    "action_id": DENY_ACTION,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": label("deny", lang)},
                    "value": run_id,
                },
            ],
        }
    )
    return blocks


def resolved_blocks(
    summaries: Sequence[str], outcome: str, lang: str | None, user: str | None = None
) -> list[dict[str, Any]]:
    """The same summary without buttons; ``outcome`` is ``approved``, ``denied`` or
    ``expired``."""
    icon = {"approved": ":white_check_mark:", "denied": ":no_entry_sign:"}.get(
        outcome, ":hourglass:"
    )
    text = f"{icon} {t(outcome, lang)}"
    if user:
        text += f" ({label('by', lang)} <@{user}>)"
    return [
        *_summary_blocks(summaries, lang),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]},
    ]
