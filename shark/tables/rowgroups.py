"""Tables with a row per message, built as growing columns and cut into row groups.

The ``messages`` and ``updates`` tables grow with the capture. Each chunk of records
adds its part of every column (numpy arrays, vocabulary codes, sparse text) at the end
of a growing array. With a sink (a Parquet writer: memory stays bounded however long
the capture) the columns are cut every ``row_group_rows`` rows into an Arrow record
batch, with dictionaries holding only the strings the batch uses. Without, they keep
growing (at most ``keep_rows`` rows and as many more when a bound is asked for: the
newest are kept), and the DataFrame is made from them directly: its number and time
columns are views of them (memory holds the rows once; a column grows in place, its
pages moved by the kernel, not copied: :class:`_Growing`), and each categorical column
gets one dictionary, of the strings it uses, sorted, its codes renumbered to that
order or, where they are in it already, views too (through Arrow, every row group's
dictionary would have to be unified with the others: that costs more than everything
else).
"""

from __future__ import annotations

import mmap
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

from shark.extract.text import text_form
from shark.tables.chunk import Chunk, Vocabularies, Vocabulary
from shark.tables.schema import (
    BOOL,
    CATEGORY,
    ELEMENTS,
    FLOAT,
    INT64,
    NINT64,
    NUINT16,
    NUINT32,
    STRINGS,
    TEXT,
    TIME,
    UINT32,
    TableSchema,
    arrow_type,
)

if TYPE_CHECKING:  # (pandas loads with the first DataFrame made: :meth:`_Buffer.frame`)
    import pandas as pd

__all__ = ["ChunkedTable", "Sink", "masked"]

#: Where finished row groups go: ``sink(table_name, batch)``.
Sink = Callable[[str, pa.RecordBatch], None]


