"""Every corpus file through the real intake: accepted with what was detected, or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.errors import FileRejected
from core.files import FileIntake, load_table, sniff_kind, summarize
from core.store import Store
from tests.files.corpus import Accepted, Case, Rejected, cases

CASES = cases()
DTYPE_KINDS = {"int": "iu", "float": "f", "text": "OUT"}


def _blobs(settings: Settings) -> list[Path]:
    return [p for p in settings.files_dir.rglob("*") if p.is_file()]


def test_corpus_is_big_enough_and_ids_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(isinstance(c.expect, Rejected) for c in CASES) >= 10


@pytest.mark.parametrize(
    "case", [c for c in CASES if isinstance(c.expect, Accepted)], ids=lambda c: c.id
)
async def test_accepted(case: Case, settings: Settings, store: Store) -> None:
    expect = case.expect
    assert isinstance(expect, Accepted)
    assert sniff_kind(case.data, case.name) == (expect.kind, expect.mime)
    thread = await store.get_or_create_thread(f"test:{case.id}")
    ref = await FileIntake(settings, store).ingest(thread.id, case.name, case.data)
    assert (ref.kind, ref.mime, ref.size) == (expect.kind, expect.mime, len(case.data))
    assert Path(ref.path).read_bytes() == case.data
    assert ref.name in ref.summary and len(ref.summary) <= 2000
    if expect.kind != "table":
        return
    # The stored blob has no extension: loading must work by content, the name only hints.
    table = load_table(Path(ref.path), ref.name)
    if expect.encoding is not None:
        assert table.encoding == expect.encoding
    if expect.delimiter is not None:
        assert table.delimiter == expect.delimiter
    if expect.rows is not None:
        assert len(table.df) == expect.rows
    if expect.columns is not None:
        assert list(table.df.columns) == expect.columns
    for column, kind in expect.dtypes.items():
        assert table.df[column].dtype.kind in DTYPE_KINDS[kind], (column, table.df[column].dtype)
    notes = " | ".join(table.notes)
    for fragment in expect.notes:
        assert fragment in notes, notes
    if expect.check is not None:
        expect.check(table)
    assert summarize(table, ref.name, 3) in ref.summary or ref.summary.startswith(ref.name)


@pytest.mark.parametrize(
    "case", [c for c in CASES if isinstance(c.expect, Rejected)], ids=lambda c: c.id
)
async def test_rejected_and_nothing_stored(case: Case, settings: Settings, store: Store) -> None:
    expect = case.expect
    assert isinstance(expect, Rejected)
    thread = await store.get_or_create_thread(f"test:{case.id}")
    with pytest.raises(FileRejected) as caught:
        await FileIntake(settings, store).ingest(thread.id, case.name, case.data)
    assert expect.en in caught.value.message
    assert caught.value.zh and expect.zh in caught.value.zh
    assert caught.value.localized("zh") == caught.value.zh
    assert await store.list_files(thread.id) == []
    assert _blobs(settings) == []
