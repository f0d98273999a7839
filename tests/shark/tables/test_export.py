"""``shark export``: every table to Parquet and back with the same types in pandas, pyarrow,
polars and DuckDB; Feather and CSV; row groups written while decoding."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from builders import capture, manifest

import shark
from shark.cli import main
from shark.tables import SCHEMAS, TABLES

#: What each column kind is called by polars and DuckDB.
POLARS = {
    "int64": pl.Int64, "uint32": pl.UInt32, "Int64": pl.Int64, "UInt32": pl.UInt32,
    "UInt16": pl.UInt16, "Float64": pl.Float64, "time": pl.Datetime("ns", "UTC"),
    "category": pl.Categorical, "str": pl.String, "bool": pl.Boolean,
    "elements": pl.List(pl.Float64), "strings": pl.List(pl.String),
}
DUCKDB = {
    "int64": "BIGINT", "uint32": "UINTEGER", "Int64": "BIGINT", "UInt32": "UINTEGER",
    "UInt16": "USMALLINT", "Float64": "DOUBLE", "time": "TIMESTAMPTZ_NS",
    "category": "VARCHAR", "str": "VARCHAR", "bool": "BOOLEAN",
    "elements": "DOUBLE[]", "strings": "VARCHAR[]",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[shark.Capture, Path]:
    """Every table of a capture with a bit of everything, small row groups."""
    path = capture("ca_server_restart.pcapng")
    out = tmp_path_factory.mktemp("export") / "tables"
    assert main(["export", str(path), "-o", str(out), "--row-group", "100"]) == 0
    return shark.open(path), out


@pytest.mark.parametrize("name", TABLES)
def test_parquet_round_trip(exported: tuple[shark.Capture, Path], name: str) -> None:
    cap, out = exported
    file = out / f"{name}.parquet"
    expected = cap.table(name)
    assert len(expected) or name == "errors"  # the capture has no errors
    # pandas: the same dtypes and values as in memory.
    back = pd.read_parquet(file)
    assert back.dtypes.equals(expected.dtypes)
    pd.testing.assert_frame_equal(back, expected, check_categorical=False)
    # pyarrow: the table's schema, types and pandas metadata.
    assert pq.read_schema(file).equals(SCHEMAS[name].arrow, check_metadata=True)
    # polars and DuckDB: the types the schema documents.
    kinds = {c.name: c.kind for c in SCHEMAS[name].columns}
    assert dict(pl.read_parquet(file).schema) == {n: POLARS[k] for n, k in kinds.items()}
    relation = duckdb.sql(f"select * from read_parquet('{file}')")
    assert dict(zip(relation.columns, map(str, relation.types), strict=True)) == {
        n: DUCKDB[k] for n, k in kinds.items()}
    assert duckdb.sql(f"select count(*) from '{file}'").fetchall() == [(len(expected),)]
    # And pandas' own writer makes the same dtypes: the schema is what pandas would say
    # (but for an empty category, which pandas writes with no type for its values).
    if len(expected):
        pandas_file = file.with_suffix(".pandas.parquet")
        expected.to_parquet(pandas_file)
        assert pd.read_parquet(pandas_file).dtypes.equals(expected.dtypes)


def test_per_message_tables_are_written_in_row_groups(
        exported: tuple[shark.Capture, Path]) -> None:
    cap, out = exported
    metadata = pq.read_metadata(out / "messages.parquet")
    assert metadata.num_rows == len(cap.messages) > 200
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert len(groups) >= 2 and max(groups) < 200  # a group closes at 100 rows or more


def test_feather_and_csv(tmp_path: Path) -> None:
    path = capture("ca_monitors_100hz.pcap")
    cap = shark.open(path)
    feather = tmp_path / "updates.feather"
    assert main(["export", str(path), "-o", str(feather), "-t", "updates",
                 "--row-group", "200"]) == 0
    back = pd.read_feather(feather)  # one dictionary per column, grown batch by batch
    assert back.dtypes.equals(cap.updates.dtypes)
    pd.testing.assert_frame_equal(back, cap.updates, check_categorical=False)
    assert main(["export", str(path), "-o", str(tmp_path / "csv"), "-f", "csv",
                 "-t", "messages", "-t", "subscriptions"]) == 0
    messages = pd.read_csv(tmp_path / "csv" / "messages.csv")
    assert len(messages) == manifest(path)["message_counts_by_command"]["total_ca_messages"]
    assert list(messages.columns) == list(SCHEMAS["messages"].names)
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "messages.csv", "subscriptions.csv"]


def test_one_file_holds_the_messages(tmp_path: Path) -> None:
    """``-o FILE`` without ``-t`` writes the messages table (as the README shows), and
    the file's folder is made when missing."""
    path = capture("ca_basic_default_port.pcap")
    out = tmp_path / "new" / "out.parquet"
    assert main(["export", str(path), "-o", str(out)]) == 0
    back = pd.read_parquet(out)
    assert len(back) == manifest(path)["message_counts_by_command"]["total_ca_messages"]
    assert list(back.columns) == list(SCHEMAS["messages"].names)


def test_an_output_that_cannot_be_written(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_basic_default_port.pcap")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["export", str(path), "-o", str(blocker / "out.parquet")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shark: error: ") and "Traceback" not in err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = capture("ca_basic_default_port.pcap")
    assert main(["export", str(path), "-o", str(tmp_path / "all.parquet"),
                 "-t", "messages", "-t", "errors"]) == 2
    assert "several tables go to a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(path), "-o", str(tmp_path / "x"), "-t", "nope"])


def test_damaged_capture_is_exported_as_far_as_it_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = capture("ca_monitors_100hz.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) // 2 + 5])
    out = tmp_path / "messages.parquet"
    assert main(["export", str(cut), "-o", str(out), "-t", "messages"]) == 1
    assert "error" in capsys.readouterr().err
    assert 0 < pq.read_metadata(out).num_rows


def test_csv_times_are_written_as_arrow_writes_them() -> None:
    """iso_times writes what Arrow's own cast (and CSV writer) would, three times
    faster: every second of a wide range, negatives, leap days, nulls."""
    import numpy as np
    import pyarrow as pa

    from shark.tables.files import iso_times

    rng = np.random.default_rng(15)
    ns = np.concatenate([rng.integers(-2**62, 2**62, 20_000),
                         np.array([0, -1, 951_782_400_000_000_000, 4_102_444_799_999_999_999])])
    times = pa.array(ns, pa.timestamp("ns", "UTC"), mask=rng.random(len(ns)) < 0.1)
    assert iso_times(times).to_pylist() == times.cast(pa.string()).to_pylist()
