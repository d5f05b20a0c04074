"""Tokenisation, decoding and passage cutting: pure functions, no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain import FileRef
from core.tools.file_search import (
    CHUNK_MAX,
    CHUNK_OVERLAP,
    chunk_lines,
    decode_text,
    page_passages,
    passages_for,
    query_terms,
    segment,
    table_passages,
    text_passages,
)
from tests.file_search.conftest import make_pdf


def _ref(name: str, kind: str, mime: str, path: str = "/nonexistent") -> FileRef:
    return FileRef(
        id="file_1",
        thread_id="thread_1",
        name=name,
        path=path,
        sha256="0" * 64,
        size=0,
        mime=mime,
        kind=kind,
    )


# --- segment ---------------------------------------------------------------------------------


def test_segment_keeps_words_and_folds_case_and_width() -> None:
    # Full-width digits/letters (common in Chinese input methods) become ASCII.
    assert segment("Rose-RED café ＲＯＳＥ ５ under_score") == [
        "rose", "red", "café", "rose", "5", "under", "score",
    ]  # fmt: skip


def test_segment_indexes_cjk_as_characters_and_bigrams() -> None:
    assert segment("向日葵") == ["向", "向日", "日", "日葵", "葵"]
    assert segment("花") == ["花"]


def test_segment_query_uses_bigrams_only() -> None:
    assert segment("玫瑰", for_query=True) == ["玫瑰"]
    assert segment("向日葵", for_query=True) == ["向日", "日葵"]
    assert segment("花", for_query=True) == ["花"]


def test_segment_splits_scripts_without_spaces() -> None:
    assert segment("rose玫瑰price 5元", for_query=True) == ["rose", "玫瑰", "price", "5", "元"]


def test_segment_drops_punctuation_and_syntax() -> None:
    assert segment('"玫瑰"，（price*）: NEAR(a b) ^c -d', for_query=True) == [
        "玫瑰", "price", "near", "a", "b", "c", "d",
    ]  # fmt: skip
    assert segment('"" () * : ^ ，。！') == []


def test_segment_kana_is_cjk_and_long_tokens_are_dropped() -> None:
    assert segment("バラ", for_query=True) == ["バラ"]
    assert segment("x" * 65 + " ok") == ["ok"]


def test_segment_query_deduplicates() -> None:
    assert segment("rose Rose ROSE 玫瑰玫瑰", for_query=True) == ["rose", "玫瑰", "瑰玫"]


def test_query_terms_drop_question_words_but_never_everything() -> None:
    assert query_terms("玫瑰多少钱") == ["玫瑰", "瑰多"]
    assert query_terms("what is the price of roses") == ["price", "roses"]
    # Only question words: searching for them beats searching for nothing.
    assert query_terms("多少") == ["多少"]
    assert query_terms("!!! ??? ()") == []


# --- decoding --------------------------------------------------------------------------------


PRICE_LIST = "价目表：玫瑰 每支 5 元；向日葵 每支 8 元。"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "gb2312"])
def test_decode_text_reads_chinese_in_common_encodings(encoding: str) -> None:
    assert decode_text(PRICE_LIST.encode(encoding)) == PRICE_LIST


def test_decode_text_short_gbk_is_not_taken_for_korean() -> None:
    # charset-normalizer alone calls this cp949 (Korean); gb18030 must win.
    assert decode_text("价目表: 玫瑰 每支 5 元".encode("gbk")) == "价目表: 玫瑰 每支 5 元"


def test_decode_text_western_single_byte_does_not_raise() -> None:
    text = decode_text("Rosas: precio por unidad 5 EUR, muy bonitas. Gracias!\n".encode("cp1252"))
    assert text.startswith("Rosas: precio por unidad 5 EUR")


# --- passages --------------------------------------------------------------------------------


def test_chunk_lines_bounds_overlap_and_coverage() -> None:
    lines = [f"line {i:03d} " + "lorem ipsum dolor " * (i % 7) for i in range(1, 201)]
    chunks = chunk_lines(lines)
    assert len(chunks) > 5
    for first, last, text in chunks:
        assert first <= last
        assert len(text) <= CHUNK_MAX
        assert text.splitlines()[0].startswith(f"line {first:03d}")
        assert text.splitlines()[-1].startswith(f"line {last:03d}")
    # Consecutive passages share a little (overlap) and leave no gap.
    for (_, prev_last, _), (next_first, _, _) in zip(chunks, chunks[1:], strict=False):
        assert prev_last - 3 <= next_first <= prev_last + 1
    assert any(nf <= pl for (_, pl, _), (nf, _, _) in zip(chunks, chunks[1:], strict=False))
    covered = {n for first, last, _ in chunks for n in range(first, last + 1)}
    assert covered == set(range(1, 201))


def test_chunk_lines_overlap_is_small() -> None:
    chunks = chunk_lines([f"sentence number {i} about flowers." for i in range(100)])
    for (_, _, prev), (_, _, nxt) in zip(chunks, chunks[1:], strict=False):
        shared = [line for line in nxt.splitlines() if line in prev.splitlines()]
        assert 0 < sum(len(s) + 1 for s in shared) <= CHUNK_OVERLAP


def test_chunk_lines_splits_a_long_line_at_sentence_ends() -> None:
    # A Chinese paragraph with no newline at all.
    line = "今天卖了很多玫瑰和向日葵。" * 200
    chunks = chunk_lines(["title", line, "end"])
    assert all(len(text) <= CHUNK_MAX for _, _, text in chunks)
    middle = [c for c in chunks if c[0] == 2 and c[1] == 2]
    assert middle and all(text.endswith("。") for _, _, text in middle[:-1])
    # Nothing lost: every sentence is in some passage.
    assert sum(text.count("玫瑰") for _, _, text in chunks) >= 200


def test_chunk_lines_hard_cuts_text_without_breaks() -> None:
    chunks = chunk_lines(["x" * 2000])
    assert [len(t) for _, _, t in chunks] == [800, 800, 400]


def test_text_passages_locations() -> None:
    passages = text_passages("one\n\ntwo\nthree\n")
    assert [(p.location, p.text) for p in passages] == [("lines 1-4", "one\ntwo\nthree")]
    assert text_passages("only\n")[0].location == "line 1"
    assert text_passages("") == []


def test_table_passages_repeat_header_and_count_rows() -> None:
    header = "flower,quantity,unit_price"
    rows = [f"flower{i:02d},{i},{i}.50 " + "x" * 40 for i in range(1, 61)]
    passages = table_passages("\n".join([header, *rows]))
    assert len(passages) > 1
    assert all(p.text.startswith(header + "\n") for p in passages)
    assert passages[0].location.startswith("rows 1-")
    row45 = [p for p in passages if "flower45," in p.text]
    assert row45
    first, last = map(int, row45[0].location.removeprefix("rows ").split("-"))
    assert first <= 45 <= last
    assert table_passages(header) == [type(passages[0])("header", header)]


def test_page_passages_never_span_pages() -> None:
    passages = page_passages(["alpha\nbeta", "", "gamma"])
    assert [(p.location, p.text) for p in passages] == [
        ("page 1", "alpha\nbeta"),
        ("page 3", "gamma"),
    ]


def test_passages_for_given_text_uses_form_feeds_as_pdf_pages() -> None:
    ref = _ref("scan.pdf", "pdf", "application/pdf")
    assert [p.location for p in passages_for(ref, "p1 text\fp2 text")] == ["page 1", "page 2"]


def test_passages_for_reads_pdf_pages(tmp_path: Path) -> None:
    path = tmp_path / "c.pdf"
    path.write_bytes(make_pdf(["Intro page", "Tulip wholesale price 3 EUR"]))
    passages = passages_for(_ref("c.pdf", "pdf", "application/pdf", str(path)))
    assert [(p.location, p.text) for p in passages] == [
        ("page 1", "Intro page"),
        ("page 2", "Tulip wholesale price 3 EUR"),
    ]


def test_passages_for_skips_images_and_binary_tables(tmp_path: Path) -> None:
    xlsx = tmp_path / "s.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert passages_for(_ref("s.xlsx", "table", "application/vnd.ms-excel", str(xlsx))) == []
    assert passages_for(_ref("p.png", "image", "image/png")) == []  # not even read
