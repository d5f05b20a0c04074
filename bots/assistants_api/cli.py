"""``tallybot api`` (the Assistants API alone, until ``tallybot serve`` mounts it) and
``tallybot keys create|list|revoke``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import Settings


def add_parsers(sub: Any) -> None:
    """The ``api`` and ``keys`` sub-commands."""
    api = sub.add_parser("api", help="serve the Assistants API (/v1) on HTTP")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on")
    api.add_argument("--port", type=int, default=8080, help="port to listen on")

    keys = sub.add_parser("keys", help="API keys of the Assistants API")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create", help="make a key (printed once)")
    kc.add_argument("--project", help="put the key in this project (default: a new one)")
    kc.add_argument("--name", default="", help="a label for `keys list`")
    kl = ksub.add_parser("list")
    kl.add_argument("--json", action="store_true")
    kr = ksub.add_parser("revoke")
    kr.add_argument("key_id")


async def serve_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve ``/v1`` until interrupted."""
    import asyncio  # these two here, not at the top: ``tallybot --help`` needs neither

    from aiohttp import web

    from bots.assistants_api.app import build_api
    from core.app import Tallybot

    bot = await Tallybot.open(settings, channel="api")
    root = web.Application()
    root.add_subapp("/v1", build_api(bot))
    runner = web.AppRunner(root)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        bot.start_background()
        keys = "TALLYBOT_API_KEYS" if settings.api_keys else "keys from `tallybot keys create`"
        print(f"Assistants API on http://{args.host}:{args.port}/v1 ({keys})", file=sys.stderr)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await bot.close()
    return 0


async def keys(settings: Settings, args: argparse.Namespace) -> int:
    """``tallybot keys create|list|revoke``."""
    from core.assistants_api import keys as api_keys

    if args.keys_cmd == "create":
        key, record = await api_keys.create_key(settings, project=args.project, name=args.name)
        print(key)
        print(f"id {record.id} · project {record.project} (shown once; keep it)", file=sys.stderr)
        return 0
    if args.keys_cmd == "list":
        rows = [
            {
                "id": k.id,
                "prefix": k.prefix,
                "project": k.project,
                "name": k.name,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in await api_keys.list_keys(settings)
        ]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        for row in [] if args.json else rows:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
            print(f"{row['id']}  {row['prefix']}…  {row['project']}  {state}  {row['name']}")
        if not rows and not args.json:
            print("No API keys yet (tallybot keys create).")
        return 0
    record = await api_keys.revoke_key(settings, args.key_id)
    print(f"revoked {record.id} ({record.prefix}…)")
    return 0
