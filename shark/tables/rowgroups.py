"""Tables with a row per message, built as column buffers and cut into row groups.

The ``messages`` and ``updates`` tables grow with the capture. Each chunk of records
adds one part per column (numpy arrays, vocabulary codes, sparse text); once a buffer
holds ``row_group_rows`` rows it is a row group. With a sink (a Parquet writer: memory
stays bounded however long the capture) it becomes one Arrow record batch, with
dictionaries holding only the strings the batch uses. Without, the buffers are kept,
at most ``keep_rows`` rows of them when a bound is asked for (the newest are kept), and
the DataFrame is made from their parts directly: numpy arrays become pandas arrays
without a copy where they can, and each categorical column gets one dictionary, of the
strings it uses, sorted (through Arrow, every row group's dictionary would have to be
unified with the others: that costs more than everything else).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .chunk import Chunk, Vocabularies, Vocabulary
from .schema import CATEGORY, FLOAT, NINT64, NUINT16, NUINT32, TEXT, TIME, TableSchema

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

    def merge(self, other: _Buffer) -> None:
        """Append the parts of ``other`` (a later buffer) to these."""
        for name, parts in self.parts.items():
            for part in other.parts[name]:
                if isinstance(part, dict):
                    part = {self.rows + row: text for row, text in part.items()}
                parts.append(part)
        self.rows += other.rows

    def frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame, with the dtypes of the schema."""
        dtypes = self.schema.frame(self.schema.empty()).dtypes
        return pd.DataFrame({column.name: self._series(column.name, column.kind,
                                                       dtypes[column.name])
                             for column in self.schema.columns}, copy=False)

    def _series(self, name: str, kind: str, dtype: Any) -> Any:
        parts = self.parts[name]
        if kind == TEXT:  # mostly null: Arrow makes it, pandas keeps it
            return self._array(name, kind).to_pandas()
        if kind == CATEGORY:
            codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
            indexes, words = _used(codes, self.vocabularies[name])
            # (Arrow gives an empty dictionary object categories: the same here)
            return pd.Categorical.from_codes(indexes, pd.Index(words, dtype="str" if words
                                                               else object))
        if parts and isinstance(parts[0], tuple):
            values, nulls = (np.concatenate(p) for p in zip(*parts, strict=True))
        else:
            values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            nulls = None
        if kind == TIME:
            times = pd.array(values.astype("datetime64[ns]"), dtype="datetime64[ns]")
            if nulls is not None:
                times[nulls] = pd.NaT
            return times.tz_localize("UTC")
        if kind not in _NULLABLE:
            return values.astype(dtype, copy=False)
        return _NULLABLE[kind](values.astype(dtype.numpy_dtype, copy=False),
                               np.zeros(len(values), dtype=bool) if nulls is None else nulls)

    def _array(self, name: str, kind: str) -> pa.Array:
        parts = self.parts[name]
        field = self.schema.arrow.field(name)
        if not parts:
            return pa.array([], field.type)
        if kind == TEXT:  # the strings, then where they go: rows without one take a null
            if not any(parts):
                return pa.nulls(self.rows, field.type)
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


#: pandas' masked arrays of the nullable number kinds (the rest: plain numpy).
_NULLABLE = {FLOAT: pd.arrays.FloatingArray, NINT64: pd.arrays.IntegerArray,
             NUINT32: pd.arrays.IntegerArray, NUINT16: pd.arrays.IntegerArray}


def _used(codes: np.ndarray, vocabulary: Vocabulary) -> tuple[np.ndarray, list[str]]:
    """Vocabulary codes as indexes into the strings used, sorted (so that a capture
    gives the same files however its records were chunked), and those strings."""
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(vocabulary.values) + 1)[1:])
    order = sorted(used.tolist(), key=vocabulary.values.__getitem__)
    renumber = np.full(len(vocabulary.values) + 1, -1, dtype=np.int32)  # [-1] stays -1
    renumber[order] = np.arange(len(order), dtype=np.int32)
    return renumber[codes], [vocabulary.values[i] for i in order]


def _dictionary(codes: np.ndarray, vocabulary: Vocabulary) -> pa.DictionaryArray:
    """Vocabulary codes as a dictionary array of the strings used, sorted."""
    indexes, words = _used(codes, vocabulary)
    return pa.DictionaryArray.from_arrays(pa.array(indexes, pa.int32(), mask=indexes < 0),
                                          pa.array(words, pa.string()))


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
        #: The row groups kept (without a sink).
        self._kept: deque[_Buffer] = deque()
        self._kept_rows = 0

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
        buffers = [*self._kept, self._buffer]
        table = pa.Table.from_batches([b.batch() for b in buffers if b.rows],
                                      self.schema.arrow)
        return table.slice(self._first_kept(table.num_rows))

    def frame(self) -> pd.DataFrame:
        """:meth:`table` as a pandas DataFrame, made without Arrow (see the module)."""
        whole = _Buffer(self.schema, self._vocabularies)
        for buffer in (*self._kept, self._buffer):
            whole.merge(buffer)
        frame = whole.frame()
        first = self._first_kept(len(frame))
        if not first:
            return frame
        frame = frame.iloc[first:].reset_index(drop=True)
        for column in self.schema.columns:
            if column.kind == CATEGORY:  # only the strings the rows kept use
                frame[column.name] = frame[column.name].cat.remove_unused_categories()
        return frame

    def _first_kept(self, rows: int) -> int:
        """The first of ``rows`` to show: exactly the newest ``keep_rows`` (the row groups
        kept hold a few more, as many as chunking left)."""
        return 0 if self.keep_rows is None else max(0, rows - self.keep_rows)

    def _emit(self) -> None:
        buffer = self._buffer
        self._buffer = _Buffer(self.schema, self._vocabularies)
        if self.sink is not None:
            self.sink(self.schema.name, buffer.batch())
            return
        self._kept.append(buffer)
        self._kept_rows += buffer.rows
        while self.keep_rows is not None and self._kept_rows - self._kept[0].rows >= (
                self.keep_rows):
            self._kept_rows -= self._kept.popleft().rows
