"""The frame pump (shark.capture.pump) over a stand-in for the kernel ring: frames one by
one or in the blocks the ring hands over, each saved, ``on_idle`` before every wait."""

from __future__ import annotations

from pathlib import Path

from builders import OWN_CAPTURES
from entry_points import RingStandIn, file_frames

from shark.capture.files import FrameBlock, read_frames
from shark.capture.pump import FramePump
from shark.capture.writer import PcapngWriter

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


def _key(frames: list) -> list[tuple[int, int, int, bytes]]:
    return [(f.number, f.time_ns, f.linktype, bytes(f.data)) for f in frames]


def _pump(frames: list, writer: PcapngWriter | None = None) -> tuple[FramePump, list[int]]:
    """A pump over ``frames`` that stops once they are out, and how many frames had come
    out at each ``on_idle``."""
    pump: FramePump
    ring = RingStandIn("lo", frames=frames, on_empty=lambda: pump.stop())
    idle: list[int] = []
    pump = FramePump(ring, writer, on_idle=lambda: idle.append(pump.frames))  # type: ignore[arg-type]
    return pump, idle


def test_blocks_are_what_the_ring_hands_over(tmp_path: Path) -> None:
    frames = file_frames(BASIC)
    out = tmp_path / "saved.pcapng"
    writer = PcapngWriter(out)
    writer.add_interface(frames[0].linktype, "lo", 65535)
    pump, idle = _pump(frames, writer)
    blocks = list(pump.blocks())
    writer.close()
    assert all(type(block) is FrameBlock for block in blocks)
    assert [len(block) for block in blocks[:-1]] == [RingStandIn.BATCH] * (len(blocks) - 1)
    assert _key([f for block in blocks for f in block.frames()]) == _key(frames)
    assert (pump.frames, pump.bytes) == (len(frames), sum(len(f.data) for f in frames))
    # before each read of the ring: once per block and once more to find it empty
    assert idle[: len(blocks) + 1] == [RingStandIn.BATCH * n for n in range(len(blocks))] + [
        len(frames)]
    assert _key(list(read_frames(out))) == _key(frames)


def test_frames_one_by_one() -> None:
    frames = file_frames(BASIC)
    pump, _ = _pump(frames)
    assert _key(list(pump)) == _key(frames)
