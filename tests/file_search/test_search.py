"""The file_search tool and the index, on SQLite and PostgreSQL (see conftest ``store``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from core.domain import Thread
from core.store import Store
from core.tools.base import ToolContext, ToolRegistry
from core.tools.file_search import (
    MAX_RESULTS,
    FileSearchTool,
    index_file,
    remove_file,
    search,
)
from tests.file_search.conftest import AddFile, make_pdf

PRICE_LIST = (
    "价目表（2026年11月）\n玫瑰 每支 5 元\n向日葵 每支 8 元\n百合 每支 12 元\n满天星 每扎 15 元\n"
)
NOTES = (
    "# Shop notes\n"
    "Sold 30 roses today; customers asked about the rose price for weddings.\n"
    "今日天气好，葵花籽卖完了。\n"
)

MakeCtx = Callable[[Thread], ToolContext]


async def _call(ctx: ToolContext, **args: Any) -> dict[str, Any]:
    """Through the registry, as the engine calls it: JSON arguments, schema validation."""
    registry = ToolRegistry([FileSearchTool(ctx.store)])
    result = await registry.call("file_search", json.dumps(args, ensure_ascii=False), ctx)
    assert not result.is_error, result.output
    output: dict[str, Any] = result.output
    return output


@pytest.fixture
async def shop(store: Store, add_file: AddFile) -> Thread:
    """A thread with a GBK-encoded Chinese price list and English/Chinese notes, indexed."""
    thread = await store.get_or_create_thread("console:shop")
    price = await add_file(thread, "价目表.txt", PRICE_LIST.encode("gb18030"))
    notes = await add_file(thread, "notes.md", NOTES, mime="text/markdown")
    assert await index_file(store, price) == 1
    assert await index_file(store, notes) == 1
    return thread


async def test_price_question_in_chinese_finds_the_price_list(
    shop: Thread, make_ctx: MakeCtx
) -> None:
    out = await _call(make_ctx(shop), query="玫瑰多少钱")
    top = out["results"][0]
    assert top["file"] == "价目表.txt"
    assert top["location"] == "lines 1-5"
    assert "玫瑰 每支 5 元" in top["text"]
    assert top["file_id"].startswith("file_")
    assert isinstance(top["score"], float) and top["score"] > 0


async def test_two_character_word(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query="玫瑰")
    assert [r["file"] for r in out["results"]] == ["价目表.txt"]


async def test_three_character_word_is_not_matched_by_its_parts_elsewhere(
    shop: Thread, make_ctx: MakeCtx
) -> None:
    # notes.md has 日 (今日) and 葵 (葵花籽) but not 向日葵: bigrams keep it out.
    out = await _call(make_ctx(shop), query="向日葵")
    assert [r["file"] for r in out["results"]] == ["价目表.txt"]
    assert "向日葵 每支 8 元" in out["results"][0]["text"]


async def test_single_character_query(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query="葵")
    assert {r["file"] for r in out["results"]} == {"价目表.txt", "notes.md"}


async def test_mixed_chinese_and_english_query(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query="rose 玫瑰 price")
    assert {r["file"] for r in out["results"]} == {"价目表.txt", "notes.md"}
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)


async def test_english_words_are_case_insensitive(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query="WEDDINGS")
    assert out["results"][0]["file"] == "notes.md"
    assert out["results"][0]["location"] == "lines 1-3"


NASTY_QUERIES = [
    '"',
    '"玫瑰',
    "rose AND",
    "AND OR NOT",
    "NEAR(rose price)",
    "NEAR/3",
    "*",
    "rose*",
    "(",
    ")",
    "((rose",
    "price OR",
    "NOT rose",
    "'; DROP TABLE files; --",
    "text:rose",
    "^rose",
    "rose - price",
    "\\",
    "a & b | !c <-> d",
    '玫瑰"); --',
    "   ",
    "🌹",
]


async def test_search_syntax_in_queries_never_raises(shop: Thread, make_ctx: MakeCtx) -> None:
    # One test over all queries: a fresh PostgreSQL schema per query would be slow.
    for query in NASTY_QUERIES:
        out = await _call(make_ctx(shop), query=query)
        assert isinstance(out["results"], list), query
        if not out["results"]:
            assert out["hint"], query


async def test_operators_are_searched_as_words(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query='NEAR("rose" AND price*)')
    assert out["results"] and out["results"][0]["file"] == "notes.md"
    out = await _call(make_ctx(shop), query='"玫瑰") OR (')
    assert out["results"][0]["file"] == "价目表.txt"


async def test_no_match_gives_empty_list_and_hint(shop: Thread, make_ctx: MakeCtx) -> None:
    out = await _call(make_ctx(shop), query="tulip 郁金香")
    assert out["results"] == []
    assert "价目表.txt" in out["hint"] and "notes.md" in out["hint"]


async def test_thread_without_files_hints_to_attach_one(store: Store, make_ctx: MakeCtx) -> None:
    thread = await store.get_or_create_thread("console:empty")
    out = await _call(make_ctx(thread), query="rose")
    assert out["results"] == []
    assert "No searchable files" in out["hint"]


async def test_threads_are_isolated(store: Store, add_file: AddFile, make_ctx: MakeCtx) -> None:
    a = await store.get_or_create_thread("slack:T1:C1:1")
    b = await store.get_or_create_thread("slack:T1:C2:2")
    fa = await add_file(a, "a.txt", "rose 玫瑰 alpha secret")
    fb = await add_file(b, "b.txt", "rose 玫瑰 beta secret")
    await index_file(store, fa)
    await index_file(store, fb)

    out_a = await _call(make_ctx(a), query="rose 玫瑰 secret", max_results=20)
    out_b = await _call(make_ctx(b), query="rose 玫瑰 secret", max_results=20)
    assert [r["file_id"] for r in out_a["results"]] == [fa.id]
    assert [r["file_id"] for r in out_b["results"]] == [fb.id]
    # B's unique word is not findable from A, and the hint does not leak B's file name.
    out = await _call(make_ctx(a), query="beta")
    assert out["results"] == [] and "b.txt" not in out["hint"]


async def test_max_results_is_respected_and_capped(
    store: Store, add_file: AddFile, make_ctx: MakeCtx
) -> None:
    thread = await store.get_or_create_thread("console:many")
    # 30 lines of ~650 characters: one passage each, every one about roses.
    text = "\n".join(f"rose batch {i} " + "petal " * 105 for i in range(30))
    ref = await add_file(thread, "batches.txt", text)
    assert await index_file(store, ref) == 30
    ctx = make_ctx(thread)
    assert len((await _call(ctx, query="rose"))["results"]) == 5
    assert len((await _call(ctx, query="rose", max_results=3))["results"]) == 3
    assert len((await _call(ctx, query="rose", max_results=50))["results"]) == MAX_RESULTS
    assert len((await _call(ctx, query="rose", max_results=-2))["results"]) == 1
    results = (await _call(ctx, query="rose", max_results=20))["results"]
    assert all(r["file"] == "batches.txt" and r["location"].startswith("line ") for r in results)
    assert len({r["location"] for r in results}) == 20


async def test_invalid_arguments_are_a_tool_error(shop: Thread, make_ctx: MakeCtx) -> None:
    registry = ToolRegistry([FileSearchTool()])
    for args in ({}, {"query": 5}, {"query": "rose", "max_results": "many"}, {"q": "x"}):
        result = await registry.call("file_search", json.dumps(args), make_ctx(shop))
        assert result.is_error
        assert result.output["error"]["code"] == "invalid_arguments"


async def test_pdf_pages_are_cited(store: Store, add_file: AddFile, make_ctx: MakeCtx) -> None:
    thread = await store.get_or_create_thread("telegram:42:7")
    pdf = make_pdf(
        [
            "Spring catalogue\nRoses, lilies and sunflowers for every occasion.",
            "Wholesale prices\nTulip (Holland), 3 EUR per stem\nOrchid, 12 EUR per pot",
        ]
    )
    ref = await add_file(thread, "catalogue.pdf", pdf, kind="pdf", mime="application/pdf")
    assert await index_file(store, ref) == 2
    out = await _call(make_ctx(thread), query="tulip price per stem")
    top = out["results"][0]
    assert (top["file"], top["location"]) == ("catalogue.pdf", "page 2")
    assert "Tulip (Holland), 3 EUR per stem" in top["text"]


async def test_csv_rows_are_cited_with_header(
    store: Store, add_file: AddFile, make_ctx: MakeCtx
) -> None:
    thread = await store.get_or_create_thread("console:csv")
    rows = [
        f"flower{i:02d},{i},{i}.50,note about batch {i:02d} and its delivery" for i in range(1, 61)
    ]
    rows[44] = "郁金香,7,9.50,荷兰进口"
    text = "\n".join(["flower,quantity,unit_price,note", *rows])
    ref = await add_file(thread, "sales.csv", text, kind="table", mime="text/csv")
    assert await index_file(store, ref) > 1
    top = (await _call(make_ctx(thread), query="郁金香"))["results"][0]
    assert top["file"] == "sales.csv"
    first, last = map(int, top["location"].removeprefix("rows ").split("-"))
    assert first <= 45 <= last
    assert top["text"].startswith("flower,quantity,unit_price,note\n")


async def test_reindex_replaces_and_is_idempotent(
    store: Store, add_file: AddFile, make_ctx: MakeCtx
) -> None:
    thread = await store.get_or_create_thread("console:reindex")
    ref = await add_file(thread, "list.txt", "rose 5\nlily 7\n")
    assert await index_file(store, ref) == 1
    assert await index_file(store, ref) == 1
    assert len(await search(store, thread.id, "rose", limit=20)) == 1
    assert await index_file(store, ref, text="orchid 12\n") == 1
    assert await search(store, thread.id, "rose") == []
    assert [h.text for h in await search(store, thread.id, "orchid")] == ["orchid 12"]


async def test_concurrent_reindex_leaves_one_copy(store: Store, add_file: AddFile) -> None:
    thread = await store.get_or_create_thread("console:race")
    text = "\n".join(f"rose line {i} " + "stem " * 40 for i in range(40))
    ref = await add_file(thread, "race.txt", text)
    counts = await asyncio.gather(*(index_file(store, ref) for _ in range(4)))
    assert len(set(counts)) == 1
    async with store.engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.text("SELECT count(*) FROM search_chunks WHERE file_id = :f"), {"f": ref.id}
            )
        ).scalar_one()
    assert stored == counts[0]
    assert stored > 5
    assert len(await search(store, thread.id, "rose", limit=MAX_RESULTS)) == stored


async def test_remove_file_keeps_it_out_of_search(
    shop: Thread, store: Store, make_ctx: MakeCtx
) -> None:
    price = next(f for f in await store.list_files(shop.id) if f.name == "价目表.txt")
    await remove_file(store, price.id)
    # The search's on-demand indexing must not bring the removed file back.
    out = await _call(make_ctx(shop), query="玫瑰")
    assert out["results"] == []
    assert await index_file(store, price) == 1  # explicitly re-indexed: searchable again
    assert (await _call(make_ctx(shop), query="玫瑰"))["results"]


async def test_deleting_the_file_row_cascades_out_of_the_index(
    shop: Thread, store: Store, make_ctx: MakeCtx
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM files WHERE name = 'notes.md'"))
    assert (await _call(make_ctx(shop), query="weddings"))["results"] == []
    if store.dialect == "sqlite":
        # The FTS index itself (not just the join) has forgotten the passage.
        async with store.engine.connect() as conn:
            stale = (
                await conn.execute(
                    sa.text(
                        "SELECT rowid FROM search_chunks_fts WHERE search_chunks_fts MATCH 'weddings'"
                    )
                )
            ).all()
        assert stale == []


async def test_files_never_indexed_are_indexed_on_first_search(
    store: Store, add_file: AddFile, make_ctx: MakeCtx
) -> None:
    thread = await store.get_or_create_thread("console:lazy")
    await add_file(thread, "old.txt", "百合 每支 12 元")  # uploaded before file search was on
    out = await _call(make_ctx(thread), query="百合")
    assert [r["file"] for r in out["results"]] == ["old.txt"]


async def test_unreadable_files_index_as_nothing_without_raising(
    store: Store, add_file: AddFile, make_ctx: MakeCtx
) -> None:
    thread = await store.get_or_create_thread("console:broken")
    broken = await add_file(
        thread, "broken.pdf", b"%PDF-1.4\nnot really a pdf", kind="pdf", mime="application/pdf"
    )
    image = await add_file(
        thread, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, kind="image", mime="image/png"
    )
    assert await index_file(store, broken) == 0
    assert await index_file(store, image) == 0
    async with store.engine.connect() as conn:
        error = (
            await conn.execute(
                sa.text("SELECT error FROM search_documents WHERE file_id = :f"), {"f": broken.id}
            )
        ).scalar_one()
    assert error
    out = await _call(make_ctx(thread), query="pdf")
    assert out["results"] == [] and "No searchable files" in out["hint"]


def test_describe_call_in_both_languages() -> None:
    tool = FileSearchTool()
    assert tool.describe_call({"query": "玫瑰 price"}, "en") == (
        'Search this conversation\'s files for "玫瑰 price"'
    )
    assert tool.describe_call({"query": "玫瑰\n价格"}, "zh") == "在本对话的文件中搜索“玫瑰 价格”"
    long = tool.describe_call({"query": "x" * 500}, "en")
    assert len(long) < 120 and "\n" not in long
    assert tool.needs_approval is False
