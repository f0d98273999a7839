"""Export what the log shows to Parquet, for pandas, polars or DuckDB.

The rows and their types are those of shark's own ``messages`` table
(:mod:`shark.tables`: the columns of ``shark read --format jsonl``, typed, one row per
record), so that an export from the TUI and one from the command line read the same.
The log's rows are that table's already (:func:`export_rows`); records are made into it
(:func:`export_parquet`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shark.extract.record import Record

from .log import LogRows

__all__ = ["export_parquet", "export_rows", "export_slice"]


def _wanted(rows: LogRows) -> tuple[int, int, np.ndarray | None]:
    """The store positions ``rows`` shows: from, to, and which between (None: all)."""
    if rows.index is None:
        return rows.first, rows.last, None
    chunks = [c for c in rows.index.all() if len(c)]
    everything = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
    start = rows.index.start
    wanted = everything[max(0, rows.first - start) : max(0, rows.last - start)]
    first, last = (int(wanted[0]), int(wanted[-1]) + 1) if len(wanted) else (0, 0)
    return first, last, wanted


def export_rows(rows: LogRows, path: str | Path) -> int:
    """Write the store's rows that ``rows`` shows (those still held) to ``path``, a
    batch at a time, without the ``raw`` bytes; the number of rows written."""
    import pyarrow.parquet as pq

    store = rows.reader.store
    first, last, wanted = _wanted(rows)
    written = 0
    writer = None
    try:
        for position, batch in store.batches(first, last):
            if "raw" in batch.schema.names:
                batch = batch.drop_columns(["raw"])
            if wanted is not None:
                lo, hi = np.searchsorted(wanted, [position, position + batch.num_rows])
                batch = batch.take(wanted[lo:hi] - position)
            if writer is None:
                writer = pq.ParquetWriter(str(path), batch.schema)
            writer.write_batch(batch)
            written += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows: an empty file of the table's columns
        from shark.tables.messages import MESSAGES

        pq.write_table(MESSAGES.arrow.empty_table(), str(path))
    return written


def export_parquet(records: Iterable[Record | None], path: str | Path) -> int:
    """Write ``records`` (None items skipped) to ``path`` with
    :meth:`pandas.DataFrame.to_parquet`; the number of rows written. pandas and pyarrow
    are imported here, so that the TUI starts without them."""
    from shark.tables import TableBuilder

    builder = TableBuilder(["messages"])
    builder.extend(record for record in records if record is not None)
    frame = builder.table("messages")
    frame.to_parquet(path, index=False)
    return len(frame)


def export_slice(rows: LogRows, capture: str | Path, path: str | Path) -> tuple[int, int]:
    """Write the frames of the rows ``rows`` shows, with the frames that set up their
    channels (:class:`shark.tables.selection.FrameSelection`: so that the slice reads
    back with its PVs named), from the capture file ``capture`` to a new pcapng file
    ``path``; the frames written, and those wanted (more when the file ends before
    them: a live capture's, still being saved)."""
    from shark.capture.slice import write_slice
    from shark.tables.selection import FrameSelection

    store = rows.reader.store
    first, last, wanted = _wanted(rows)
    selection = FrameSelection()
    columns = ["frame", "command", "sender", "circuit", "pv"]
    for position, batch in store.batches(store.start, last):
        batch = batch.select(columns)  # (set-ups come before the rows they name)
        if position + batch.num_rows <= first:
            chosen = batch.slice(0, 0)
        elif wanted is None:
            lo, hi = max(first - position, 0), min(last - position, batch.num_rows)
            chosen = batch.slice(lo, hi - lo)
        else:
            lo, hi = np.searchsorted(wanted, [position, position + batch.num_rows])
            chosen = batch.take(wanted[lo:hi] - position)
        selection.add(batch, chosen)
    frames = selection.frames()
    return write_slice(capture, frames, path), len(frames)
