"""The string columns of the messages stream's batches hold exactly the bytes their
offsets use: output (:mod:`shark.output.lines`) reads a batch's strings from their
buffers as such, and a part of a column (a chunk's display, an Arrow take) may hold
more."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from builders import OWN_CAPTURES

from shark.analysis.attribution import read
from shark.tables.stream import MessageStream


def _compact(column: pa.Array) -> bool:
    offsets = np.frombuffer(column.buffers()[1], np.int64)[column.offset:
                                                         column.offset + len(column) + 1]
    data = column.buffers()[2]
    return int(offsets[0]) == 0 and (data is None and offsets[-1] == 0
                                     or data is not None and data.size == int(offsets[-1]))


@pytest.mark.parametrize("path", sorted(OWN_CAPTURES.glob("*.pcap")), ids=lambda p: p.name)
@pytest.mark.parametrize("at_a_time", [1, 7, None])
def test_text_columns_compact(path: Path, at_a_time: int | None) -> None:
    records = list(read(path, lifecycle=True, bulk=True))
    stream = MessageStream([], lifecycle=True)
    step = at_a_time or len(records) or 1
    batches = [batch for start in range(0, len(records), step)
               for batch in stream.take(records[start:start + step])]
    assert batches
    for batch in batches:
        for field in batch.schema:
            if field.type == pa.large_string():
                assert _compact(batch.column(field.name)), field.name