def masked(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column part with nulls where ``valid`` is False."""
    return values, valid


class _Growing:
    """An array that grows at its end. Past its first few rows it lives in a private
    anonymous memory map of its own, which grows by ``mremap``: the kernel moves page
    tables, nothing is copied, and pages are handed out as they are first written.
    Once a view of it is out there (a DataFrame's column) the map cannot be resized:
    it grows into a new map, its rows copied once, and the view stays valid.

    Not numpy's allocator: the C library moves blocks of up to tens of megabytes when
    they grow (every value of a column copied four or five times on its way), and above
    4 MB numpy asks for transparent huge pages, which a virtual machine may take several
    times longer to hand out than small pages (measured: 3.5 against 0.7 ms a MB)."""

    __slots__ = ("dtype", "data", "size", "_map")

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.data = np.empty(_FIRST_CAPACITY, dtype=self.dtype)
        self.size = 0
        self._map: mmap.mmap | None = None

    def extend(self, values: np.ndarray) -> None:
        self.reserve(len(values))[:] = values

    def skip(self, rows: int) -> bool:
        """Add ``rows`` rows of zeros (or whose values do not matter: nulls) without
        writing them, if they are in a map: its pages not yet written read as zeros and
        take no memory (a column that is all nulls, as some are for monitor updates,
        costs nothing but its null mask; a mask of no nulls nothing at all). False
        (nothing done) if not."""
        end = self.size + rows
        if end > len(self.data):
            self._grow(max(end, 2 * len(self.data)))
        if self._map is None:
            return False
        self.size = end
        return True

    def put(self, values: np.ndarray, valid: np.ndarray) -> None:
        """Add ``values``, of which only those where ``valid`` matter (the others are
        nulls): in a map, only the pages that hold some of those are written (a column
        mostly null, as ``latency`` is among monitor updates, has its few values in a
        few pages: the others read as zeros and take no memory); else every value."""
        start = self.size
        count = np.count_nonzero(valid)
        if count * _SPARSE > len(values) or not self.skip(len(values)):
            self.extend(values)  # (many: most pages would be written, one by one)
            return
        if not count:  # (all null: nothing to write)
            return
        written = _pages_written(valid, start, self.dtype.itemsize)
        if written.all():  # (every page: handed out at once, and one copy)
            self.size = start
            self.extend(values)
            return
        slots = self.data[start : self.size]
        per = mmap.PAGESIZE // self.dtype.itemsize
        head = min(-start % per, len(values))  # (the rows before the first whole page)
        if head and written[0]:
            slots[:head] = values[:head]
        whole = (len(values) - head) // per
        if whole:
            pages = written[1 if head else 0 :][:whole]
            body = slice(head, head + whole * per)
            slots[body].reshape(whole, per)[pages] = values[body].reshape(whole, per)[pages]
        end = head + whole * per
        if end < len(values) and written[-1]:
            slots[end:] = values[end:]

    def reserve(self, rows: int) -> np.ndarray:
        """Room for ``rows`` more at the end: the slots to fill (in a map, their pages
        handed out at once: :func:`_populate`)."""
        end = self.size + rows
        if end > len(self.data):
            self._grow(max(end, 2 * len(self.data)))
        if self._map is not None:
            _populate(self._map, self.size * self.dtype.itemsize, end * self.dtype.itemsize)
        slots = self.data[self.size : end]
        self.size = end
        return slots

    def _grow(self, capacity: int) -> None:
        size = capacity * self.dtype.itemsize
        if self._map is not None:
            self.data = None  # (an array of the map would stop it from growing)
            try:
                self._map.resize(size)
            except (BufferError, OSError, SystemError):  # a view of it is out there (or
                # no mremap on this system): a new map
                self._move(np.frombuffer(self._map, self.dtype)[: self.size], size)
            else:
                self.data = np.frombuffer(self._map, self.dtype)
            return
        self._move(self.data[: self.size], size)

    def _move(self, rows: np.ndarray, size: int) -> None:
        """Into a new map of ``size`` bytes, ``rows`` first."""
        self._map = (mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE) if hasattr(mmap, "MAP_PRIVATE")
                     else mmap.mmap(-1, size))  # (Windows: no flags, private anyway)
        self.data = np.frombuffer(self._map, self.dtype)
        self.data[: len(rows)] = rows

    def widen(self, dtype: Any) -> None:
        """Hold values of ``dtype`` from now on (category codes past a type's range)."""
        rows = self.data[: self.size]
        self.dtype = np.dtype(dtype)
        self._move(rows, len(self.data) * self.dtype.itemsize)

    def view(self, first: int = 0) -> np.ndarray:
        return self.data[first : self.size]


#: madvise's MADV_POPULATE_WRITE (Linux 5.14 and later), while the system takes it.
_POPULATE_WRITE = [getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform == "linux"
                   else None]


def _pages_written(valid: np.ndarray, start: int, itemsize: int) -> np.ndarray:
    """Per page of a map of items of ``itemsize`` bytes that rows ``valid``, from row
    ``start`` on, are in (the first and last maybe in part): whether some of them in it
    is valid (the pages :meth:`_Growing.put` writes)."""
    per = mmap.PAGESIZE // itemsize
    bounds = np.arange(-start % per, len(valid), per)
    if not len(bounds) or bounds[0]:
        bounds = np.concatenate(([0], bounds))
    return np.logical_or.reduceat(valid, bounds)


def _populate(memory: mmap.mmap, start: int, end: int) -> None:
    """Have the system hand out the pages of bytes ``start`` to ``end`` of a map now,
    all in one call, rather than one fault per page as they are first written: that
    takes some 40 % less time, and a table's columns are written once, every page."""
    advice = _POPULATE_WRITE[0]
    if advice is None or end <= start:
        return
    start -= start % mmap.PAGESIZE
    try:
        memory.madvise(advice, start, end - start)
    except (OSError, ValueError):  # (an older system: pages as they are written)
        _POPULATE_WRITE[0] = None


class _Codes(_Growing):
    """A category column: vocabulary codes, -1 for null, in the narrowest integer type
    that holds them so far, and ``used``, which codes it holds (so that a table of all
    its rows need not count them)."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        super().__init__(np.int8)
        self.used = np.zeros(0, dtype=bool)

    def extend(self, values: np.ndarray) -> None:
        if not len(values):
            return
        low, high = int(values.min()), int(values.max())
        if high > np.iinfo(self.dtype).max:
            self.widen(_narrow(values).dtype)
        slots = self.reserve(len(values))
        slots[:] = values
        # (looked for among the codes as kept: narrower than the part's, most often a
        # byte each, a quarter of the bytes to compare)
        self._mark(slots, low, high)

    def _mark(self, values: np.ndarray, low: int, high: int) -> None:
        """Mark the codes of ``values`` (from ``low`` to ``high``) used: a column's codes
        are much the same from chunk to chunk, so that after the first few none or a
        couple are new (:func:`_mark_codes`)."""
        if high >= len(self.used):
            self.used = np.concatenate((self.used, np.zeros(high + 1 - len(self.used), bool)))
        _mark_codes(self.used, values, low, high)


def _mark_codes(used: np.ndarray, codes: np.ndarray, low: int, high: int) -> None:
    """Mark in ``used`` (which has room for ``high``) the codes among ``codes`` (-1 for
    null; from ``low`` to ``high``). The two ends are there; between them only the
    codes not marked yet are looked for: a few each by a comparison of the codes, more
    counted, every code (some 40 times what a comparison costs)."""
    if high < 0:  # (all null)
        return
    used[high] = True
    if low >= 0:
        used[low] = True
    first = max(low, -1) + 1
    unseen = np.flatnonzero(~used[first:high]) + first
    if len(unseen) > _LOOKED_FOR:
        present = _present(codes)
        used[: len(present)] |= present[: len(used)]
    else:
        for code in unseen.tolist():
            if (codes == code).any():
                used[code] = True


def _present(codes: np.ndarray) -> np.ndarray:
    """Per code from 0 up, whether it is among ``codes`` (-1 for null)."""
    if codes.dtype.itemsize < 4:  # counted as unsigned: null (-1) counts past the codes
        # (in the upper half, where no code of a signed type is)
        unsigned = codes.view(f"u{codes.dtype.itemsize}")
        width = np.iinfo(unsigned.dtype).max + 1
        counts = np.zeros(width, dtype=np.int64)
        for start in range(0, len(codes), _COUNTED):  # (bincount widens what it counts)
            counts += np.bincount(unsigned[start : start + _COUNTED], minlength=width)
        return counts[: width // 2] > 0
    return np.bincount(codes + np.intp(1))[1:] > 0  # (null counts first)


#: Codes not marked yet that :func:`_mark_codes` looks for one by one (more: counted).
#: A comparison of 64 k codes of a byte (as most columns keep them) takes some 4 us,
#: counting them some 180 us: a column of commands has a dozen codes or so between
#: those it holds that no chunk has held yet.
_LOOKED_FOR = 32
#: Codes counted at a time.
_COUNTED = 1 << 16


#: :meth:`_Growing.put` looks for the pages that hold values not null where at most
#: one in this many is (more: most pages would be written, each by a fault of its own).
_SPARSE = 4

#: pandas' NaT as int64 nanoseconds.
_NAT = np.iinfo(np.int64).min
#: Rows a column has room for at first (in an array of numpy's: small tables stay
#: there).
_FIRST_CAPACITY = 1 << 12


class _Buffer:
    """The columns of a table's rows (since the last row group, with a sink), each
    growing as rows come.

    A column is, by kind: a :class:`_Growing` array of the kind's storage type (never
    null); a pair of them, values and null mask (nullable numbers and times);
    vocabulary codes, -1 for null, in the narrowest integer type that holds them so far
    (categories); :class:`_Texts` (text: mostly null, or whole Arrow arrays of it).

    ``sparse``: the values of nullable numbers are written only in the pages that hold
    some not null (:meth:`_Growing.put`), the others left zeros. Not for a buffer cut
    into row groups: its batches' bytes stay those of a part that is a row group of its
    own (:func:`_held`), to the last (under nulls too).
    """

    def __init__(self, schema: TableSchema, vocabularies: dict[str, Vocabulary],
                 sparse: bool = False) -> None:
        self.schema = schema
        self.vocabularies = vocabularies
        self.sparse = sparse
        self.columns: dict[str, Any] = {}
        for column in schema.columns:
            kind = column.kind
            if kind == TEXT:
                self.columns[column.name] = _Texts({}, [])
            elif kind in (ELEMENTS, STRINGS):
                self.columns[column.name] = {}
            elif kind == CATEGORY:
                self.columns[column.name] = _Codes()
            elif kind in _NULLABLE or kind == TIME:
                self.columns[column.name] = (_Growing(_STORAGE[kind]), _Growing(np.bool_))
            else:
                self.columns[column.name] = _Growing(_STORAGE[kind])
        self.rows = 0

    def append(self, rows: int, columns: dict[str, Any]) -> None:
        """Add ``rows`` rows: a part per column (text: a dict by row of the part, or an
        Arrow string array of its every row, or :class:`_Texts`)."""
        if not rows:
            return
        for column in self.schema.columns:
            part = columns[column.name]
            mine = self.columns[column.name]
            if column.kind == TEXT:
                mine.add(self.rows, part)
            elif column.kind in (ELEMENTS, STRINGS):
                mine.update({self.rows + row: values for row, values in part.items()})
            elif isinstance(mine, tuple):
                values, valid = part if isinstance(part, tuple) else (part, None)
                if valid is None:
                    mine[0].extend(values)
                elif self.sparse and column.kind != TIME:  # (a frame writes NaT over
                    # every null time: its pages are written all the same)
                    mine[0].put(values, valid)
                elif valid.any() or not mine[0].skip(rows):
                    mine[0].extend(values)
                if valid is None or valid.all():  # (a mask is False, zero, where valid)
                    if not mine[1].skip(rows):
                        mine[1].reserve(rows)[:] = False
                else:
                    np.logical_not(valid, out=mine[1].reserve(rows))
            else:
                mine.extend(part)
        self.rows += rows

    def view(self, name: str, first: int = 0) -> Any:
        """Column ``name`` from row ``first`` on, as views of its arrays (text:
        :class:`_Texts`)."""
        column = self.columns[name]
        if isinstance(column, _Texts):
            return column.since(first)
        if isinstance(column, dict):
            return {row - first: v for row, v in column.items() if row >= first}
        if isinstance(column, tuple):
            return column[0].view(first), column[1].view(first)
        return column.view(first)

    def batch(self, first: int = 0) -> pa.RecordBatch:
        """The rows from ``first`` on as an Arrow record batch."""
        rows = self.rows - first
        arrays = [_array(self.view(c.name, first), c.kind, self.schema.arrow.field(c.name),
                         rows, self._strings(c.name, first)) for c in self.schema.columns]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema.arrow)

    def frame(self, first: int = 0) -> pd.DataFrame:
        """The rows from ``first`` on as a pandas DataFrame, with the dtypes of the
        schema: its number columns are views of these (memory holds the rows once)."""
        import pandas as pd  # (here: the batches alone, for files and lines, need none)

        dtypes = self.schema.dtypes
        rows = self.rows - first
        columns: dict[str, Any] = {}
        nones: pd.Series | None = None
        for c in self.schema.columns:
            view = self.view(c.name, first)
            if c.kind in (ELEMENTS, STRINGS) and not view:
                # Columns of None only (as good as always) share one array: its pages
                # are the costly part (8 bytes a row, handed out by the system), and a
                # write to one column copies it first (pandas' copy on write).
                if nones is None:
                    nones = pd.Series(np.empty(rows, dtype=object), dtype=object, copy=False)
                    columns[c.name] = nones
                else:
                    columns[c.name] = nones.copy(deep=False)
                continue
            columns[c.name] = _series(view, c.kind, dtypes[c.name], rows,
                                      self._strings(c.name, first))
        return pd.DataFrame(columns, copy=False)

    def _strings(self, name: str, first: int) -> _Strings | None:
        """What names the codes of category column ``name`` from row ``first`` on."""
        vocabulary = self.vocabularies.get(name)
        if vocabulary is None:
            return None
        return _Strings(vocabulary, self.columns[name].used if first == 0 else None)

    def tail(self, first: int) -> _Buffer:
        """A buffer of copies of the rows from ``first`` on."""
        other = _Buffer(self.schema, self.vocabularies, self.sparse)
        parts = {name: self.view(name, first) for name in self.columns}
        for name, part in parts.items():
            if isinstance(part, tuple) and not isinstance(part, _Texts):  # (values, nulls)
                # to (values, valid)
                parts[name] = part[0], ~part[1]
        other.append(self.rows - first, parts)
        return other


def _part_batch(schema: TableSchema, vocabularies: dict[str, Vocabulary], rows: int,
                columns: dict[str, Any]) -> pa.RecordBatch:
    """A record batch of the ``rows`` rows of a part (what :meth:`_Buffer.append`
    takes), the same as a buffer given the part alone would make, but made of the part
    as it is: its numbers are not copied into growing columns first (memory maps made,
    their pages handed out, for one batch), nor its category codes counted as they are
    (the batch's dictionaries count them once)."""
    arrays = []
    for column in schema.columns:
        part = columns[column.name]
        kind = column.kind
        strings = None
        if kind == TEXT:
            view: Any = _Texts({}, [])
            view.add(0, part)
        elif kind in (ELEMENTS, STRINGS):
            view = part
        elif kind == CATEGORY:
            view = part
            strings = _Strings(vocabularies[column.name], None)
        elif kind in _NULLABLE or kind == TIME:
            view = _held(part, np.dtype(_STORAGE[kind]), rows)
        else:
            view = part.astype(_STORAGE[kind], copy=False)
        arrays.append(_array(view, kind, schema.arrow.field(column.name), rows, strings))
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow)


def _held(part: Any, dtype: np.dtype, rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A nullable column's part as a buffer holds it: values and null mask (None: no
    nulls). The values of a part without any are zeros, as a buffer's are (not
    written: :meth:`_Growing.skip`, past its first rows), so that a batch's bytes are
    those a buffer makes, to the last."""
    values, valid = part if isinstance(part, tuple) else (part, None)
    if valid is None or valid.all():
        return values.astype(dtype, copy=False), None
    if rows > _FIRST_CAPACITY and not valid.any():
        values = np.zeros(rows, dtype)
    return values.astype(dtype, copy=False), ~valid


class _Texts(NamedTuple):
    """A text column: strings by row where few rows have one, and Arrow string arrays
    (every row of a part, nulls where none) where most do. A part is one or the other."""

    #: Text by row.
    sparse: dict[int, str]
    #: (first row, strings of that row and the next ones).
    dense: list[tuple[int, pa.Array]]

    def add(self, first: int, part: dict[int, str] | pa.Array | _Texts) -> None:
        """Add a part whose rows start at row ``first``."""
        if isinstance(part, pa.Array):
            self.dense.append((first, part))
        elif isinstance(part, _Texts):
            self.add(first, part.sparse)
            self.dense.extend((first + start, array) for start, array in part.dense)
        else:
            self.sparse.update({first + row: text for row, text in part.items()})

    def since(self, first: int) -> _Texts:
        """The rows from ``first`` on, numbered from 0."""
        if not first:
            return self
        dense = []
        for start, array in self.dense:
            if start + len(array) > first:
                cut = max(0, first - start)
                dense.append((start + cut - first, array.slice(cut)))
        return _Texts({row - first: text for row, text in self.sparse.items() if row >= first},
                      dense)


class _Strings(NamedTuple):
    """The vocabulary of a category column's codes, and which of them it holds (None:
    to be counted)."""

    vocabulary: Vocabulary
    used: np.ndarray | None


def _series(column: Any, kind: str, dtype: Any, rows: int, strings: _Strings | None) -> Any:
    """A pandas array of a column's view (see :meth:`_Buffer.view`)."""
    import pandas as pd

    if kind in (ELEMENTS, STRINGS):  # numpy arrays in objects, as Arrow gives pandas
        # (numpy fills a new object array with None; in a Series of that dtype already,
        # pandas takes it as it is, where it would look at each object of an array)
        objects = (np.empty(rows, dtype=object) if not column
                   else _elements(column, rows, kind).to_pandas().to_numpy())
        return pd.Series(objects, dtype=object, copy=False)
    if kind == TEXT:  # mostly null: Arrow makes it, pandas keeps it (its parts as they are)
        return pd.array(pa.chunked_array(_text_parts(column, rows), pa.large_string()),
                        dtype=dtype)
    if kind == CATEGORY:
        indexes, ordering = _used(column, strings)
        words = ordering.shown
        # (Arrow gives an empty dictionary object categories: the same here)
        return pd.Categorical.from_codes(indexes, pd.Index(words, dtype="str" if words
                                                           else object), validate=False)
    if kind == TIME:
        # A view of the nanoseconds, NaT for null (the hook through which pyarrow gives
        # pandas its times: anything else copies, and converts).
        values, nulls = column
        if nulls.any():
            values[nulls] = _NAT
        return dtype.__from_arrow__(pa.Array.from_buffers(
            pa.timestamp("ns", dtype.tz), len(values), [None, pa.py_buffer(values)]))
    if kind in _NULLABLE:
        return getattr(pd.arrays, _NULLABLE[kind])(*column)
    return column.astype(dtype, copy=False)


