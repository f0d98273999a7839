"""A chunk's records and messages of some rows, found without the table of every
record by row (``Chunk.records_of``, ``Chunk.messages_of``), are those of
``chunk.records[row]``: for rows of records, and of updates taken in bulk."""

from __future__ import annotations

import numpy as np
import pytest
from builders import OWN_CAPTURES

from shark.analysis.attribution import read
from shark.extract.bulk import UPDATES
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
