"""Whole Arrow columns asked simple questions, without Python code per row.

Judging messages by their columns (:func:`shark.analysis.problems.problem_mask`, the
filters of :mod:`shark.analysis.filters`) comes down to two questions: which rows of a
string column hold a string that passes a test, and what numbers a numeric column holds.
A string column of the ``messages`` table is dictionary-encoded: a few distinct strings
(commands, statuses, PV names) and an index per row. The test then runs in Python once
per distinct string and its answers are gathered by the indices with numpy; a plain
string column is dictionary-encoded first (by pyarrow, in C). A null never passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Column", "chunks", "numbers", "passing", "string_codes"]

#: A column of a record batch (an array) or of a table (a chunked array).
Column = pa.Array | pa.ChunkedArray


def chunks(column: Column) -> list[pa.Array]:
    """The arrays ``column`` is made of."""
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def string_codes(column: Column) -> tuple[list[str | None], np.ndarray]:
    """(distinct strings, index of each row's among them, -1 for null): the column as
    its dictionary, one dictionary for all its chunks."""
    values: list[str | None] = []
    where: dict[str | None, int] = {}
    parts = []
    for chunk in chunks(column):
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        local = chunk.dictionary.to_pylist()
        remap = np.empty(len(local) + 1, dtype=np.int64)
        remap[-1] = -1
        for i, text in enumerate(local):
            code = where.get(text)
            if code is None:
                code = where[text] = len(values)
                values.append(text)
            remap[i] = code
        indices = chunk.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        parts.append(remap[indices.to_numpy(zero_copy_only=False)])
    codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return values, codes


def passing(column: Column, test: Callable[[str], bool]) -> np.ndarray:
    """Bool per row: whether the row's string passes ``test`` (run once per distinct
    string; never for a null, which does not pass)."""
    values, codes = string_codes(column)
    table = np.zeros(len(values) + 1, dtype=bool)
    for i, text in enumerate(values):
        table[i] = text is not None and bool(test(text))
    return table[codes]


def numbers(column: Column) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) of a numeric or time column: times as int64 (their unit's
    count since 1970), nulls as 0 with ``valid`` False."""
    values, valid = [], []
    for chunk in chunks(column):
        if pa.types.is_timestamp(chunk.type) or pa.types.is_duration(chunk.type):
            chunk = chunk.cast(pa.int64())
        if chunk.null_count:
            valid.append(chunk.is_valid().to_numpy(zero_copy_only=False))
            chunk = pc.fill_null(chunk, 0)
        else:
            valid.append(np.ones(len(chunk), dtype=bool))
        values.append(chunk.to_numpy(zero_copy_only=False))
    if not values:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate(values), np.concatenate(valid)
