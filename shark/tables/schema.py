"""The columns of every table and their types, in Arrow and in pandas, defined once.

Each table is an Arrow schema that carries pandas metadata, so that the same bytes give
the same dtypes whichever way they travel: ``to_pandas()`` in memory, or a Parquet file
read back by pandas (which follows the metadata), pyarrow, polars or DuckDB (which follow
the Arrow types). The column kinds:

========== ============================= ======================= =====================
kind       Arrow                         pandas                  polars / DuckDB
========== ============================= ======================= =====================
int64      int64, never null             int64                   Int64 / BIGINT
uint32     uint32, never null            uint32                  UInt32 / UINTEGER
Int64      int64 with nulls              Int64                   Int64 / BIGINT
UInt32     uint32 with nulls             UInt32                  UInt32 / UINTEGER
UInt16     uint16 with nulls             UInt16                  UInt16 / USMALLINT
Float64    float64 with nulls            Float64                 Float64 / DOUBLE
time       timestamp[ns, UTC]            datetime64[ns, UTC]     Datetime(ns, UTC) /
                                                                 TIMESTAMPTZ_NS
category   dictionary<int32, string>     category                Categorical / VARCHAR
str        large_string                  str                     String / VARCHAR
bool       bool, never null              bool                    Boolean / BOOLEAN
elements   large_list<float64>           object (numpy arrays)   List(Float64) /
                                                                 DOUBLE[]
strings    large_list<large_string>      object (numpy arrays)   List(String) /
                                                                 VARCHAR[]
========== ============================= ======================= =====================

Durations (latencies, periods) are Float64 seconds, as in ``shark read --format jsonl``:
Parquet has no duration type that all three readers share.

A time column holds int64 nanoseconds: from 1677-09-22 to 2262-04-11
(:data:`TIME_RANGE`). A damaged capture can give times outside that range; such a time
is null in a time column, never wrapped around (to read back as 1969 or 1970): the
per-message tables keep it in seconds in ``raw_time``, and ``shark stats`` counts them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

from shark.extract.text import text_form

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BOOL", "CATEGORY", "ELEMENTS", "FLOAT", "INT64", "NINT64", "NUINT16", "NUINT32",
    "STRINGS", "TEXT", "TIME", "NO_TIME", "TIME_RANGE", "UINT32", "Column", "TableSchema",
    "arrow_type", "seconds_to_ns",
]

INT64, UINT32, NINT64, NUINT32, NUINT16 = "int64", "uint32", "Int64", "UInt32", "UInt16"
FLOAT, TIME, CATEGORY, TEXT, BOOL = "Float64", "time", "category", "str", "bool"
#: A list per row (an array value's elements), mostly null: of float64, of strings.
ELEMENTS, STRINGS = "elements", "strings"

_ARROW = {
    INT64: pa.int64(), UINT32: pa.uint32(), NINT64: pa.int64(), NUINT32: pa.uint32(),
    NUINT16: pa.uint16(), FLOAT: pa.float64(), TIME: pa.timestamp("ns", "UTC"),
    CATEGORY: pa.dictionary(pa.int32(), pa.string()), TEXT: pa.large_string(),
    # (lists' items named as Parquet names them, so that a file reads back the same)
    BOOL: pa.bool_(), ELEMENTS: pa.large_list(pa.field("element", pa.float64())),
    STRINGS: pa.large_list(pa.field("element", pa.large_string())),
}
#: (a list column reads back from Parquet as numpy arrays in objects, whatever the
#: metadata says: so it is made that way in memory too)
_PANDAS = {TIME: "datetime64[ns, UTC]", ELEMENTS: "object", STRINGS: "object"}
_NEVER_NULL = frozenset((INT64, UINT32, BOOL))
#: What pyarrow's pandas metadata says of an empty column of each kind's pandas dtype:
#: its ``pandas_type``, ``numpy_type`` and ``metadata`` (see :func:`_pandas_metadata`), as
#: pandas 3 and pyarrow 26 say it (tests/shark/tables/test_schema.py tells when the
#: versions installed say otherwise).
_PANDAS_METADATA: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    INT64: ("int64", "int64", None), UINT32: ("uint32", "uint32", None),
    NINT64: ("int64", "Int64", None), NUINT32: ("uint32", "UInt32", None),
    NUINT16: ("uint16", "UInt16", None), FLOAT: ("float64", "Float64", None),
    TIME: ("datetimetz", "datetime64[ns]", {"timezone": "UTC"}),
    CATEGORY: ("categorical", "int8", {"num_categories": 0, "ordered": False}),
    TEXT: ("object", "str", None), BOOL: ("bool", "bool", None),
    ELEMENTS: ("empty", "object", None), STRINGS: ("empty", "object", None),
}


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column kind."""
    return _ARROW[kind]


class Column(NamedTuple):
    name: str
    kind: str
    doc: str


