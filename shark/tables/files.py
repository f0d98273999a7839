"""Tables to files: Parquet, CSV or Feather, written a batch at a time.

The Parquet files carry the pandas metadata of :mod:`shark.tables.schema`: pandas reads
back the dtypes of ``shark.open(...).table(name)``, polars and DuckDB the same Arrow
types. Feather is the Arrow IPC file format, which holds one dictionary per column over
the whole file: the batches' dictionaries are merged as they come (the file then grows
them with dictionary deltas).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

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
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_large_list(f.type) else f
                      for f in schema], metadata=schema.metadata)


def csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch as CSV can hold it: an array's elements as the text ``[1.5,2,3]`` (the
    JSON of the list; CSV has no lists)."""
    if not any(pa.types.is_large_list(t) for t in batch.schema.types):
        return batch
    columns = []
    for array in batch.columns:
        if pa.types.is_large_list(array.type):
            array = pa.array([None if v is None else json.dumps(
                v, ensure_ascii=False, separators=(",", ":")) for v in array.to_pylist()],
                pa.string()) if array.null_count < len(array) else pa.nulls(len(array),
                                                                              pa.string())
        columns.append(array)
    return pa.RecordBatch.from_arrays(columns, schema=csv_schema(batch.schema))


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
