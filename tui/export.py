"""Export what the log shows to Parquet, for pandas, polars or DuckDB.

The rows and their types are those of shark's own ``messages`` table
(:mod:`shark.tables`: the columns of ``shark read --format jsonl``, typed, one row per
record), so that an export from the TUI and one from the command line read the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shark.extract.record import Record

__all__ = ["export_parquet"]


def export_parquet(records: Iterable[Record | None], path: str | Path) -> int:
    """Write ``records`` (None items skipped) to ``path`` with
    :meth:`pandas.DataFrame.to_parquet`; the number of rows written. pandas and pyarrow
    are imported here, so that the TUI starts without them."""
    from shark.tables import TableBuilder

    builder = TableBuilder(["messages"])
    builder.extend(record for record in records if record is not None)
    frame = builder.table("messages")
    frame.to_parquet(path, index=False)
    return len(frame)