class TableSchema:
    """One table: its name, what a row is, and its columns."""

    def __init__(self, name: str, doc: str, columns: Sequence[Column]) -> None:
        self.name = name
        self.doc = doc
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)

    @cached_property
    def arrow(self) -> pa.Schema:
        """The Arrow schema, with the pandas metadata that gives back the pandas dtypes
        (made when first asked for)."""
        return pa.schema(
            [pa.field(c.name, _ARROW[c.kind], c.kind not in _NEVER_NULL) for c in self.columns],
            metadata={b"pandas": _pandas_metadata(self.columns)},
        )

    @cached_property
    def dtypes(self) -> dict[str, Any]:
        """The pandas dtype of each column, as :meth:`frame` gives them (``category``
        for a category column: its categories are those of each frame)."""
        import pandas as pd

        return {c.name: pd.api.types.pandas_dtype(_PANDAS.get(c.kind, c.kind))
                for c in self.columns}

    def frame(self, table: pa.Table) -> pd.DataFrame:
        """The pandas DataFrame of an Arrow table of this schema."""
        return table.to_pandas()

    def from_rows(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        """A table from Python rows in column order: None for nulls, times as Unix
        seconds, categories and text as str."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(self.columns)
        arrays = [_python_array(c.kind, values) for c, values in zip(self.columns, columns,
                                                                     strict=True)]
        return pa.Table.from_arrays(arrays, schema=self.arrow)

    def empty(self) -> pa.Table:
        return self.arrow.empty_table()

    def describe(self) -> str:
        """The table's documentation: what a row is, then one line per column."""
        width = max(len(c.name) for c in self.columns)
        lines = [f"{self.name}: {self.doc}"]
        lines += [f"  {c.name:<{width}}  {c.kind:<8}  {c.doc}" for c in self.columns]
        return "\n".join(lines)


#: The Unix seconds a time column holds: int64 nanoseconds, whole seconds exact (with
#: room for the fraction at the top).
TIME_RANGE = (-9_223_372_036.0, 9_223_372_035.0)
#: What :func:`seconds_to_ns` gives for seconds outside :data:`TIME_RANGE` (pandas'
#: NaT): a null, never a time.
NO_TIME = np.iinfo(np.int64).min


def seconds_to_ns(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds (float) to int64 nanoseconds, whole seconds kept exact;
    :data:`NO_TIME` for seconds outside :data:`TIME_RANGE` (or NaN)."""
    low, high = TIME_RANGE
    inside = (seconds >= low) & (seconds <= high)
    everywhere = bool(inside.all())
    if not everywhere:
        seconds = np.where(inside, seconds, 0.0)
    whole = np.floor(seconds)
    ns = whole.astype(np.int64) * 1_000_000_000 + np.rint((seconds - whole) * 1e9).astype(
        np.int64)
    if not everywhere:
        ns[~inside] = NO_TIME
    return ns


def _pandas_metadata(columns: Sequence[Column]) -> bytes:
    """The pandas metadata of a table of ``columns``: the bytes pyarrow writes for an
    empty DataFrame of their pandas dtypes (``pa.Schema.from_pandas(frame,
    preserve_index=False)``), written here without pandas, which a command that makes
    no DataFrame (``shark read``, ``shark export``) then never loads (0.15 s of every
    run). A test holds them to pyarrow's, byte for byte."""
    return json.dumps({
        "index_columns": [],
        "column_indexes": [],
        "columns": [{"name": c.name, "field_name": c.name,
                     "pandas_type": _PANDAS_METADATA[c.kind][0],
                     "numpy_type": _PANDAS_METADATA[c.kind][1],
                     "metadata": _PANDAS_METADATA[c.kind][2]} for c in columns],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }).encode("utf8")


@cache
def _pandas_version() -> str:
    """The version of pandas, as the metadata says it, without loading pandas (unless it
    is loaded): from the name of its installed distribution's ``pandas-VERSION.dist-info``
    folder, found on the path as ``importlib.metadata`` would find it, without
    ``importlib.metadata`` itself (20 ms to load, for a name)."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        return pandas.__version__
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        found = [name for name in names
                 if name.startswith("pandas-") and name.endswith(".dist-info")]
        if len(found) == 1:
            return found[0][len("pandas-"):-len(".dist-info")]
        if found:
            break
    from importlib import metadata  # (several, or none: let it decide)

    return metadata.version("pandas")


def _python_array(kind: str, values: Sequence[Any]) -> pa.Array:
    if kind == TIME:
        # None becomes NaN, which (as any time a column cannot hold) becomes null
        ns = seconds_to_ns(np.array(values, dtype=np.float64))
        return pa.array(ns, _ARROW[TIME], mask=ns == NO_TIME)
    if kind == CATEGORY or kind == TEXT:
        texts = pa.array([None if v is None else text_form(v) for v in values], pa.string())
        return texts.dictionary_encode() if kind == CATEGORY else texts.cast(_ARROW[TEXT])
    return pa.array(values, _ARROW[kind])
