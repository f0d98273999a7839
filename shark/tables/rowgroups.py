"""Tables with a row per message, built as column buffers and cut into row groups.

The ``messages`` and ``updates`` tables grow with the capture. Each chunk of records
adds one part per column (numpy arrays, vocabulary codes, sparse text); once a buffer
holds ``row_group_rows`` rows it becomes one Arrow record batch, with dictionaries
holding only the strings the batch uses. A batch goes to the builder's sink (a Parquet
writer: memory stays bounded however long the capture) or is kept for the DataFrame,
at most ``keep_rows`` rows of them when a bound is asked for (the newest are kept).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from .chunk import Chunk, Vocabularies, Vocabulary
from .schema import CATEGORY, TEXT, TableSchema

__all__ = ["ChunkedTable", "Sink", "masked"]

#: Where finished row groups go: ``sink(table_name, batch)``.
Sink = Callable[[str, pa.RecordBatch], None]


def masked(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column part with nulls where ``valid`` is False."""
    return values, ~valid


class _Buffer:
    """The column parts of one table since the last row group.

    A part is, by column kind: a numpy array (never null); a ``(values, null mask)``
    pair (nullable numbers and times); int32 vocabulary codes, -1 for null
    (categories); a dict of strings by row (text, mostly null).
    """

    def __init__(self, schema: TableSchema, vocabularies: dict[str, Vocabulary]) -> None:
        self.schema = schema
        self.vocabularies = vocabularies
        self.parts: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.rows = 0

    def append(self, rows: int, columns: dict[str, Any]) -> None:
        if not rows:
            return
        for name, parts in self.parts.items():
            part = columns[name]
            if isinstance(part, dict):  # text: rows are counted from the chunk's first
                part = {self.rows + row: text for row, text in part.items()}
            parts.append(part)
        self.rows += rows

    def batch(self) -> pa.RecordBatch:
        arrays = [self._array(column.name, column.kind) for column in self.schema.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema.arrow)

    def _array(self, name: str, kind: str) -> pa.Array:
        parts = self.parts[name]
        field = self.schema.arrow.field(name)
        if not parts:
            return pa.array([], field.type)
        if kind == TEXT:  # the strings, then where they go: rows without one take a null
            where = np.full(self.rows, -1, dtype=np.int64)
            where[[row for part in parts for row in part]] = np.arange(
                sum(map(len, parts)))
            texts = pa.array([text for part in parts for text in part.values()], field.type)
            return texts.take(pa.array(where, mask=where < 0))
        if kind == CATEGORY:
            return _dictionary(np.concatenate(parts), self.vocabularies[name])
        if isinstance(parts[0], tuple):
            values, nulls = (np.concatenate(p) for p in zip(*parts, strict=True))
            return pa.array(values, field.type, mask=nulls)
        return pa.array(np.concatenate(parts), field.type)


def _dictionary(codes: np.ndarray, vocabulary: Vocabulary) -> pa.DictionaryArray:
    """Vocabulary codes as a dictionary array of the strings used, sorted (so that a
    capture gives the same files however its records were chunked)."""
    null = codes < 0
    used = np.flatnonzero(np.bincount(codes[~null], minlength=len(vocabulary.values)))
    order = sorted(used.tolist(), key=vocabulary.values.__getitem__)
    words = [vocabulary.values[i] for i in order]
    renumber = np.full(len(vocabulary.values) + 1, -1, dtype=np.int32)  # [-1] stays -1
    renumber[order] = np.arange(len(order), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(renumber[codes], pa.int32(), mask=null), pa.array(words, pa.string()))


class ChunkedTable:
    """A table with a row per record of some kind; subclasses say which and how.

    ``categories`` name the vocabulary (an attribute of :class:`Vocabularies`) of each
    category column.
    """

    schema: TableSchema
    categories: dict[str, str]

    def __init__(self, vocabularies: Vocabularies, row_group_rows: int,
                 sink: Sink | None = None, keep_rows: int | None = None) -> None:
        self.row_group_rows = row_group_rows
        self.sink = sink
        self.keep_rows = keep_rows
        self._vocabularies = {
            name: getattr(vocabularies, attribute) for name, attribute in self.categories.items()
        }
        self._buffer = _Buffer(self.schema, self._vocabularies)
        self._batches: deque[pa.RecordBatch] = deque()
        self._kept = 0

    def columns(self, chunk: Chunk) -> tuple[int, dict[str, Any]]:
        """The number of rows ``chunk`` adds, and a part per column."""
        raise NotImplementedError

    def update(self, chunk: Chunk) -> None:
        self._buffer.append(*self.columns(chunk))
        if self._buffer.rows >= self.row_group_rows:
            self._emit()

    def finish(self) -> None:
        """Send the rows still buffered (the capture ended)."""
        if self._buffer.rows:
            self._emit()

    def table(self, name: str) -> pa.Table:
        """The rows kept so far, those buffered included (without cutting a row group)."""
        batches = list(self._batches)
        if self._buffer.rows:
            batches.append(self._buffer.batch())
        return pa.Table.from_batches(batches, self.schema.arrow)

    def _emit(self) -> None:
        batch = self._buffer.batch()
        self._buffer = _Buffer(self.schema, self._vocabularies)
        if self.sink is not None:
            self.sink(self.schema.name, batch)
            return
        self._batches.append(batch)
        self._kept += batch.num_rows
        while self.keep_rows is not None and self._kept - self._batches[0].num_rows >= (
                self.keep_rows):
            self._kept -= self._batches.popleft().num_rows
