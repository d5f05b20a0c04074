"""``tallybot slack``: the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP mode)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``slack`` on the ``tallybot`` sub-command parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "slack",
        help="run the Slack bot",
        description="Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, otherwise "
        "HTTP mode on --port (needs SLACK_SIGNING_SECRET). See docs/slack.md.",
    )
    parser.add_argument("--port", type=int, default=3000, help="HTTP mode port (default 3000)")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP mode bind address")
    parser.add_argument("--path", default="/slack/events", help="HTTP mode Request URL path")
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Exit codes follow bots/cli.py: 2 for missing settings."""
    from core.config import load_settings

    from .server import check_settings, serve

    settings = load_settings()
    try:
        check_settings(settings)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    try:
        import asyncio  # here, not at the top: ``tallybot --help`` does not need it

        asyncio.run(serve(settings, host=args.host, port=args.port, path=args.path))
    except KeyboardInterrupt:
        return 0
    return 0
