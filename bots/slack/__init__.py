"""Slack channel: slack-bolt AsyncApp adapter (Socket Mode or HTTP), see docs/slack.md.

Exports load lazily so ``tallybot --help`` (which imports :mod:`bots.slack.cli`) stays fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SlackAdapter", "http_app", "make_client", "serve", "socket_handler"]

_HOMES = {
    "SlackAdapter": "adapter",
    "make_client": "client",
    "http_app": "server",
    "serve": "server",
    "socket_handler": "server",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
