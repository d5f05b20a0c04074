"""Issue 13: `tallybot runs show` prints a run's reasoning; the chat never shows it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import cli  # noqa: F401  (the fixture)


def test_runs_show_prints_reasoning_the_chat_does_not(cli, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "script.json"
    turn = [{"reasoning": "3 roses at 6 is 18."}, {"text": "Revenue 18."}]
    script.write_text(json.dumps({"turns": [turn]}), encoding="utf-8")
    env = {"TALLYBOT_MODEL": f"scripted:{script}"}
    r = cli("chat", "--thread", "r", "--message", "revenue?", "--json", extra_env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"] == "Revenue 18." and "roses" not in r.stdout
    r = cli("runs", "show", out["run_id"], "--json")
    (step,) = json.loads(r.stdout)["steps"]
    assert step["reasoning"] == "3 roses at 6 is 18." and step["text"] == "Revenue 18."
    r = cli("runs", "show", out["run_id"])
    assert "1. reasoning: 3 roses at 6 is 18." in r.stdout


def test_console_file_jpg_with_a_model_that_cannot_see(cli, tmp_path: Path) -> None:  # noqa: F811
    """`tallybot chat --file x.jpg`: the image goes through the same facade as Slack/Telegram;
    a model that cannot see gets no image and the person is told so, plainly."""
    image = tmp_path / "x.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9")
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [[{"text": "Please type the numbers."}]]}))
    env = {"TALLYBOT_MODEL": f"scripted:{script}"}
    r = cli("chat", "--thread", "i", "--file", str(image), "--message", "read it", extra_env=env)
    assert r.returncode == 0, r.stderr
    assert "cannot read images" in r.stdout and "Please type the numbers." in r.stdout
