"""A slice of a capture holds exactly the frames asked for, byte for byte."""

from __future__ import annotations

from pathlib import Path

import dpkt
import numpy as np
from builders import OWN_CAPTURES

from shark.capture.files import read_frames
from shark.capture.slice import write_slice

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


def _dpkt_frames(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as stream:
        return [(t, bytes(data)) for t, data in dpkt.pcapng.Reader(stream)]


def test_slice_holds_the_frames_asked_for(tmp_path: Path) -> None:
    frames = list(read_frames(BASIC))
    wanted = [3, 1, 7, 7, len(frames), len(frames) + 10]  # unsorted, repeated, past the end
    out = tmp_path / "slice.pcapng"
    assert write_slice(BASIC, wanted, out) == 4
    back = list(read_frames(out))
    assert [bytes(f.data) for f in back] == [bytes(frames[n - 1].data)
                                             for n in (1, 3, 7, len(frames))]
    assert [f.time_ns for f in back] == [frames[n - 1].time_ns for n in (1, 3, 7, len(frames))]
    # an independent reader agrees
    assert [data for _, data in _dpkt_frames(out)] == [bytes(f.data) for f in back]


def test_empty_slice_is_a_valid_capture(tmp_path: Path) -> None:
    out = tmp_path / "empty.pcapng"
    assert write_slice(BASIC, np.zeros(0, np.int64), out) == 0
    assert list(read_frames(out)) == []
