"""Realistic Slack payloads (shapes as Slack sends them; cf. bolt-python's scenario tests)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from .fake_slack import APP_ID, BOT_USER, TEAM

ALICE = "U0ALICE"
CHANNEL = "C0SALES"
DM = "D0ALICE"

_ts = itertools.count(1)
_ids = itertools.count(1)


def ts() -> str:
    """A person's message timestamp (distinct from the fake server's own)."""
    return f"1714560000.{next(_ts):06d}"


def _rich_text(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def event_callback(
    event: dict[str, Any], *, team: str = TEAM, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "token": "verification-token-unused",
        "team_id": team,
        "context_team_id": team,
        "context_enterprise_id": None,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": 1714560000,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoi{next(_ids)}",
    }


def app_mention(
    text: str,
    *,
    channel: str = CHANNEL,
    user: str = ALICE,
    message_ts: str | None = None,
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
    team: str = TEAM,
) -> dict[str, Any]:
    message_ts = message_ts or ts()
    full = f"<@{BOT_USER}> {text}"
    event: dict[str, Any] = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "app_mention",
        "text": full,
        "user": user,
        "ts": message_ts,
        "blocks": _rich_text(full),
        "team": team,
        "channel": channel,
        "event_ts": message_ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
    return event_callback(event, team=team)


def message(
    text: str,
    *,
    channel: str = DM,
    channel_type: str = "im",
    user: str = ALICE,
    message_ts: str | None = None,
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
    team: str = TEAM,
) -> dict[str, Any]:
    message_ts = message_ts or ts()
    event: dict[str, Any] = {
        "client_msg_id": str(uuid.uuid4()),
        "type": "message",
        "text": text,
        "user": user,
        "ts": message_ts,
        "blocks": _rich_text(text),
        "team": team,
        "channel": channel,
        "event_ts": message_ts,
        "channel_type": channel_type,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = user
    if files:
        event["subtype"] = "file_share"
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
    return event_callback(event, team=team)


def assistant_thread_started(
    *, channel: str = DM, user: str = ALICE, thread_ts: str | None = None
) -> dict[str, Any]:
    thread_ts = thread_ts or ts()
    return event_callback(
        {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user,
                "context": {"channel_id": CHANNEL, "team_id": TEAM, "enterprise_id": None},
                "channel_id": channel,
                "thread_ts": thread_ts,
            },
            "event_ts": ts(),
        }
    )


def slash_command(
    text: str, *, channel: str = DM, user: str = ALICE, response_url: str = ""
) -> dict[str, Any]:
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "team_domain": "tallyshop",
        "channel_id": channel,
        "channel_name": "directmessage" if channel.startswith("D") else "sales",
        "user_id": user,
        "user_name": "alice",
        "command": "/tally",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url or "https://hooks.slack.com/commands/T0SHOP/1/abc",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }


def block_action(
    action_id: str,
    value: str,
    *,
    channel: str,
    message_ts: str,
    thread_ts: str | None,
    user: str = ALICE,
    blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": "approval",
        "ts": message_ts,
        "bot_id": "B0TALLY",
        "blocks": blocks or [],
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "verification-token-unused",
        "container": container,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": TEAM, "domain": "tallyshop"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "sales" if channel.startswith("C") else "directmessage"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0SHOP/1/xyz",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "tallybot_approval",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": value,
                "style": "primary",
                "type": "button",
                "action_ts": "1714560100.000100",
            }
        ],
    }
