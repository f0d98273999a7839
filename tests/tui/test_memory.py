"""What the TUI holds while it shows a capture: no record per channel, no copy of a
spilled batch, a few arrays per channel's latencies, the latencies not read
while the decoder is busy."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from builders import ROOT, capture

import shark
from shark.tables.store import BatchStore

pytest.importorskip("textual")

from tui.latency import ChannelLatencies  # noqa: E402
from tui.log import LogRow  # noqa: E402
from tui.model import Model  # noqa: E402
from tui.panes import Panes  # noqa: E402
from tui.rows import Clock  # noqa: E402
from tui.source import FileSource  # noqa: E402

MONITORS = ROOT / "captures" / "softioc_pyepics_monitors.pcap"


def test_a_file_s_channels_keep_no_record() -> None:
    """Loaded from a file, whose rows all stay in the store, a channel's last value is
    its row of the log; records handed without their rows are kept."""
    model = Model()
    FileSource(model, MONITORS).run()
    rows = [row for row in model.channels.values() if row.updates]
    assert rows and all(row._last is None for row in rows)
    assert all(isinstance(row.last, LogRow) for row in rows)
    plain = Model()
    plain.add_batch(list(shark.read(MONITORS)))
    assert all(row._last is not None for row in plain.channels.values() if row.updates)
    assert sorted((row.pv, row.updates) for row in rows) == sorted(
        (row.pv, row.updates) for row in plain.channels.values() if row.updates)


def test_a_spilled_batch_reads_back_without_a_copy(tmp_path: Path) -> None:
    store = BatchStore(budget=1, directory=tmp_path)  # all but the newest to disk
    values = np.arange(1 << 18, dtype=np.float64)  # 2 MB a batch
    for _ in range(3):
        store.append(pa.record_batch({"value": values}))
    assert store.spilled
    tracemalloc.start()
    try:
        batch, index = store.locate(0)
        rows = [batch for _position, batch in store.batches()]
        grown = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert index == 0 and len(rows) == 3
    assert batch.column("value").to_numpy()[5] == 5.0
    assert grown < 1 << 20  # (a copy would be 2 MB a batch)


def _latency_batch(circuit: int, pv: str, latencies: list[float]) -> pa.RecordBatch:
    return pa.record_batch({
        "circuit": pa.array([circuit] * len(latencies), pa.uint32()),
        "pv": pa.array([pv] * len(latencies)).dictionary_encode(),
        "latency": pa.array(latencies, pa.float64()),
    })


def test_latencies_from_many_batches_stay_a_few_arrays() -> None:
    store = BatchStore(budget=None)
    latencies = ChannelLatencies(store)
    rng = np.random.default_rng(1)
    everything = []
    for _ in range(200):
        some = rng.random(int(rng.integers(1, 5))).tolist()
        everything += some
        store.append(_latency_batch(1, "A", some))
        latencies.update()
    assert len(latencies._parts[(1, "A")]) <= 8
    assert latencies.count(1, "A") == len(everything)
    for q in (50, 99):
        assert latencies.percentile(1, "A", q) == pytest.approx(
            float(np.percentile(everything, q, method="inverted_cdf")))


def test_latencies_are_read_once_the_decoder_is_not_busy() -> None:
    model = Model()
    FileSource(model, capture("ca_two_clients_two_iocs.pcapng")).run()
    busy = [True]
    panes = Panes(model, Clock(), lambda: model.last_time, lambda: busy[0])
    panes.rows("channels", None)
    assert panes.stale and panes.latencies._read == 0
    busy[0] = False
    panes.rows("channels", None)
    assert not panes.stale and panes.latencies._read == model.store.end
    model.store.append(_latency_batch(1, "LATE", [0.5]))
    busy[0] = True
    panes.rows("channels", None)
    assert panes.stale and panes.latencies.percentile(1, "LATE", 50) is None
    busy[0] = False
    panes.rows("channels", None)
    assert not panes.stale and panes.latencies.percentile(1, "LATE", 50) == 0.5


def test_a_closed_channel_keeps_no_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels cleared (and those of a circuit that closed) let go of the records of
    the messages that created, connected and closed them; the Channels pane shows them
    as it would have."""
    from shark.extract.record import Record
    from tui.rows import channel_cells

    basic = ROOT / "captures" / "softioc_pyepics_basic.pcap"

    def shown(model: Model) -> list[list[str]]:
        clock = Clock()
        return sorted([str(cell) for cell in channel_cells(row, clock, model.last_time)]
                      for row in model.channels.values())

    model = Model()
    FileSource(model, basic).run()
    closed = [row.channel for row in model.channels.values()
              if row.channel is not None and row.channel.closed is not None]
    assert closed and all(not isinstance(channel.closed, Record)
                          and not isinstance(channel.connected, Record)
                          and channel.request is None for channel in closed)
    monkeypatch.setattr("tui.model._let_go", lambda channel: None)
    kept = Model()
    FileSource(kept, basic).run()
    assert any(isinstance(row.channel.closed, Record) for row in kept.channels.values()
               if row.channel is not None)
    assert shown(model) == shown(kept)


def test_the_tui_allocates_arrow_memory_from_the_system() -> None:
    """The TUI's process: Arrow's buffers from the system allocator, large blocks
    mapped (glibc's threshold fixed; nothing to do, and no error, elsewhere)."""
    from tui.memory import use_system_pool

    before = pa.default_memory_pool()
    try:
        use_system_pool()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


def test_the_channels_of_a_closed_circuit_keep_no_record() -> None:
    """A server restarted: the channels of its first circuit end with the circuit (no
    CLEAR_CHANNEL), and let go of their records too."""
    from decoder import ChannelState
    from shark.extract.record import Record

    model = Model()
    FileSource(model, capture("ca_server_restart.pcapng")).run()
    channels = [row.channel for row in model.channels.values() if row.channel is not None]
    cut = [channel for channel in channels if channel.state is ChannelState.DISCONNECTED]
    assert cut and all(not isinstance(channel.closed, Record) and channel.request is None
                       for channel in cut)
    assert not model._circuit_channels  # (every circuit ended: nothing kept for one)
