"""The ``raw`` column: each row's message bytes, as the records of the same capture
have them, whether the rows came from records or from batches of updates."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from builders import ROOT, capture

import shark
from shark.analysis.attribution import read
from shark.tables.stream import MessageStream

BASIC = ROOT / "captures" / "softioc_pyepics_basic.pcap"


def expected(path: Path, lifecycle: bool) -> list[tuple[int, bytes | None]]:
    return [(r.frame, None if r.message is None else r.message.to_bytes())
            for r in shark.read(path, lifecycle=lifecycle)]


def rows(batches: list[pa.RecordBatch]) -> list[tuple[int, bytes | None]]:
    table = pa.Table.from_batches(batches)
    return list(zip(table.column("frame").to_pylist(), table.column("raw").to_pylist(),
                    strict=True))


@pytest.mark.parametrize("name", ["softioc_pyepics_basic.pcap", "ca_monitors_100hz.pcap"])
@pytest.mark.parametrize("lifecycle", [False, True])
def test_raw_bytes_of_every_row(name: str, lifecycle: bool) -> None:
    path = BASIC if name.startswith("softioc") else capture(name)
    stream = MessageStream.of_capture(path, lifecycle=lifecycle, rows=100, raw=True)
    batches = list(stream)
    assert all(b.schema.names[-1] == "raw" for b in batches)
    assert rows(batches) == expected(path, lifecycle)
    plain = pa.Table.from_batches(MessageStream.of_capture(path, lifecycle=lifecycle, rows=100))
    assert pa.Table.from_batches(batches).drop_columns(["raw"]).to_pylist() == plain.to_pylist()


def test_raw_bytes_taken_a_few_items_at_a_time() -> None:
    path = capture("ca_monitors_100hz.pcap")
    items = list(read(path, lifecycle=True, bulk=True))
    stream = MessageStream((), lifecycle=True, raw=True)
    batches = [b for i in range(0, len(items), 7) for b in stream.take(items[i : i + 7])]
    assert rows(batches) == expected(path, True)
