"""A chunk's records and messages of some rows, found without the table of every
record by row (``Chunk.records_of``, ``Chunk.messages_of``), are those of
``chunk.records[row]``: for rows of records, and of updates taken in bulk."""

from __future__ import annotations

import numpy as np
import pytest
from builders import OWN_CAPTURES

from shark.analysis.attribution import read
from shark.extract.bulk import UPDATES
from shark.tables import chunk as chunk_module
from shark.tables.chunk import Chunk, Vocabularies


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "records"])
def test_records_of_rows_of_records_and_of_updates_in_bulk(bulk: bool) -> None:
    items = list(read(OWN_CAPTURES / "softioc_pyepics_monitors.pcap", lifecycle=True,
                      bulk=bulk))
    assert any(item.kind is UPDATES for item in items) == bulk  # (some came in bulk)
    chunk = Chunk(items, Vocabularies())
    rows = np.arange(0, chunk.size, 3)
    assert chunk.records_of(rows) == [chunk.records[row] for row in rows.tolist()]
    records = np.flatnonzero(chunk.is_record)
    assert chunk.messages_of(records) == [chunk.records[row].message or chunk.messages[i]
                                          for i, row in enumerate(records.tolist())]
    assert chunk.records_of(rows[:0]) == []


@pytest.mark.parametrize("path", ["softioc_pyepics_monitors.pcap", "softioc_pyepics_basic.pcap"])
def test_columns_of_batches_copied_or_gathered_alike(path: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A column of updates in bulk is the same made of copies of its batches (few, long
    batches) as gathered through every row's place (many short ones)."""
    items = list(read(OWN_CAPTURES / path, lifecycle=True, bulk=True))
    names = ("frame", "time_ns", "pv", "size_bytes", "data_type_number", "data_count",
             "parameter1", "parameter2", "subscription_ids")
    made = []
    for rows in (0, 1 << 40):  # (every chunk copies its batches; none does)
        monkeypatch.setattr(chunk_module, "_STRETCH_ROWS", rows)
        chunk = Chunk(items, Vocabularies())
        assert (chunk._stretches is None) == bool(rows)
        made.append([getattr(chunk, name) for name in names])
    for copied, gathered in zip(*made, strict=True):
        assert copied.dtype == gathered.dtype
        assert np.array_equal(copied, gathered)


def _values(chunk: Chunk) -> list:
    v = chunk.values
    return [v.value, v.has_value, v.status, v.severity, v.has_alarm, v.epics_ns, v.has_time,
            v.precision, v.has_precision, v.text, v.errors]


@pytest.mark.parametrize("change", ["as read", "a batch left out", "batches swapped"])
def test_values_of_updates_in_bulk_are_those_of_their_records(change: str) -> None:
    """Chunk.values of a run's updates in bulk, read from the run's arrays (sliced where
    the chunk has every message of the run's span in order, else gathered), are those
    of the same updates as records."""
    items = list(read(OWN_CAPTURES / "softioc_pyepics_monitors.pcap", lifecycle=True,
                      bulk=True))
    batches = [i for i, item in enumerate(items) if item.kind is UPDATES]
    assert len(batches) >= 3 and len({id(items[i].run) for i in batches}) == 1
    if change == "a batch left out":  # (a gap in the run's span)
        del items[batches[1]]
    elif change == "batches swapped":  # (the span's messages, not in order)
        items[batches[0]], items[batches[1]] = items[batches[1]], items[batches[0]]
    records = [record for item in items
               for record in (item.records() if item.kind is UPDATES else (item,))]
    bulk, one_by_one = Chunk(items, Vocabularies()), Chunk(records, Vocabularies())
    assert bulk.size == one_by_one.size and not bulk.is_record.all()
    for mine, theirs in zip(_values(bulk), _values(one_by_one), strict=True):
        if isinstance(mine, dict):
            assert mine == theirs
        else:
            assert np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f")
