"""The ``messages`` table as a stream of Arrow record batches: the one product of
decoding that every view reads.

``shark read`` (text, jsonl, csv, ``--summary``), ``shark live`` and the Python
iterator's filters take their rows from here, a batch of some ten thousand rows at a
time, so that a capture of any length goes through in bounded memory, and the first
lines show as soon as the first batch is decoded. A batch has the columns of the
``messages`` table (:data:`shark.tables.messages.MESSAGES`), with rows for circuit ends
(OPEN, CLOSE) when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shark.analysis.attribution import read
from shark.analysis.filters import Selector
from shark.extract.bulk import UPDATES, UpdateBatch
from shark.extract.record import Record
from shark.tables.builder import TableBuilder, _fewer_full_collections
from shark.tables.messages import MESSAGES

__all__ = ["BATCH_ROWS", "MessageStream", "circuit_ends", "shown_rows"]

#: Rows of a batch: enough that per-batch costs vanish, few enough that the first lines
#: of ``shark read`` show at once and memory stays small.
BATCH_ROWS = 1 << 15
#: Rows handed to the builder at a time (records, and the updates of batches): the
#: batches they make are yielded before more are decoded, so that few are in memory.
_ROWS = 1 << 13


class MessageStream:
    """The batches of the ``messages`` table of some records, as they are made.

    Iterate over it for the batches; then (or meanwhile) ``rows`` counts the rows made
    so far and ``first_time`` is the capture time of the first record of all (Unix
    seconds, None before any), which relative times count from.
    """

    schema: pa.Schema = MESSAGES.arrow

    def __init__(self, records: Iterable[Record | UpdateBatch], *, lifecycle: bool = False,
                 rows: int = BATCH_ROWS) -> None:
        self._records = iter(records)
        self._ready: list[pa.RecordBatch] = []
        self._builder = TableBuilder(("messages",), sink=self._take, row_group_rows=rows,
                                     chunk_rows=rows, lifecycle=lifecycle)
        self.rows = 0

    @classmethod
    def of_capture(cls, source: str | Path | BinaryIO, ports: Iterable[int] = (), *,
                   lifecycle: bool = False, rows: int = BATCH_ROWS) -> MessageStream:
        """The stream of a capture (a path, ``"-"`` for stdin, or a stream). A damaged
        capture raises (:class:`shark.capture.files.CaptureError`, ``OSError``) after
        the batches of what was read before."""
        return cls(read(source, ports, lifecycle=True, bulk=True), lifecycle=lifecycle,
                   rows=rows)

    @property
    def first_time(self) -> float | None:
        return self._builder.first_time

    def _take(self, name: str, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        self._ready.append(batch)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        builder = self._builder
        items: list[Record | UpdateBatch] = []
        rows = 0
        with _fewer_full_collections():
            try:
                for item in self._records:
                    items.append(item)
                    rows += len(item) if item.kind is UPDATES else 1
                    if rows >= _ROWS:  # (a batch of updates may hold thousands)
                        builder.extend(items)
                        items = []
                        rows = 0
                        yield from self._drain()
            except Exception:  # what was read before an error still shows, then the error
                builder.extend(items)
                builder.finish()
                yield from self._drain()
                raise
            builder.extend(items)
            builder.finish()
            yield from self._drain()

    def take(self, records: Iterable[Record | UpdateBatch]) -> list[pa.RecordBatch]:
        """The batches of ``records`` now, however few (records that come a few at a
        time: ``shark live``)."""
        self._builder.extend(records)
        self._builder.finish()
        return list(self._drain())

    def _drain(self) -> Iterator[pa.RecordBatch]:
        while self._ready:
            yield self._ready.pop(0)


#: The rows that are not messages but circuit ends (with ``lifecycle``).
CIRCUIT_ENDS = ("OPEN", "CLOSE")


def circuit_ends(batch: pa.RecordBatch) -> np.ndarray:
    """Which rows of a batch are circuit ends (OPEN, CLOSE), not messages."""
    command = batch.column("command")
    ends = [i for i, name in enumerate(command.dictionary.to_pylist()) if name in CIRCUIT_ENDS]
    if not ends:
        return np.zeros(batch.num_rows, dtype=bool)
    return np.isin(pc.fill_null(command.indices, -1).to_numpy(), ends)


def shown_rows(batch: pa.RecordBatch, select: Selector | None, start: float | None,
          ends: bool) -> tuple[pa.RecordBatch, int]:
    """The rows of ``batch`` to show: those ``select`` keeps (None: every one; ``start``:
    the capture's first time), circuit ends only with ``ends`` (text shows them); and
    how many of all its rows are messages (not circuit ends)."""
    circuit = circuit_ends(batch)
    keep = ~circuit if not ends and circuit.any() else None
    if select is not None:
        mask = select(batch, start)
        keep = mask if keep is None else keep & mask
    messages = batch.num_rows - int(circuit.sum())
    return (batch if keep is None else batch.filter(pa.array(keep))), messages
