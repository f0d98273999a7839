"""Where the TUI's records come from (tui.source): whatever the source, a block of
frames at a time through the bulk reader, and no row later than the commit interval
allows once its frame is due (a file at its pace) or handed over (live)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from builders import OWN_CAPTURES, capture
from entry_points import RingStandIn, file_frames

import shark
import tui.source
from shark.capture.files import read_blocks, read_frames
from shark.extract.record import UPDATES
from tui.model import Model
from tui.source import COMMIT_INTERVAL, FileSource, LiveSource


def _monitors() -> Path:
    """The corpus' 100 Hz monitors capture (the test skips, saying why, without it)."""
    return capture("ca_monitors_100hz.pcap")


def _channels(model: Model) -> list[tuple[str, int]]:
    return sorted((row.pv, row.updates) for row in model.channels.values())


def _updates_in_bulk(model: Model) -> list[int]:
    """A list that grows with the rows of each update batch handed to ``model``."""
    seen: list[int] = []
    add_batch = model.add_batch

    def spy(records: list, batches: tuple = ()) -> None:
        seen.extend(len(r) for r in records if r.kind is UPDATES)
        add_batch(records, batches)

    model.add_batch = spy  # type: ignore[method-assign]
    return seen


def test_part_of_a_block_is_its_frames() -> None:
    block = next(read_blocks(_monitors(), 50))
    part = block.part(10, 20)
    assert [(f.number, f.time_ns, bytes(f.data)) for f in part.frames()] == [
        (f.number, f.time_ns, bytes(f.data)) for f in list(block.frames())[10:20]]


def test_a_file_at_its_pace_is_never_early_and_never_late() -> None:
    """Each message shows once its frame is due, within the commit interval (and some
    slack for a busy machine), not before: the file is cut into blocks where it waits."""
    speed = 4.0
    monitors = _monitors()
    first = next(read_frames(monitors)).time
    due = np.sort([(r.time - first) / speed for r in shark.read(monitors)
                   if r.message is not None])
    model = Model()
    source = FileSource(model, monitors, speed=speed)
    bulk = _updates_in_bulk(model)
    samples = []
    started = time.monotonic()
    source.start()
    while source.is_alive():
        samples.append((time.monotonic() - started, model.messages))
        time.sleep(0.01)
    assert source.error is None and model.messages == len(due)
    for elapsed, shown in samples:
        assert shown <= np.searchsorted(due, elapsed, "right"), "a message came early"
        late = np.searchsorted(due, elapsed - COMMIT_INTERVAL - 0.25, "right")
        assert shown >= late, f"{late - shown} messages late at {elapsed:.2f} s"
    assert sum(bulk) > 0  # the updates came in batches


def test_paced_and_full_speed_agree() -> None:
    fast, paced = Model(), Model()
    monitors = _monitors()
    FileSource(fast, monitors).run()
    FileSource(paced, monitors, speed=1000.0).run()
    assert paced.messages == fast.messages > 0
    assert _channels(paced) == _channels(fast)


@pytest.mark.parametrize("name", ["ca_monitors_100hz.pcap", "softioc_pyepics_basic.pcap"])
def test_live_source_reads_the_ring_in_bulk(name: str) -> None:
    """What the kernel hands over goes to the bulk reader as it is, and the rows come
    out as from the file, monitor updates in batches."""
    path = OWN_CAPTURES / name if (OWN_CAPTURES / name).is_file() else capture(name)
    expected = Model()
    FileSource(expected, path).run()
    model = Model()
    frames = file_frames(path)
    out = mock.Mock()
    stand_in = functools.partial(RingStandIn, frames=frames, on_empty=out)
    with mock.patch.object(tui.source, "LiveCapture", stand_in):
        source = LiveSource(model, "lo")
    bulk = _updates_in_bulk(model)
    source.start()
    deadline = time.monotonic() + 30
    while not out.called and time.monotonic() < deadline:
        time.sleep(0.01)
    # everything handed over is committed before the source waits for more
    time.sleep(COMMIT_INTERVAL + 0.2)
    assert model.messages == expected.messages
    source.stop()
    source.join(10)
    assert source.error is None and source.stats().frames == len(frames)
    assert _channels(model) == _channels(expected)
    if name.startswith("ca_monitors"):
        assert sum(bulk) > 0

