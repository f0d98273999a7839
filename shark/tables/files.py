"""Tables to files: Parquet, CSV or Feather, written a batch at a time.

The Parquet files carry the pandas metadata of :mod:`shark.tables.schema`: pandas reads
back the dtypes of ``shark.open(...).table(name)``, polars and DuckDB the same Arrow
types. Feather is the Arrow IPC file format, which holds one dictionary per column over
the whole file: the batches' dictionaries are merged as they come (the file then grows
them with dictionary deltas).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from shark.tables.builder import SCHEMAS

__all__ = ["EXTENSIONS", "TableFiles", "file_format"]

#: File extension by format.
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "feather": ".feather"}
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".feather": "feather",
            ".arrow": "feather"}


def file_format(path: Path) -> str | None:
    """The format a file name says, if it says one."""
    return _FORMATS.get(path.suffix.lower())


class TableFiles:
    """One file per table, open for writing until :meth:`close`.

    ``write(name, data)`` appends a record batch or a table; it is a sink for
    :class:`shark.tables.TableBuilder`.
    """

    def __init__(self, paths: dict[str, Path], file_format: str) -> None:
        self._files = {name: _File(path, file_format, SCHEMAS[name].arrow)
                       for name, path in paths.items()}

    def write(self, name: str, data: pa.RecordBatch | pa.Table) -> None:
        self._files[name].write(data)

    def close(self) -> None:
        for file in self._files.values():
            file.close()


class _File:
    def __init__(self, path: Path, file_format: str, schema: pa.Schema) -> None:
        self.schema = schema
        self._csv = False
        self._dictionaries: dict[int, _GrowingDictionary] = {}
        if file_format == "parquet":
            import pyarrow.parquet as pq  # (here: ``shark read --format csv`` needs none)

            self._writer = pq.ParquetWriter(path, schema)
        elif file_format == "csv":
            self._csv = True
            self._writer = pa_csv.CSVWriter(path, csv_schema(schema))
        else:
            options = pa.ipc.IpcWriteOptions(compression="lz4", emit_dictionary_deltas=True)
            self._writer = pa.ipc.new_file(path, schema, options=options)
            self._dictionaries = {i: _GrowingDictionary() for i, field in enumerate(schema)
                                  if pa.types.is_dictionary(field.type)}

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if self._dictionaries:
                columns = batch.columns
                for i, dictionary in self._dictionaries.items():
                    columns[i] = dictionary.encode(columns[i])
                batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
            if self._csv:
                batch = csv_batch(batch)
            self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of :func:`csv_batch`'s batches."""
    return pa.schema([pa.field(f.name, pa.string())
                      if pa.types.is_large_list(f.type) or pa.types.is_timestamp(f.type)
                      else f for f in schema], metadata=schema.metadata)


def csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch as CSV can hold it: an array's elements as the text ``[1.5,2,3]`` (the
    JSON of the list; CSV has no lists); times as Arrow's CSV writer writes them
    (``2026-12-06 18:30:00.123456789Z``), but written here (:func:`iso_times`: Arrow
    takes a second a million)."""
    if not any(pa.types.is_large_list(t) or pa.types.is_timestamp(t)
               for t in batch.schema.types):
        return batch
    columns = []
    for array in batch.columns:
        if pa.types.is_timestamp(array.type):
            array = iso_times(array)
        elif pa.types.is_large_list(array.type):
            array = pa.array([None if v is None else json.dumps(
                v, ensure_ascii=False, separators=(",", ":")) for v in array.to_pylist()],
                pa.string()) if array.null_count < len(array) else pa.nulls(len(array),
                                                                              pa.string())
        columns.append(array)
    return pa.RecordBatch.from_arrays(columns, schema=csv_schema(batch.schema))


def iso_times(times: pa.Array) -> pa.Array:
    """Nanosecond UTC times as ISO text (``2026-12-06 18:30:00.123456789Z``), null
    where null: each distinct second of a capture (a few thousand an hour) written once
    by Python's calendar, the nanoseconds by Arrow."""
    ns = times.cast(pa.int64()).fill_null(0).to_numpy()
    seconds, fraction = np.divmod(ns, 1_000_000_000)
    distinct, inverse = np.unique(seconds, return_inverse=True)
    epoch = datetime.datetime(1970, 1, 1)
    heads = pa.array([f"{epoch + datetime.timedelta(seconds=t):%Y-%m-%d %H:%M:%S}."
                      for t in distinct.tolist()], pa.string())
    strings = pc.binary_join_element_wise(
        heads.take(pa.array(inverse.ravel())),
        pc.utf8_lpad(pa.array(fraction).cast(pa.string()), 9, "0"), "Z", "")
    if times.null_count:
        strings = pc.if_else(times.is_valid(), strings, pa.nulls(len(strings), pa.string()))
    return strings


class _GrowingDictionary:
    """A dictionary column's strings over all batches, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def encode(self, column: pa.DictionaryArray) -> pa.DictionaryArray:
        """``column`` re-encoded with the growing dictionary."""
        codes = np.array([self.index.setdefault(word, len(self.index))
                          for word in column.dictionary.to_pylist()] + [0], dtype=np.int32)
        self.values.extend(list(self.index)[len(self.values):])
        nulls = column.indices.is_null().to_numpy(zero_copy_only=False)
        indices = column.indices.fill_null(-1).to_numpy()
        return pa.DictionaryArray.from_arrays(
            pa.array(codes[indices], pa.int32(), mask=nulls), pa.array(self.values, pa.string()))