def _array(column: Any, kind: str, field: pa.Field, rows: int, strings: _Strings | None
           ) -> pa.Array:
    """An Arrow array of a column's view (see :meth:`_Buffer.view`)."""
    if kind == TEXT:
        return _text(column, rows)
    if kind in (ELEMENTS, STRINGS):
        return _elements(column, rows, kind)
    if kind == CATEGORY:
        return _dictionary(column, strings)
    if isinstance(column, tuple):
        values, nulls = column
        return _with_nulls(field.type, values, nulls)
    return pa.array(column, field.type)


def _with_nulls(kind: pa.DataType, values: np.ndarray, nulls: np.ndarray | None) -> pa.Array:
    """An Arrow array of type ``kind`` of ``values`` (numbers of its width), null where
    ``nulls`` (None: nowhere). Its validity bits are packed by numpy: pyarrow's own
    conversion of a mask takes some 40 times as long (100 us for 32 k rows)."""
    values = np.ascontiguousarray(values)
    validity = None
    null_count = 0 if nulls is None else int(np.count_nonzero(nulls))
    if null_count:
        validity = pa.py_buffer(np.packbits(np.logical_not(nulls), bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)],
                                 null_count)


#: The numpy type each kind's numbers are kept in (categories: :func:`_narrow`).
_STORAGE = {INT64: np.int64, UINT32: np.uint32, NINT64: np.int64, NUINT32: np.uint32,
            NUINT16: np.uint16, FLOAT: np.float64, TIME: np.int64, BOOL: np.bool_}


