"""The pandas metadata of every table's Arrow schema, written without pandas, is what
pyarrow writes for an empty DataFrame of the columns' pandas dtypes: byte for byte."""

from __future__ import annotations

import sys
from importlib import metadata

import pandas as pd
import pyarrow as pa
import pytest

from shark.tables.builder import SCHEMAS
from shark.tables.schema import _PANDAS, TableSchema, _pandas_metadata, _pandas_version


def _made_by_pandas(schema: TableSchema) -> bytes:
    template = pd.DataFrame({
        c.name: pd.Series([], dtype=_PANDAS.get(c.kind, c.kind)) for c in schema.columns
    })
    return pa.Schema.from_pandas(template, preserve_index=False).metadata[b"pandas"]


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_pandas_metadata_as_pyarrow_writes_it(name: str) -> None:
    schema = SCHEMAS[name]
    assert _pandas_metadata(schema.columns) == _made_by_pandas(schema)
    assert schema.arrow.metadata == {b"pandas": _made_by_pandas(schema)}


def test_pandas_version_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version read from the package's metadata, as where pandas is not loaded, is
    pandas' own."""
    _pandas_version.cache_clear()
    monkeypatch.delitem(sys.modules, "pandas")
    try:
        assert _pandas_version() == pd.__version__ == metadata.version("pandas")
    finally:
        _pandas_version.cache_clear()
