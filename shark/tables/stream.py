"""The ``messages`` table as a stream of Arrow record batches: the one product of
decoding that every view reads.

``shark read`` (text, jsonl, csv, ``--summary``), ``shark live`` and the Python
iterator's filters take their rows from here, a batch of some ten thousand rows at a
time, so that a capture of any length goes through in bounded memory, and the first
lines show as soon as the first batch is decoded. A batch has the columns of the
``messages`` table (:data:`shark.tables.messages.MESSAGES`), with rows for circuit ends
(OPEN, CLOSE) when asked for, and the bytes of each message (a ``raw`` column,
:mod:`shark.tables.raw`) when asked for.
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
from shark.tables.display import NUMBERS_KEPT
from shark.tables.messages import MESSAGES
from shark.tables.raw import RAW, raw_column

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
    seconds, None before any), which relative times count from. With ``raw`` the
    batches have a last column more, ``raw``: each message's bytes. ``numbers_kept``
    and ``owns_records``: as :class:`shark.tables.builder.TableBuilder` takes them.
    """

    def __init__(self, records: Iterable[Record | UpdateBatch], *, lifecycle: bool = False,
                 rows: int = BATCH_ROWS, raw: bool = False,
                 numbers_kept: int = NUMBERS_KEPT, owns_records: bool = False) -> None:
        self._records = iter(records)
        self._ready: list[pa.RecordBatch] = []
        self._builder = TableBuilder(("messages",), sink=self._take, row_group_rows=rows,
                                     chunk_rows=rows, lifecycle=lifecycle,
                                     numbers_kept=numbers_kept, owns_records=owns_records)
        self.rows = 0
        self.lifecycle = lifecycle
        #: With ``raw``: the bytes of the rows made or being made, not yet in a batch.
        self._raw: list[pa.Array] | None = [] if raw else None
        self.schema: pa.Schema = MESSAGES.arrow.append(RAW) if raw else MESSAGES.arrow

    @classmethod
    def of_capture(cls, source: str | Path | BinaryIO, ports: Iterable[int] = (), *,
                   lifecycle: bool = False, rows: int = BATCH_ROWS, raw: bool = False
                   ) -> MessageStream:
        """The stream of a capture (a path, ``"-"`` for stdin, or a stream). A damaged
        capture raises (:class:`shark.capture.files.CaptureError`, ``OSError``) after
        the batches of what was read before."""
        return cls(read(source, ports, lifecycle=True, bulk=True), lifecycle=lifecycle,
                   rows=rows, raw=raw, owns_records=True)

    @property
    def first_time(self) -> float | None:
        return self._builder.first_time

    def _take(self, name: str, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self._raw is not None:
            batch = batch.append_column(RAW, self._raw_rows(batch.num_rows))
        self._ready.append(batch)

    def _extend(self, items: list[Record | UpdateBatch]) -> None:
        """Hand ``items`` to the builder (their bytes first, with ``raw``: the builder
        may make batches of them at once)."""
        if self._raw is not None and items:
            self._raw.extend(raw_column(items, self.lifecycle).chunks)
        self._builder.extend(items)

    def _raw_rows(self, rows: int) -> pa.Array:
        """The bytes of the next ``rows`` rows, in the order the builder makes them."""
        pending = self._raw
        taken: list[pa.Array] = []
        while rows and pending:
            head = pending[0]
            if len(head) <= rows:
                taken.append(pending.pop(0))
                rows -= len(head)
            else:
                taken.append(head.slice(0, rows))
                pending[0] = head.slice(rows)
                rows = 0
        if rows:  # (a row made of nothing the items said: a bug, shown as no bytes)
            taken.append(pa.nulls(rows, pa.large_binary()))
        if len(taken) == 1:
            return taken[0]
        return pa.concat_arrays(taken) if taken else pa.array([], pa.large_binary())

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        builder = self._builder
        items: list[Record | UpdateBatch] = []
        rows = 0
        with _fewer_full_collections(self._builder.owns_records):
            try:
                for item in self._records:
                    items.append(item)
                    rows += len(item) if item.kind is UPDATES else 1
                    if rows >= _ROWS:  # (a batch of updates may hold thousands)
                        self._extend(items)
                        items = []
                        rows = 0
                        yield from self._drain()
            except Exception:  # what was read before an error still shows, then the error
                self._extend(items)
                builder.finish()
                yield from self._drain()
                raise
            self._extend(items)
            builder.finish()
            yield from self._drain()

    def take(self, records: Iterable[Record | UpdateBatch]) -> list[pa.RecordBatch]:
        """The batches of ``records`` now, however few (records that come a few at a
        time: ``shark live``)."""
        self._extend(records if isinstance(records, list) else list(records))
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
