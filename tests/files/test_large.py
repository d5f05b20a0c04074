"""Large uploads in bounded memory (issue 11): the streamed summary says what the exact loader
says, a ~50 MB CSV is accepted, and 10,000 columns make a short summary and a short error."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import core.files.scan as scan
from core.bills.sales_file import read_sales_items
from core.config import Settings
from core.errors import FileRejected
from core.files import FileIntake, sniff_kind
from core.files.names import capped_list
from core.files.scan import scan_csv, summarize_bytes
from core.files.sniff import MIME_CSV, MIME_TSV
from core.files.summary import summarize, table_summary
from core.files.tables import load_table_bytes
from core.store import Store
from tests.files.corpus import Accepted, Case, cases


def exact(data: bytes, name: str, rows: int) -> str:
    return summarize(load_table_bytes(data, name), name, rows)


def streamed(data: bytes, name: str, rows: int) -> str:
    return table_summary(scan_csv(data, name, rows), name, rows)


CSV_CASES = [
    c
    for c in cases()
    if isinstance(c.expect, Accepted) and sniff_kind(c.data, c.name)[1] in (MIME_CSV, MIME_TSV)
]


@pytest.mark.parametrize("chunk", [3, 200_000])
@pytest.mark.parametrize("case", CSV_CASES, ids=lambda c: c.id)
def test_stream_says_what_the_loader_says_on_the_corpus(
    case: Case, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "_CHUNK_CELLS", chunk)
    for rows in (3, 5):
        assert streamed(case.data, case.name, rows) == exact(case.data, case.name, rows)


def mixed_csv(rows: int, seed: int) -> str:
    """Dirt that shows up late: a number column turning text at one row, leading zeros,
    a sparse column, "N/A" spellings, thousands separators and currency, a formula, ragged
    rows, blank rows inside, duplicate and empty headers, mixed line endings."""
    rnd = random.Random(seed)
    header = "id,qty,qty,,price,late_text,zip,sparse,amount,formula,only_na\r\n"
    out = ["\n", header]
    for i in range(1, rows + 1):
        qty = rnd.choice(["", "N/A", "n/a", "-", "NULL", str(rnd.randint(0, 50))])
        price = rnd.choice([f"{rnd.random() * 100:.2f}", f"￥{rnd.randint(1, 9)}", "null"])
        late = "abc" if i == rows - 7 else str(rnd.randint(1, 9))
        zipc = f"0{rnd.randint(1000, 9999)}" if i == rows // 2 else str(rnd.randint(10000, 99999))
        sparse = str(rnd.randint(1, 9)) if i % 97 == 0 else ""
        amount = f'"{rnd.randint(1000, 99999):,}"' if rnd.random() < 0.5 else str(rnd.randint(1, 9))
        formula = "=SUM(A1)" if i == rows - 3 else " x "
        extra = ",spill" if i == rows - 5 else ""
        end = rnd.choice(["\r\n", "\n"])
        out.append(
            f"{i}, {qty} ,{rnd.randint(1, 3)},,{price},{late},{zipc},{sparse},{amount},"
            f"{formula},N/A{extra}{end}"
        )
        if i % 500 == 0:
            out.append(",,,\n")
    out.append("\n\n")
    return "".join(out)


@pytest.mark.parametrize("chunk", [60, 1_000, 200_000])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "utf-16"])
def test_stream_says_what_the_loader_says_on_late_dirt(
    chunk: int, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "_CHUNK_CELLS", chunk)
    text = mixed_csv(3_000, seed=chunk)
    data = text.replace("x", "是").encode(encoding)
    for rows in (0, 5):
        got = streamed(data, "mixed.csv", rows)
        assert got == exact(data, "mixed.csv", rows)
    assert "empty rows skipped" in got and "kept as text" in got and "spill" not in got


def test_stream_tsv_and_wide_rows_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "_CHUNK_CELLS", 50)
    text = mixed_csv(400, seed=3).replace(",", "\t")
    data = text.encode()
    assert streamed(data, "mixed.tsv", 5) == exact(data, "mixed.tsv", 5)
    wide = "\n".join(
        ",".join(f"c{j}" if r == 0 else str(r * j) for j in range(3_000)) for r in range(40)
    )
    assert streamed(wide.encode(), "wide.csv", 5) == exact(wide.encode(), "wide.csv", 5)


def big_csv(target: int) -> bytes:
    """About ``target`` bytes of orders: few, long cells, so the test stays quick."""
    block = "".join(
        f"{i},{'note ' * 18}{i % 7},{i % 1000}.{i % 100:02d},{'N/A' if i % 10 == 0 else i % 9}\n"
        for i in range(1, 20_001)
    ).encode()
    head = b"order,note,price,qty\n"
    copies = max(1, (target - len(head)) // len(block))
    return head + block * copies


async def test_a_50_mb_csv_is_accepted_and_summarised(settings: Settings, store: Store) -> None:
    data = big_csv(49 * 1024 * 1024)
    assert len(data) > scan.STREAM_ABOVE and len(data) <= settings.file_max_bytes
    rows = data.count(b"\n") - 1
    thread = await store.get_or_create_thread("test:big")
    ref = await FileIntake(settings, store).ingest(thread.id, "orders.csv", data)
    assert ref.kind == "table" and ref.size == len(data)
    lines = ref.summary.splitlines()
    assert lines[0] == f"orders.csv: CSV, encoding utf-8, delimiter comma; {rows} rows × 4 columns"
    assert lines[1] == "Columns: order (int), note (text), price (float), qty (int)"
    assert lines[3] == "| order | note | price | qty |"
    assert lines[4] == "| 1 | note note note note not… | 1.01 | 1 |"
    assert lines[-1] == f"Notes: {rows // 10} cells like 'N/A' treated as missing"
    assert Path(ref.path).read_bytes() == data


async def test_a_large_csv_that_cannot_be_split_is_refused_and_nothing_stored(
    settings: Settings, store: Store
) -> None:
    data = b'a,b\n1,"never closed\n' + b"2,3\n" * 1_000_000
    assert len(data) > scan.STREAM_ABOVE
    thread = await store.get_or_create_thread("test:bad-big")
    with pytest.raises(FileRejected) as caught:
        await FileIntake(settings, store).ingest(thread.id, "bad.csv", data)
    assert "Cannot parse bad.csv as CSV" in caught.value.message
    assert caught.value.zh and "无法按 CSV 解析" in caught.value.zh
    assert await store.list_files(thread.id) == []


def wide_header(columns: int) -> str:
    return ",".join(f"measurement_{j:05d}" for j in range(columns))


@pytest.mark.parametrize("stream", [False, True])
def test_ten_thousand_columns_make_a_short_summary(
    stream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stream:
        monkeypatch.setattr(scan, "STREAM_ABOVE", 0)
    row = ",".join(str(j) for j in range(10_000))
    data = (wide_header(10_000) + "\n" + (row + "\n") * 3).encode()
    summary = summarize_bytes(data, "wide.csv", MIME_CSV, 5)
    assert len(summary) <= 2000
    assert "3 rows × 10000 columns" in summary and "more columns)" in summary


def test_ten_thousand_columns_make_a_short_bill_error(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(wide_header(10_000) + "\n" + ",".join("1" * 10_000) + "\n")
    with pytest.raises(FileRejected) as caught:
        read_sales_items(path)
    message, zh = caught.value.message, caught.value.zh or ""
    assert len(message) < 1500 and len(zh) < 1500
    assert "measurement_00019 … and 9,980 more" in message
    assert "measurement_00020" not in message
    assert "measurement_00019 …… 等另外 9,980 个" in zh


def test_capped_list() -> None:
    assert capped_list(["a", "b"]) == ("a, b", "a, b")
    assert capped_list([str(i) for i in range(25)], limit=2) == (
        "0, 1 … and 23 more",
        "0, 1 …… 等另外 23 个",
    )
