"""The batch store: every row by its position, in memory or read back from disk, or
the last rows of a live capture only."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from builders import ROOT

from shark.tables.store import BatchStore
from shark.tables.stream import MessageStream

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def numbered(start: int, rows: int) -> pa.RecordBatch:
    numbers = range(start, start + rows)
    return pa.record_batch({"n": pa.array(numbers, pa.int64()),
                            "text": pa.array([f"row {i}" * 20 for i in numbers])})


def column(store: BatchStore, start: int, stop: int) -> list[int]:
    table = store.slice(start, stop, ["n"])
    return [] if table is None else table.column("n").to_pylist()


def test_rows_by_position_across_batches() -> None:
    store = BatchStore(budget=None)
    assert [store.append(numbered(s, n)) for s, n in ((0, 10), (10, 15), (25, 5))] == [
        0, 10, 25]
    assert (store.start, store.end, len(store)) == (0, 30, 30)
    batch, index = store.locate(17)
    assert batch.column("n")[index].as_py() == 17
    assert store.locate(30) is None and store.locate(-1) is None
    assert column(store, 8, 23) == list(range(8, 23))
    assert [p for p, _ in store.batches(5, 12)] == [5, 10]


def test_spilled_batches_read_back_the_same(tmp_path: Path) -> None:
    store = BatchStore(budget=50_000, directory=tmp_path)
    batches = [numbered(i * 100, 100) for i in range(40)]
    for batch in batches:
        store.append(batch)
    assert store.spilled and store.held_bytes <= 50_000 + batches[0].nbytes
    assert list(tmp_path.iterdir())  # the spill file is there
    assert column(store, 0, 4000) == list(range(4000))
    for position in (0, 99, 100, 1234, 3999):
        batch, index = store.locate(position)
        assert batch.slice(index, 1).to_pylist() == batches[position // 100].slice(
            position % 100, 1).to_pylist()
    store.close()
    assert not list(tmp_path.iterdir())  # removed


def test_message_batches_spill_and_read_back(tmp_path: Path) -> None:
    made = list(MessageStream.of_capture(BASIC, lifecycle=True, rows=64))
    store = BatchStore(budget=1, directory=tmp_path)  # everything but the newest to disk
    for batch in made:
        store.append(batch)
    assert store.spilled
    assert store.slice(0, store.end).to_pylist() == pa.Table.from_batches(made).to_pylist()


def test_keep_the_last_rows_only() -> None:
    store = BatchStore(keep=25)
    for i in range(5):
        store.append(numbered(i * 10, 10))
    assert (store.start, store.end, len(store)) == (25, 50, 25)
    assert store.locate(24) is None and store.locate(25) is not None
    assert column(store, 0, 50) == list(range(25, 50))
    assert len(store._entries) == 3  # whole batches before position 25 let go
    with pytest.raises(ValueError):
        BatchStore(keep=0)