def _narrow(codes: np.ndarray) -> np.ndarray:
    """Vocabulary codes (-1 for null) in the narrowest integer type that holds them."""
    top = int(codes.max()) if len(codes) else 0
    narrowest = next(t for t in (np.int8, np.int16, np.int32) if top <= np.iinfo(t).max)
    return codes.astype(narrowest, copy=False)


#: pandas' masked arrays of the nullable number kinds (the rest: plain numpy), by name
#: in ``pandas.arrays``.
_NULLABLE = {FLOAT: "FloatingArray", NINT64: "IntegerArray", NUINT32: "IntegerArray",
             NUINT16: "IntegerArray"}


def _elements(elements: dict[int, Any], rows: int, kind: str) -> pa.LargeListArray:
    """A list column of ``rows`` rows, null but where ``elements`` has an array (of
    numbers, or a list of strings, by ``kind``)."""
    if not elements:  # (as good as always: no offsets of rows that have none)
        return pa.nulls(rows, arrow_type(kind))
    where = np.sort(np.fromiter(elements, np.int64, len(elements)))
    lengths = np.zeros(rows + 1, dtype=np.int64)
    valid = np.zeros(rows, dtype=bool)
    parts = [elements[row] for row in where.tolist()]
    lengths[where + 1] = [len(part) for part in parts]
    valid[where] = True
    if kind == ELEMENTS:
        values = pa.array(np.concatenate(parts).astype(np.float64) if parts else np.zeros(0))
    else:
        values = pa.array([text_form(t) for part in parts for t in part], pa.large_string())
    return pa.LargeListArray.from_arrays(pa.array(np.cumsum(lengths)), values,
                                         mask=pa.array(~valid))


