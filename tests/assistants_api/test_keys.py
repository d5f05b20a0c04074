"""``tallybot keys create|list|revoke`` and the keys they make, through the API."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from bots.cli import build_parser, main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def _cli(args: list[str], capsys) -> tuple[int, str]:
    # main() runs its own event loop, so it gets a thread of its own.
    code = await asyncio.to_thread(main, args)
    return code, capsys.readouterr().out


async def test_keys_create_list_revoke(api_server, settings, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TALLYBOT_DATA_DIR", str(settings.data_dir))
    server = await api_server()
    code, out = await _cli(["keys", "create", "--project", "shop", "--name", "ci"], capsys)
    assert code == 0
    key = out.strip()
    assert key.startswith("sk-tb-")
    code, out = await _cli(["keys", "create", "--project", "shop"], capsys)
    same_project = out.strip()
    code, out = await _cli(["keys", "list", "--json"], capsys)
    listed = json.loads(out)
    assert [k["project"] for k in listed] == ["shop", "shop"]
    assert key not in out and listed[0]["prefix"] == key[:12]  # never the key itself
    mine = await server.client(key).beta.assistants.create(model="m")
    # Two keys of one project see the same objects.
    assert (await server.client(same_project).beta.assistants.retrieve(mine.id)).id == mine.id
    code, out = await _cli(["keys", "revoke", listed[0]["id"]], capsys)
    assert code == 0 and "revoked" in out
    with pytest.raises(openai.AuthenticationError):
        await server.client(key).beta.assistants.list()
    code = await asyncio.to_thread(main, ["keys", "revoke", listed[0]["id"]])
    assert code == 2  # revoking twice: no live key with that id


def test_api_command_parses() -> None:
    args = build_parser().parse_args(["api", "--host", "0.0.0.0", "--port", "9000"])
    assert (args.command, args.host, args.port) == ("api", "0.0.0.0", 9000)
