"""deploy/slack-manifest.yaml: valid YAML with what Slack requires, and matching the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bots.slack.addressing import SLASH_COMMAND
from bots.slack.blocks import SUGGESTED_PROMPTS

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"

# The scope Slack demands for each bot event (api.slack.com/events).
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
}
# The scopes the adapter's Web API calls need.
CALL_SCOPES = {
    "chat:write",
    "files:read",
    "files:write",
    "reactions:write",
    "users:read",
    "commands",
}


def _load() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_required_top_level_fields() -> None:
    data = _load()
    name = data["display_information"]["name"]
    assert isinstance(name, str) and 1 <= len(name) <= 35
    assert len(data["display_information"]["description"]) <= 140
    assert len(data["display_information"]["long_description"]) >= 175  # Slack's minimum
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", data["display_information"]["background_color"])
    assert data["_metadata"]["major_version"] == 1
    # A bot scope needs a bot user, and the bot user needs a display name.
    assert data["features"]["bot_user"]["display_name"]


def test_every_event_has_its_scope_and_calls_have_theirs() -> None:
    data = _load()
    scopes = set(data["oauth_config"]["scopes"]["bot"])
    events = data["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) >= {
        "app_mention",
        "assistant_thread_started",
        "message.im",
        "message.channels",
    }
    for event in events:
        assert EVENT_SCOPES[event] in scopes, event
    assert CALL_SCOPES <= scopes


def test_socket_mode_interactivity_and_assistant_view() -> None:
    data = _load()
    settings = data["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True  # approve / deny buttons
    assert data["features"]["app_home"]["messages_tab_enabled"] is True  # DMs
    view = data["features"]["assistant_view"]
    assert view["assistant_description"]
    assert 1 <= len(view["suggested_prompts"]) <= 4
    for prompt in view["suggested_prompts"]:
        assert prompt["title"] and prompt["message"]
    panel_titles = {p["title"] for p in SUGGESTED_PROMPTS["zh"]}
    assert "统计今天的成本和收入" in panel_titles


def test_slash_command_matches_the_adapter() -> None:
    commands = _load()["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [SLASH_COMMAND]
    assert commands[0]["description"] and len(commands[0]["description"]) <= 100