def _text(texts: dict[int, str] | _Texts, rows: int) -> pa.LargeStringArray:
    """A string column of ``rows`` rows: the sparse strings (:func:`_sparse_text`)
    between the dense parts of :class:`_Texts`."""
    if isinstance(texts, dict) or not texts.dense:
        return _sparse_text(texts if isinstance(texts, dict) else texts.sparse, rows)
    # One array made of the parts, always: its bytes are then exactly those its offsets
    # use (a part may hold more: output reads the bytes of a batch's strings as such).
    pieces = _text_parts(texts, rows)
    joined = (pieces[0] if len(pieces) == 1 and _compact(pieces[0])
              else pa.concat_arrays(pieces))
    texts.dense[:] = [(0, joined)]  # kept as the one part it now is (the bytes once)
    return joined


def _compact(texts: pa.LargeStringArray) -> bool:
    """Whether the bytes of a string array are exactly those its offsets use (an array
    made of buffers, as the ``fields`` column is: not copied again)."""
    _, offsets, data = texts.buffers()
    if offsets is None:
        return False
    bounds = np.frombuffer(offsets, np.int64)
    return (texts.offset == 0 and len(bounds) > len(texts) and bounds[0] == 0
            and bounds[len(texts)] == (0 if data is None else data.size))


def _text_parts(texts: dict[int, str] | _Texts, rows: int) -> list[pa.LargeStringArray]:
    """A string column of ``rows`` rows as consecutive parts: the sparse strings
    (:func:`_sparse_text`) between the dense parts of :class:`_Texts`. The parts of
    :class:`_Texts` become these (a frame's column wraps them as they are: not copied
    into one array, and the bytes held once)."""
    if isinstance(texts, dict):
        return [_sparse_text(texts, rows)]
    if not texts.dense:
        return [_sparse_text(texts.sparse, rows)]
    sparse = texts.sparse
    keys = np.sort(np.fromiter(sparse, np.int64, len(sparse)))
    pieces = []
    done = 0

    def between(end: int) -> None:  # the sparse rows from ``done`` to ``end``
        if end > done:
            low, high = np.searchsorted(keys, (done, end))
            pieces.append(_sparse_text({row - done: sparse[row]
                                        for row in keys[low:high].tolist()}, end - done))

    for start, array in sorted(texts.dense, key=lambda part: part[0]):
        between(start)
        pieces.append(array.cast(pa.large_string()))
        done = start + len(array)
    between(rows)
    starts = np.cumsum([0] + [len(piece) for piece in pieces[:-1]]).tolist()
    texts.dense[:] = list(zip(starts, pieces, strict=True))
    texts.sparse.clear()
    return pieces


