"""FileIntake: size limit, content-addressed storage, one row per thread, names, hooks, text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.config import Settings
from core.domain import FileRef
from core.errors import FileRejected
from core.files import (
    FileIntake,
    extract_text,
    load_table,
    sanitize_name,
    summarize,
)
from core.store import Store
from tests.files.corpus import FLOWERS_CSV, minimal_pdf, tiny_png, wide_csv

DATA = FLOWERS_CSV.encode()


def blobs(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.files_dir.rglob("*") if p.is_file())


async def test_same_file_twice_same_thread_is_one_row_one_blob(
    settings: Settings, store: Store
) -> None:
    thread = await store.get_or_create_thread("t:1")
    intake = FileIntake(settings, store)
    first = await intake.ingest(thread.id, "sales.csv", DATA)
    again = await intake.ingest(thread.id, "sales.csv", DATA)
    renamed = await intake.ingest(thread.id, "copy of sales.csv", DATA)
    assert again.id == first.id and renamed.id == first.id
    assert [f.id for f in await store.list_files(thread.id)] == [first.id]
    sha = first.sha256
    assert blobs(settings) == [(settings.files_dir / sha[:2] / sha).resolve()]
    assert Path(first.path) == blobs(settings)[0]


async def test_same_bytes_two_threads_is_one_blob_two_rows(
    settings: Settings, store: Store
) -> None:
    a = await store.get_or_create_thread("t:a")
    b = await store.get_or_create_thread("t:b")
    intake = FileIntake(settings, store)
    ra = await intake.ingest(a.id, "sales.csv", DATA)
    rb = await intake.ingest(b.id, "销售.csv", DATA)
    assert ra.id != rb.id and ra.path == rb.path and ra.sha256 == rb.sha256
    assert [f.name for f in await store.list_files(b.id)] == ["销售.csv"]
    assert len(blobs(settings)) == 1


async def test_concurrent_uploads_of_one_file_make_one_row(
    settings: Settings, store: Store
) -> None:
    thread = await store.get_or_create_thread("t:race")
    intake = FileIntake(settings, store)
    refs = await asyncio.gather(*(intake.ingest(thread.id, "s.csv", DATA) for _ in range(4)))
    assert len({r.id for r in refs}) == 1
    assert len(await store.list_files(thread.id)) == 1


async def test_different_files_with_one_name_stay_apart(settings: Settings, store: Store) -> None:
    thread = await store.get_or_create_thread("t:names")
    intake = FileIntake(settings, store)
    one = await intake.ingest(thread.id, "sales.csv", DATA)
    two = await intake.ingest(thread.id, "sales.csv", DATA + "雏菊,5,1.60,4.50\n".encode())
    assert (one.name, two.name) == ("sales.csv", "sales (2).csv")
    assert len(blobs(settings)) == 2


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("..\\..\\Windows\\win.ini.csv", "win.ini.csv"),
        ("C:\\Users\\me\\销售 记录.csv", "销售 记录.csv"),
        (".hidden.csv", "hidden.csv"),
        ("...", "file"),
        ("", "file"),
        ("a\x00b<c>.csv", "a_b_c_.csv"),
        ("花名表（十一月）.xlsx", "花名表（十一月）.xlsx"),
        ("x" * 300 + ".csv", "x" * 196 + ".csv"),
    ],
)
def test_sanitize_name(raw: str, clean: str) -> None:
    assert sanitize_name(raw) == clean


async def test_path_traversal_name_is_stored_inside_files_dir(
    settings: Settings, store: Store
) -> None:
    thread = await store.get_or_create_thread("t:evil")
    ref = await FileIntake(settings, store).ingest(thread.id, "../../etc/passwd.csv", DATA)
    assert ref.name == "passwd.csv"
    assert Path(ref.path).is_relative_to(settings.files_dir.resolve())
    assert not (settings.data_dir.parent / "etc").exists()


async def test_size_limit_message_and_nothing_stored(settings: Settings, store: Store) -> None:
    settings.file_max_bytes = 100
    thread = await store.get_or_create_thread("t:big")
    intake = FileIntake(settings, store)
    with pytest.raises(FileRejected) as caught:
        await intake.ingest(thread.id, "year.csv", b"a,b\n" + b"1,2\n" * 40)
    assert "year.csv is 164 bytes; the limit is 100 bytes" in caught.value.message
    assert caught.value.zh and "超过上限 100 bytes" in caught.value.zh
    assert blobs(settings) == [] and await store.list_files(thread.id) == []
    settings.file_max_bytes = 3 * 1024 * 1024
    with pytest.raises(FileRejected, match=r"is 4\.0 MB; the limit is 3\.0 MB"):
        await intake.ingest(thread.id, "year.csv", b"0" * (4 * 1024 * 1024))
    # Exactly at the limit is allowed.
    settings.file_max_bytes = len(DATA)
    assert (await intake.ingest(thread.id, "ok.csv", DATA)).size == len(DATA)


async def test_hooks_run_once_per_new_file_and_a_failing_hook_is_contained(
    settings: Settings, store: Store
) -> None:
    seen: list[FileRef] = []

    async def record(ref: FileRef) -> None:
        seen.append(ref)

    async def broken(ref: FileRef) -> None:
        raise RuntimeError("indexer down")

    thread = await store.get_or_create_thread("t:hooks")
    intake = FileIntake(settings, store, on_ingested=[broken, record])
    ref = await intake.ingest(thread.id, "s.csv", DATA)
    await intake.ingest(thread.id, "s.csv", DATA)  # duplicate: no second indexing
    with pytest.raises(FileRejected):
        await intake.ingest(thread.id, "x.csv", b"")
    assert [r.id for r in seen] == [ref.id]
    assert seen[0].path and Path(seen[0].path).exists()  # stored before the hook runs


async def test_summary_for_the_model(settings: Settings, store: Store) -> None:
    thread = await store.get_or_create_thread("t:sum")
    ref = await FileIntake(settings, store).ingest(thread.id, "花.csv", FLOWERS_CSV.encode("gbk"))
    assert (
        ref.summary.splitlines()[0]
        == "花.csv: CSV, encoding gbk, delimiter comma; 3 rows × 4 columns"
    )
    assert "Columns: 花名 (text), 数量 (int), 进价 (float), 售价 (float)" in ref.summary
    assert "| 玫瑰 | 40 | 3.5 | 10 |" in ref.summary
    rows = [ln for ln in ref.summary.splitlines() if ln.startswith("| ")]
    assert len(rows) == 1 + 3  # header + all 3 rows (preview_rows is 5)


def test_wide_table_summary_is_cut_with_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(wide_csv(80))
    table = load_table(path)
    text = summarize(table, "wide.csv", 5)
    assert len(text) <= 2000
    assert "more columns)" in text and "80 columns" in text
    assert "measurement_column_000 (int)" in text and "measurement_column_079" not in text


def test_summary_of_many_notes_stays_short(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(60))
    row = ",".join('"1,000"' if i % 2 else "N/A" for i in range(60))
    path = tmp_path / "n.csv"
    path.write_text(f"{header}\n{row}\n{row}\n", encoding="utf-8")
    assert len(summarize(load_table(path), "n.csv", 5)) <= 2000


async def test_text_pdf_and_image_summaries(settings: Settings, store: Store) -> None:
    thread = await store.get_or_create_thread("t:kinds")
    intake = FileIntake(settings, store)
    pdf = await intake.ingest(thread.id, "report.pdf", minimal_pdf(["Hello tallybot"]))
    assert "PDF, 1 pages" in pdf.summary and "Hello tallybot" in pdf.summary
    png = await intake.ingest(thread.id, "photo.png", tiny_png(2, 3))
    assert png.summary.startswith("photo.png: PNG image, 2×3 px")
    txt = await intake.ingest(thread.id, "note.txt", "玫瑰卖完了".encode("gbk"))
    assert "text, encoding gbk" in txt.summary and "玫瑰卖完了" in txt.summary


def test_extract_text(tmp_path: Path) -> None:
    pdf = tmp_path / "a"
    pdf.write_bytes(minimal_pdf(["Roses 40", "Lilies 12"]))
    assert "Roses 40" in extract_text(pdf, "pdf") and "Lilies 12" in extract_text(pdf, "pdf")
    txt = tmp_path / "b"
    txt.write_bytes("今天玫瑰賣完了\n".encode("big5"))
    assert extract_text(txt, "text") == "今天玫瑰賣完了\n"
    table = tmp_path / "c.csv"
    table.write_bytes(b'name;qty\n"Rose; red";3\n')
    assert extract_text(table, "table") == "name,qty\nRose; red,3\n"
    png = tmp_path / "d"
    png.write_bytes(tiny_png())
    assert extract_text(png, "image") == ""
