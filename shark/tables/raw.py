"""The bytes of each message as it was on the wire: a ``raw`` column beside the
``messages`` table's, for a viewer's hex dump and its decoding of one message.

The table holds what was decoded, not the bytes; a viewer that shows one message in
full decodes them again (statelessly: :func:`decoder.messages.decode_header` and
:func:`decoder.messages.make_message`) from this column. It is made only when asked
for (:class:`shark.tables.stream.MessageStream` with ``raw=True``), from the same items
the table is made of, one value per row: a record's message as its bytes, null for a
row with no message (circuit ends, gaps, undecodable stretches). A batch of monitor
updates (:class:`shark.extract.bulk.UpdateBatch`) costs no copy and no Python per
update: its messages lie end to end in its run's buffer, so the column's offsets are
the run's message starts and its data that buffer.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from shark.extract.bulk import UPDATES, UpdateBatch
from shark.extract.record import CLOSE, OPEN, Record

__all__ = ["RAW", "raw_column"]

#: The column's name and type.
RAW = pa.field("raw", pa.large_binary())
_ENDS = (OPEN, CLOSE)


def raw_column(items: Iterable[Record | UpdateBatch], lifecycle: bool = False
               ) -> pa.ChunkedArray:
    """One value per row the items make in the ``messages`` table (a record one, an
    update batch one per update; circuit ends only with ``lifecycle``, as the table):
    the message's bytes, null where there is none."""
    chunks: list[pa.Array] = []
    pending: list[bytes | None] = []
    for item in items:
        kind = item.kind
        if kind is UPDATES:
            if pending:
                chunks.append(pa.array(pending, pa.large_binary()))
                pending = []
            if len(item):
                chunks.append(_updates(item))
            continue
        if not lifecycle and kind in _ENDS:
            continue
        message = item.message
        pending.append(None if message is None else message.to_bytes())
    if pending:
        chunks.append(pa.array(pending, pa.large_binary()))
    return pa.chunked_array(chunks, pa.large_binary())


def _updates(batch: UpdateBatch) -> pa.Array:
    """The messages of an update batch as a view of its run's buffer: consecutive
    messages of a run follow one another, so each ends where the next starts."""
    run = batch.run
    start, stop = batch.start, batch.stop
    offsets = np.empty(stop - start + 1, dtype=np.int64)
    offsets[:-1] = run.starts[start:stop]
    ends = run.bodies[start:stop] + run.sizes[start:stop]
    offsets[-1] = ends[-1]
    if not (ends[:-1] == offsets[1:-1]).all():  # (not end to end after all: copy each)
        buffer = run.buffer
        return pa.array([bytes(buffer[a:b]) for a, b in zip(
            offsets[:-1].tolist(), ends.tolist(), strict=True)], pa.large_binary())
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), stop - start, [None, pa.py_buffer(offsets), pa.py_buffer(run.buffer)])
