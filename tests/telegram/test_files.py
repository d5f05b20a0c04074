"""Documents in (getFile + download, the 20 MB limit), charts and exports out."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from core.models.base import ModelRequest
from core.models.scripted import call, text
from core.tools.base import ProducedFile, ToolContext, ToolResult
from tests.telegram.conftest import final_text
from tests.telegram.fake_api import BOT_USERNAME

PRIVATE = 42
GROUP = -100123
CSV = "花名,数量,进价,售价\n玫瑰,40,3.5,10\n百合,12,6,18\n向日葵,20,4,12\n".encode()


def saw_file(name: str):  # type: ignore[no-untyped-def]
    """A scripted turn that answers only if the run's instructions list the attached file."""

    def turn(request: ModelRequest) -> list[Any]:
        assert name in request.instructions, "the model was not told about the file"
        return text("Cost 364.00, revenue 856.00.")

    return turn


async def test_csv_document_with_caption_is_analysed(start, api) -> None:
    doc = api.add_file("sales.csv", CSV)
    async with start([saw_file("sales.csv")]) as run:
        api.push({"message": api.message(PRIVATE, "今天的成本和收入是多少？", document=doc)})
        await api.wait_for(final_text(api, PRIVATE, "revenue 856.00"))
        thread = await run.bot.store.thread_by_key(f"telegram:{PRIVATE}:0")
        stored = await run.bot.store.list_files(thread.id)
    assert [c.params["file_id"] for c in api.sent("getFile")] == [doc["file_id"]]
    assert [f.name for f in stored] == ["sales.csv"]
    assert Path(stored[0].path).read_bytes() == CSV
    assert thread.lang == "zh"


async def test_document_without_caption_is_attached_for_later(start, api) -> None:
    doc = api.add_file("sales.csv", CSV)
    async with start([saw_file("sales.csv")]) as run:
        api.push({"message": api.message(PRIVATE, None, document=doc)})
        await api.wait_for(final_text(api, PRIVATE, "sales.csv"))
        api.push({"message": api.message(PRIVATE, "cost and revenue?")})
        await api.wait_for(final_text(api, PRIVATE, "revenue 856.00"))
    assert len(run.model.requests) == 1  # the bare file did not start a run


async def test_group_document_needs_a_mention_in_the_caption(start, api) -> None:
    quiet = api.add_file("other.csv", CSV)
    doc = api.add_file("sales.csv", CSV)
    async with start([saw_file("sales.csv")]):
        api.push({"message": api.message(GROUP, "for the team", document=quiet)})
        api.push({"message": api.message(GROUP, f"@{BOT_USERNAME} totals?", document=doc)})
        await api.wait_for(final_text(api, GROUP, "revenue 856.00"))
    assert [c.params["file_id"] for c in api.sent("getFile")] == [doc["file_id"]]


async def test_file_over_the_bot_api_limit_gets_a_clear_reply(start, api) -> None:
    big = api.add_file("year.csv", b"x", size=25 * 1024 * 1024)
    async with start([]) as run:
        api.push({"message": api.message(PRIVATE, "analyse this", document=big)})
        reply = await api.wait_for(final_text(api, PRIVATE, "20 MB"))
    assert "25.0 MB" in reply[0] and "TELEGRAM_API_URL" in reply[0]
    assert "telegram-bot-api" in reply[0]
    assert not run.model.requests


async def test_against_the_public_api_a_big_file_is_refused_before_downloading(start, api) -> None:
    big = api.add_file("year.xlsx", b"x", size=21 * 1024 * 1024)
    async with start([], adapter_options={"download_limit": 20 * 1024 * 1024}):
        api.push({"message": api.message(PRIVATE, "分析一下", document=big)})
        reply = await api.wait_for(final_text(api, PRIVATE, "20 MB"))
    assert "TELEGRAM_API_URL" in reply[0] and "文件" in reply[0]
    assert not [c for c in api.calls if c.method == "getFile"]


async def test_export_comes_back_as_a_document(start, api) -> None:
    doc = api.add_file("sales.csv", CSV)
    async with start(None):  # model-free bookkeeping
        api.push({"message": api.message(PRIVATE, "/bill 2026-11-24", document=doc)})
        await api.wait_for(final_text(api, PRIVATE, "2026-11-24"))
        api.push({"message": api.message(PRIVATE, "/export csv")})
        await api.wait_for(lambda s: s.sent("sendDocument", PRIVATE))
    upload = api.sent("sendDocument", PRIVATE)[0]
    content = upload.files["document"].decode("utf-8-sig")
    assert "玫瑰" in content and "2026-11-24" in content
    bill = [c for c in api.sent("sendMessage", PRIVATE) if "2026-11-24" in c.params["text"]][0]
    assert bill.params["text"].startswith("<pre>")  # the bill table keeps its columns


def _png() -> bytes:
    """A valid 1x1 PNG, so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


class ChartTool:
    """Stands in for the code interpreter's chart output: a tool that returns a PNG file."""

    name = "draw_chart"
    description = "Draw the sales chart."
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    needs_approval = False

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        path = ctx.workdir / "chart.png"
        path.write_bytes(_png())
        return ToolResult({"ok": True}, files=[ProducedFile(str(path), "chart.png", "image/png")])

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        return "draw a chart"


async def test_chart_made_during_a_run_comes_back_as_a_photo_after_the_text(start, api) -> None:
    turns = [[call("draw_chart", {})], text("Here is the chart.")]
    async with start(turns) as run:
        run.bot.engine.tools.register(ChartTool())
        api.push({"message": api.message(PRIVATE, "chart the sales")})
        await api.wait_for(lambda s: s.sent("sendPhoto", PRIVATE))
    photo = api.sent("sendPhoto", PRIVATE)[0]
    assert photo.files["photo"] == _png()
    order = [c.method for c in api.sent() if c.method in ("sendMessage", "sendPhoto")]
    assert order == ["sendMessage", "sendPhoto"]


def _has_interpreter() -> bool:
    try:
        from core.tools.code_interpreter import CodeInterpreterTool  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_interpreter(), reason="code interpreter not in this tree yet")
async def test_code_interpreter_chart_comes_back_as_a_photo(start, api) -> None:
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.bar(['玫瑰', '百合'], [40, 12])\nplt.title('销量')\nplt.show()\n"
    )
    turns = [[call("code_interpreter", {"code": code})], text("图表如上。")]
    async with start(turns, tools=("code_interpreter",)):
        api.push({"message": api.message(PRIVATE, "画一张销量图")})
        await api.wait_for(final_text(api, PRIVATE, "图表如上"), within=60)
        await api.wait_for(lambda s: s.sent("sendPhoto", PRIVATE), within=10)
    assert api.sent("sendPhoto", PRIVATE)[0].files["photo"].startswith(b"\x89PNG")
