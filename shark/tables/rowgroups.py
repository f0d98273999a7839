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
from .schema import (
    BOOL,
    CATEGORY,
    FLOAT,
    INT64,
    NINT64,
    NUINT16,
    NUINT32,
    TEXT,
    TIME,
    UINT32,
    TableSchema,
)

__all__ = ["ChunkedTable", "Sink", "masked"]

#: Where finished row groups go: ``sink(table_name, batch)``.
Sink = Callable[[str, pa.RecordBatch], None]


def masked(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column part with nulls where ``valid`` is False."""
    return values, ~valid


class _Buffer:
    """The column parts of one table since the last row group.

    A part is, by column kind: a numpy array of the kind's storage type (never null); a
    ``(values, null mask)`` pair (nullable numbers and times); vocabulary codes, -1 for
    null, in the narrowest integer type that holds them (categories); a dict of strings
    by row (text, mostly null).
    """

    def __init__(self, schema: TableSchema, vocabularies: dict[str, Vocabulary]) -> None:
        self.schema = schema
        self.vocabularies = vocabularies
        self.parts: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.rows = 0

    def append(self, rows: int, columns: dict[str, Any]) -> None:
        if not rows:
            return
        for column in self.schema.columns:
            part = columns[column.name]
            kind = column.kind
            if kind == TEXT:  # rows are counted from the chunk's first
                part = {self.rows + row: text for row, text in part.items()}
            elif kind == CATEGORY:
                part = _narrow(part)
            elif isinstance(part, tuple):
                part = (part[0].astype(_STORAGE[kind], copy=False), part[1])
            else:
                part = part.astype(_STORAGE[kind], copy=False)
            self.parts[column.name].append(part)
        self.rows += rows

    def batch(self) -> pa.RecordBatch:
        arrays = [self._array(column.name, column.kind) for column in self.schema.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema.arrow)

    @classmethod
    def merged(cls, buffers: list[_Buffer], first: int = 0) -> _Buffer:
        """One buffer of the rows of ``buffers`` from row ``first`` on, a part per
        column. The buffers' parts are dropped column by column as they are joined, so
        that memory holds them and one column more, not them twice."""
        whole = cls(buffers[0].schema, buffers[0].vocabularies)
        starts = np.cumsum([0] + [buffer.rows for buffer in buffers]) - first
        whole.rows = int(starts[-1])
        for column in whole.schema.columns:
            name = column.name
            if column.kind == TEXT:  # each buffer counts its rows from 0
                whole.parts[name] = [{
                    start + row: text
                    for buffer, start in zip(buffers, starts.tolist(), strict=False)
                    for part in buffer.parts[name] for row, text in part.items()
                    if start + row >= 0}]
            else:
                parts = [part for buffer in buffers for part in buffer.parts[name]]
                whole.parts[name] = [_joined(parts, first)] if parts else []
            for buffer in buffers:
                buffer.parts[name] = []
        for buffer in buffers:
            buffer.rows = 0
        return whole

    def frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame, with the dtypes of the schema: numbers are
        the parts themselves where they are one (as :meth:`merged` leaves them)."""
        dtypes = self.schema.frame(self.schema.empty()).dtypes
        return pd.DataFrame({column.name: self._series(column.name, column.kind,
                                                       dtypes[column.name])
                             for column in self.schema.columns}, copy=False)

    def _series(self, name: str, kind: str, dtype: Any) -> Any:
        parts = self.parts[name]
        if kind == TEXT:  # mostly null: Arrow makes it, pandas keeps it
            return pd.array(_text(parts, self.rows), dtype=dtype)
        if kind == CATEGORY:
            codes = _joined(parts) if parts else np.zeros(0, dtype=np.int8)
            indexes, words = _used(codes, self.vocabularies[name])
            # (Arrow gives an empty dictionary object categories: the same here)
            return pd.Categorical.from_codes(indexes, pd.Index(words, dtype="str" if words
                                                               else object))
        if not parts:
            values, nulls = np.zeros(0, dtype=_STORAGE[kind]), None
        elif isinstance(parts[0], tuple):
            values, nulls = _joined(parts)
        else:
            values, nulls = _joined(parts), None
        if kind == TIME:
            times = values.view("datetime64[ns]")
            if nulls is not None and nulls.any():  # (not into the part)
                times = np.where(nulls, np.datetime64("NaT", "ns"), times)
            return pd.array(times, dtype=dtype)
        if kind not in _NULLABLE:
            return values.astype(dtype, copy=False)
        return _NULLABLE[kind](values, np.zeros(len(values), dtype=bool) if nulls is None
                               else nulls)

    def _array(self, name: str, kind: str) -> pa.Array:
        parts = self.parts[name]
        field = self.schema.arrow.field(name)
        if not parts:
            return pa.array([], field.type)
        if kind == TEXT:
            return _text(parts, self.rows)
        if kind == CATEGORY:
            return _dictionary(_joined(parts), self.vocabularies[name])
        if isinstance(parts[0], tuple):
            values, nulls = _joined(parts)
            return pa.array(values, field.type, mask=nulls)
        return pa.array(_joined(parts), field.type)


#: The numpy type each kind's numbers are kept in (categories: :func:`_narrow`).
_STORAGE = {INT64: np.int64, UINT32: np.uint32, NINT64: np.int64, NUINT32: np.uint32,
            NUINT16: np.uint16, FLOAT: np.float64, TIME: np.int64, BOOL: np.bool_}


def _narrow(codes: np.ndarray) -> np.ndarray:
    """Vocabulary codes (-1 for null) in the narrowest integer type that holds them."""
    top = int(codes.max()) if len(codes) else 0
    narrowest = next(t for t in (np.int8, np.int16, np.int32) if top <= np.iinfo(t).max)
    return codes.astype(narrowest, copy=False)


def _joined(parts: list[Any], first: int = 0) -> Any:
    """Parts of one column as one, from row ``first`` on: an array, or a (values, nulls)
    pair; a lone part is not copied."""
    if isinstance(parts[0], tuple):
        return tuple(_joined(list(side), first) for side in zip(*parts, strict=True))
    if len(parts) == 1:
        return parts[0][first:]
    if not first:
        return np.concatenate(parts)
    skipped = 0
    while skipped + len(parts[0]) <= first:
        skipped += len(parts.pop(0))
    parts[0] = parts[0][first - skipped :]
    return np.concatenate(parts)


#: pandas' masked arrays of the nullable number kinds (the rest: plain numpy).
_NULLABLE = {FLOAT: pd.arrays.FloatingArray, NINT64: pd.arrays.IntegerArray,
             NUINT32: pd.arrays.IntegerArray, NUINT16: pd.arrays.IntegerArray}


def _text(parts: list[dict[int, str]], rows: int) -> pa.LargeStringArray:
    """A string column of ``rows`` rows, null but where ``parts`` give a text: built from
    its buffers (offsets, bytes, validity), so that the nulls cost nothing each."""
    texts = {row: text for part in parts for row, text in part.items()}
    if not texts:
        return pa.nulls(rows, pa.large_string())
    where = np.fromiter(texts, np.int64, len(texts))
    data = [_utf8(text) for text in texts.values()]
    lengths = np.zeros(rows + 1, dtype=np.int64)
    lengths[where + 1] = np.fromiter(map(len, data), np.int64, len(data))
    order = np.argsort(where, kind="stable")
    valid = np.zeros(rows, dtype=bool)
    valid[where] = True
    return pa.LargeStringArray.from_buffers(
        rows, pa.py_buffer(np.cumsum(lengths)),
        pa.py_buffer(b"".join([data[i] for i in order.tolist()])),
        pa.py_buffer(np.packbits(valid, bitorder="little")), int(rows - len(texts)))


def _utf8(text: str) -> bytes:
    """UTF-8 of a text; bytes that were not UTF-8 (decoded with surrogateescape) as
    ``\\xNN``, which Arrow strings can hold."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode()


def _used(codes: np.ndarray, vocabulary: Vocabulary) -> tuple[np.ndarray, list[str]]:
    """Vocabulary codes as indexes into the strings used, sorted (so that a capture
    gives the same files however its records were chunked), and those strings."""
    shifted = codes.astype(np.int32)  # a copy: -1 (null) to 0, and no overflow
    shifted += 1
    used = np.flatnonzero(np.bincount(shifted, minlength=len(vocabulary.values) + 1)[1:])
    order = sorted(used.tolist(), key=vocabulary.values.__getitem__)
    # In the narrowest type that holds them, as pandas keeps categorical codes.
    narrowest = next(t for t in (np.int8, np.int16, np.int32) if len(order) < np.iinfo(t).max)
    renumber = np.full(len(vocabulary.values) + 1, -1, dtype=narrowest)  # [-1] stays -1
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
        """:meth:`table` as a pandas DataFrame, made without Arrow (see the module).

        Without a sink the row groups kept become one, of the rows :meth:`table` shows,
        with a part per column; its number columns are those of the DataFrame, not
        copies (memory holds the rows once, not twice)."""
        buffers = [buffer for buffer in (*self._kept, self._buffer) if buffer.rows]
        if not buffers:
            return _Buffer(self.schema, self._vocabularies).frame()
        rows = sum(buffer.rows for buffer in buffers)
        if self.sink is not None:  # the rows not sent yet: left as they are
            copies = [_Buffer(self.schema, self._vocabularies) for _ in buffers]
            for copy, buffer in zip(copies, buffers, strict=True):
                copy.parts = {name: list(parts) for name, parts in buffer.parts.items()}
                copy.rows = buffer.rows
            return _Buffer.merged(copies, self._first_kept(rows)).frame()
        whole = _Buffer.merged(buffers, self._first_kept(rows))
        self._kept = deque([whole])
        self._kept_rows = whole.rows
        self._buffer = _Buffer(self.schema, self._vocabularies)
        return whole.frame()

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