def _sparse_text(texts: dict[int, str], rows: int) -> pa.LargeStringArray:
    """A string column of ``rows`` rows, null but where ``texts`` has one: built from
    its buffers (offsets, bytes, validity), so that the nulls cost nothing each (and a
    column of nulls nothing at all: zeroed buffers, pages the system has not given yet)."""
    if not texts:
        return pa.LargeStringArray.from_buffers(
            rows, pa.py_buffer(np.zeros(rows + 1, dtype=np.int64)), pa.py_buffer(b""),
            pa.py_buffer(np.zeros(-(-rows // 8), dtype=np.uint8)), rows)
    where = np.fromiter(texts, np.int64, len(texts))
    data = [text_form(text).encode() for text in texts.values()]
    lengths = np.zeros(rows + 1, dtype=np.int64)
    lengths[where + 1] = np.fromiter(map(len, data), np.int64, len(data))
    order = np.argsort(where, kind="stable")
    valid = np.zeros(rows, dtype=bool)
    valid[where] = True
    return pa.LargeStringArray.from_buffers(
        rows, pa.py_buffer(np.cumsum(lengths)),
        pa.py_buffer(b"".join([data[i] for i in order.tolist()])),
        pa.py_buffer(np.packbits(valid, bitorder="little")), int(rows - len(texts)))


def _used(codes: np.ndarray, strings: _Strings) -> tuple[np.ndarray, _Ordering]:
    """Vocabulary codes as indexes into the strings used, sorted (so that a capture
    gives the same files however its records were chunked), and those strings."""
    vocabulary = strings.vocabulary
    size = len(vocabulary.values)
    used = (np.flatnonzero(strings.used) if strings.used is not None
            else _codes_in(codes, size))
    ordering = _ordering(vocabulary, used)
    renumber = ordering.renumber
    if ordering.same and codes.dtype == renumber.dtype:  # (as the codes of a vocabulary
        # met in sorted order are: PV names numbered alike, a protocol, the transports)
        return codes, ordering
    if renumber.dtype.type is np.int8 and (codes.dtype.itemsize == 1 or size <= 128):
        # Bytes to bytes: a translation table, some times faster than indexing (wider
        # codes of a vocabulary of so few strings narrowed first: still three times).
        table = np.zeros(256, dtype=np.int8)
        table[: min(size, 128)] = renumber[: min(size, 128)]
        table[255] = -1
        narrow = codes if codes.dtype.itemsize == 1 else codes.astype(np.int8)
        translated = bytearray(narrow.view(np.uint8).data).translate(table.tobytes())
        return np.frombuffer(translated, np.int8), ordering
    return np.take(renumber, codes), ordering  # (a take: half the time of renumber[codes])


def _codes_in(codes: np.ndarray, size: int) -> np.ndarray:
    """Which of the codes from 0 to ``size - 1`` are among ``codes``, in order
    (:func:`_mark_codes`, nothing marked before)."""
    if not len(codes):
        return np.zeros(0, dtype=np.intp)
    low, high = int(codes.min()), int(codes.max())
    used = np.zeros(max(high + 1, 0), dtype=bool)
    _mark_codes(used, codes, low, high)
    return np.flatnonzero(used[:size])


class _Ordering(NamedTuple):
    """The strings of a set of a vocabulary's codes, sorted (see :func:`_ordering`)."""

    #: Each code's index among them (-1 for the rest, and at the end for null).
    renumber: np.ndarray
    #: The strings, as written.
    shown: list[str]
    #: The same as an Arrow array (a batch's dictionary).
    dictionary: pa.Array
    #: Whether each code is its own index (the codes used are all the vocabulary's,
    #: already in order): the codes then need no renumbering.
    same: bool


#: Per vocabulary, the orderings of the sets of its strings used lately, by set.
_ORDERINGS: weakref.WeakKeyDictionary[Vocabulary, dict[tuple[int, bytes], _Ordering]] = (
    weakref.WeakKeyDictionary())
#: Orderings kept per vocabulary (the batches of a stream use much the same strings).
_KEPT_ORDERINGS = 8


def _ordering(vocabulary: Vocabulary, used: np.ndarray) -> _Ordering:
    """For the codes ``used`` of ``vocabulary``: each code's index among them sorted by
    their strings (in the narrowest type that holds them, as pandas keeps categorical
    codes; -1 for the rest, and at the end for null), and those strings as written.
    Kept for the sets used lately: every batch of a stream would sort them again."""
    key = (len(vocabulary.values), used.tobytes())
    kept = _ORDERINGS.setdefault(vocabulary, {})
    found = kept.get(key)
    if found is not None:
        return found
    words = vocabulary.values
    order = sorted(used.tolist(), key=words.__getitem__)
    narrowest = next(t for t in (np.int8, np.int16, np.int32) if len(order) < np.iinfo(t).max)
    renumber = np.full(len(words) + 1, -1, dtype=narrowest)  # [-1] stays -1
    renumber[order] = np.arange(len(order), dtype=np.int32)
    shown = [text_form(words[i]) for i in order]
    if len(set(shown)) < len(shown):  # two strings of one text form (the byte 0xff, and
        # the text "\xff"): one category, as a category column cannot name two alike
        distinct = sorted(set(shown))
        position = {word: index for index, word in enumerate(distinct)}
        renumber[order] = [position[word] for word in shown]
        shown = distinct
    if len(kept) >= _KEPT_ORDERINGS:
        del kept[next(iter(kept))]
    same = len(order) == len(words) and bool(
        (renumber[:-1] == np.arange(len(words), dtype=renumber.dtype)).all())
    found = kept[key] = _Ordering(renumber, shown, pa.array(shown, pa.string()), same)
    return found


def _dictionary(codes: np.ndarray, strings: _Strings) -> pa.DictionaryArray:
    """Vocabulary codes as a dictionary array of the strings used, sorted."""
    indexes, ordering = _used(codes, strings)
    # (widened by numpy first: Arrow's own conversion of narrow ints costs twice that;
    # not checked against the dictionary by Arrow, as they are its indexes or null:
    # a check took some 15 us a column of a batch, a third of the rest)
    return pa.DictionaryArray.from_arrays(
        _with_nulls(pa.int32(), indexes.astype(np.int32), indexes < 0), ordering.dictionary,
        safe=False)


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
        self._buffer = _Buffer(self.schema, self._vocabularies, sparse=sink is None)

    def columns(self, chunk: Chunk) -> tuple[int, dict[str, Any]]:
        """The number of rows ``chunk`` adds, and a part per column."""
        raise NotImplementedError

    def update(self, chunk: Chunk) -> None:
        buffer = self._buffer
        rows, columns = self.columns(chunk)
        if self.sink is not None and not buffer.rows and rows >= self.row_group_rows:
            # A row group of its own (a stream's every chunk): a batch made of the part
            # as it is, not of a buffer that it would be copied into and sent at once.
            self.sink(self.schema.name, _part_batch(self.schema, self._vocabularies, rows,
                                                    columns))
            return
        buffer.append(rows, columns)
        if self.sink is not None:
            if buffer.rows >= self.row_group_rows:
                self._emit()
        elif self.keep_rows is not None and buffer.rows >= self.keep_rows + max(
                self.keep_rows, self.row_group_rows):  # the rows shown, and as many more
            self._buffer = buffer.tail(buffer.rows - self.keep_rows)

    def finish(self) -> None:
        """Send the rows still buffered (the capture ended)."""
        if self.sink is not None and self._buffer.rows:
            self._emit()

    def table(self, name: str) -> pa.Table:
        """The rows kept so far (with a sink: not sent yet), as an Arrow table."""
        return pa.Table.from_batches([self._buffer.batch(self._first_kept())],
                                     self.schema.arrow)

    def frame(self) -> pd.DataFrame:
        """:meth:`table` as a pandas DataFrame, made without Arrow (see the module)."""
        return self._buffer.frame(self._first_kept())

    def _first_kept(self) -> int:
        """The first row to show: exactly the newest ``keep_rows``."""
        rows = self._buffer.rows
        return 0 if self.keep_rows is None else max(0, rows - self.keep_rows)

    def _emit(self) -> None:
        buffer = self._buffer
        self._buffer = _Buffer(self.schema, self._vocabularies)
        self.sink(self.schema.name, buffer.batch())
