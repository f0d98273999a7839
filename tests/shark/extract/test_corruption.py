"""One TCP segment of each shared capture corrupted in each of eight ways: every
message outside it is still reported, and the corruption is marked.

The segment is chosen deterministically: among the segments of the busiest circuit
that hold whole CA messages end to end, the middle one. A message outside it is one
completed by another frame (the segment holds whole messages, so none spans it); it
must be read as before, by frame, sender and command. The corruption must leave a
mark the uncorrupted read does not have: a GAP or ERROR record, or an anomaly.
"""

from __future__ import annotations

import collections
import random
import struct
from pathlib import Path

import pytest
from builders import corpus_params, pcap_bytes, real_frames

import shark
from shark.capture.files import Frame
from shark.extract.record import ERROR, GAP, MESSAGE
from shark.extract.resync import whole_messages
from shark.network import packets

KINDS = ("garbage", "lying_size", "unknown_command", "dropped", "short_caplen",
         "header_bitflip", "sequence_back", "sequence_forward")
#: How far the sequence number of a segment is moved back or forward.
SEQUENCE_SHIFT = 100_000
_PCAP_HEADER = 24
_RECORD_HEADER = 16


def _segments(frames: list[tuple[int, bytes]], linktype: int) -> list[tuple[int, packets.Packet]]:
    """(index, packet) of every TCP frame with a payload."""
    decoder = packets.PacketDecoder()
    out = []
    for index, (time_ns, data) in enumerate(frames):
        packet = decoder.decode(Frame(index + 1, time_ns / 1e9, time_ns, linktype,
                                      memoryview(data)))
        if packet is not None and packet.transport == packets.TCP and len(packet.payload):
            out.append((index, packet))
    return out


def _target(frames: list[tuple[int, bytes]], linktype: int) -> tuple[int, packets.Packet] | None:
    """The middle segment of whole messages of the busiest circuit (most segments)."""
    segments = [(i, p) for i, p in _segments(frames, linktype)
                if len(p.payload) >= 16 and whole_messages(p.payload)]
    if not segments:
        return None
    circuits = collections.Counter(frozenset(((p.src, p.sport), (p.dst, p.dport)))
                                   for _, p in segments)
    busiest = max(circuits, key=lambda c: (circuits[c], sorted(c)))
    mine = [s for s in segments
            if frozenset(((s[1].src, s[1].sport), (s[1].dst, s[1].dport))) == busiest]
    return mine[len(mine) // 2]


def _corrupt(kind: str, frames: list[tuple[int, bytes]], index: int,
             packet: packets.Packet) -> tuple[list[tuple[int, bytes]], int | None]:
    """The frames with frame ``index`` corrupted, and for a short caplen the frame's
    original length (to write as its orig_len)."""
    time_ns, data = frames[index]
    payload = bytes(packet.payload)
    at = data.rfind(payload)
    frame = bytearray(data)
    out = list(frames)
    original_length = None
    if kind == "garbage":
        frame[at : at + len(payload)] = random.Random(index).randbytes(len(payload))
    elif kind == "lying_size":
        frame[at + 2 : at + 4] = b"\xff\xf8"
    elif kind == "unknown_command":
        frame[at : at + 2] = struct.pack(">H", 99)
    elif kind == "dropped":
        del out[index]
        return out, None
    elif kind == "short_caplen":
        original_length = len(frame)
        del frame[at + len(payload) // 2 :]
    elif kind == "header_bitflip":
        frame[at + 3] ^= 0x08  # the payload size, by 8 bytes
    else:
        tcp_at = data.rfind(struct.pack(">HHI", packet.sport, packet.dport, packet.seq), 0, at)
        assert tcp_at >= 0
        shift = -SEQUENCE_SHIFT if kind == "sequence_back" else SEQUENCE_SHIFT
        frame[tcp_at + 4 : tcp_at + 8] = struct.pack(">I", (packet.seq + shift) % (1 << 32))
    out[index] = (time_ns, bytes(frame))
    return out, original_length


def _write(path: Path, frames: list[tuple[int, bytes]], linktype: int, index: int,
           original_length: int | None) -> Path:
    data = bytearray(pcap_bytes(frames, linktype, nanoseconds=True))
    if original_length is not None:  # the record says the frame was longer on the wire
        offset = _PCAP_HEADER + sum(_RECORD_HEADER + len(d) for _, d in frames[:index])
        struct.pack_into("<I", data, offset + 12, original_length)
    path.write_bytes(data)
    return path


def _read(path: Path) -> tuple[collections.Counter, collections.Counter]:
    """(messages, marks) of a capture: messages by (frame, sender, command), marks by
    (kind, frame, sender) of GAP and ERROR records and anomalies."""
    messages: collections.Counter = collections.Counter()
    marks: collections.Counter = collections.Counter()
    for record in shark.read(path):
        sender = None if record.sender is None else int(record.sender)
        if record.kind is MESSAGE:
            messages[record.frame, sender, record.message.command] += 1
            if record.anomaly is not None:
                marks["anomaly", record.frame, sender, record.anomaly.kind] += 1
        elif record.kind in (GAP, ERROR):
            marks[record.kind.name, record.frame, sender, record.reason] += 1
    return messages, marks


@pytest.fixture(scope="module")
def originals() -> dict:
    """Per capture, filled on first use by :func:`_original`: read once for its
    eight corruptions."""
    return {}


def _original(path: Path, cache: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A capture's frames, link type, target segment and uncorrupted read (of the same
    frames written the same way as the corrupted ones)."""
    if path not in cache:
        frames, linktype = real_frames(path)
        target = _target(frames, linktype)
        copy = tmp_path_factory.mktemp("original") / "original.pcap"
        _write(copy, frames, linktype, 0, None)
        cache[path] = frames, linktype, target, _read(copy)
    return cache[path]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", corpus_params())
def test_one_corrupted_segment_costs_no_other_message(
        path: Path, kind: str, originals: dict, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    frames, linktype, target, (before, marks_before) = _original(
        path, originals, tmp_path_factory)
    if target is None:
        pytest.skip("no TCP segment of whole CA messages in this capture")
    index, packet = target
    corrupted, original_length = _corrupt(kind, frames, index, packet)
    after, marks_after = _read(_write(tmp_path / "corrupted.pcap", corrupted, linktype, index,
                                      original_length))
    frame = index + 1
    if kind == "dropped":  # the frames after it are numbered one less
        def renumber(key: tuple) -> tuple:
            return (key[0] - 1, *key[1:]) if key[0] > frame else key
        before = collections.Counter({renumber(k): n for k, n in before.items()
                                      if k[0] != frame})
        marks_before = collections.Counter({(k[0], k[1] - 1 if k[1] > frame else k[1], *k[2:]): n
                                            for k, n in marks_before.items()})
    outside = collections.Counter({k: n for k, n in before.items() if k[0] != frame})
    missing = outside - after
    assert not missing, f"{kind} at frame {frame} lost messages outside it: {dict(missing)}"
    new_marks = marks_after - marks_before
    assert new_marks, f"{kind} at frame {frame} left no mark"
