"""A chunk's records and messages of some rows, found without the table of every
record by row (``Chunk.records_of``, ``Chunk.messages_of``), are those of
``chunk.records[row]``: for rows of records, and of updates taken in bulk."""

from __future__ import annotations

import numpy as np
import pytest
from builders import OWN_CAPTURES

from decoder import Role
from decoder import messages as m
from shark.analysis.attribution import read
from shark.extract.bulk import UPDATES
from shark.extract.record import Record, RecordKind
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


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "records"])
def test_header_fields_of_some_rows_and_status_are_those_of_the_messages(bulk: bool) -> None:
    """Header columns are as narrow as on the wire; ``header_of`` some rows (records, or
    update rows among them) gives what the columns have there; the ECA status is that
    of each row's message (taken from the runs' headers for the updates in bulk)."""
    items = list(read(OWN_CAPTURES / "softioc_pyepics_monitors.pcap", lifecycle=True,
                      bulk=bulk))
    chunk = Chunk(items, Vocabularies())
    assert chunk.data_type_number.dtype == np.uint16
    assert chunk.parameter1.dtype == chunk.data_count.dtype == np.uint32
    records = np.flatnonzero(chunk.is_record)
    every = np.arange(chunk.size)
    for field, column in (("data_type", "data_type_number"), ("data_count", "data_count"),
                          ("parameter1", "parameter1"), ("parameter2", "parameter2")):
        for rows in (records, every):
            assert np.array_equal(chunk.header_of(field, rows), getattr(chunk, column)[rows])
    messages = [chunk.records[row].message for row in range(chunk.size)]
    assert chunk.eca.tolist() == [getattr(x, "status", 0) if x is not None else 0
                                  for x in messages]


def test_header_numbers_no_header_holds_are_kept() -> None:
    """Messages made by hand with numbers no header field holds (negative, or past 32
    bits) keep them, in int64 columns; an ERROR's status too."""
    messages = [m.ReadNotifyRequest(data_type=6, data_count=1, sid=-1, ioid=1 << 33),
                m.ErrorResponse(cid=5, status=-48, payload=bytes(16)),
                m.EventAddResponse(data_type=6, data_count=1, status=1, subscriptionid=2,
                                   payload=bytes(8))]
    records = [Record(RecordKind.MESSAGE, frame, 1.0, "10.0.0.1:40000", "10.0.0.2:5064",
                      "tcp", 1, Role.CLIENT, message)
               for frame, message in enumerate(messages, 1)]
    chunk = Chunk(records, Vocabularies())
    assert chunk.parameter1.dtype == chunk.parameter2.dtype == np.int64
    assert chunk.parameter1.tolist() == [x.parameter1 for x in messages]
    assert chunk.parameter2.tolist() == [x.parameter2 for x in messages]
    assert chunk.data_type_number.dtype == np.uint16
    assert chunk.eca.tolist() == [0, -48, 1]
    assert chunk.header_of("parameter2", np.array([0, 2])).tolist() == [1 << 33, 2]
