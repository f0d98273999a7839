"""Helpers shared by the tests of the shark package: the shared capture corpus,
writers for small synthetic pcap/pcapng files and IP packets built from real ones, and
records picked from a capture or made by hand."""

from __future__ import annotations

import bisect
import itertools
import json
import struct
from collections.abc import Iterable
from pathlib import Path

import pytest

import shark
from decoder import Message, Role
from shark.capture.files import Frame, LinkType, read_frames
from shark.extract.record import MESSAGE, Record, RecordKind
from shark.network import packets

#: The checkout, its own small captures, and the shared corpus beside it.
ROOT = Path(__file__).resolve().parents[2]
OWN_CAPTURES = ROOT / "captures"
CAPTURES = ROOT.parent / "shared" / "captures"


def capture_paths() -> list[Path]:
    """The corpus captures, or [] when the directory is absent."""
    if not CAPTURES.is_dir():
        return []
    return sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def capture(name: str) -> Path:
    """One corpus capture; skips the test if the corpus is absent."""
    path = CAPTURES / name
    if not path.is_file():
        pytest.skip(f"shared capture corpus not found at {CAPTURES}")
    return path


def manifest(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def corpus_params() -> list:
    """pytest parameters: one per capture, or one skipped entry saying why."""
    paths = capture_paths()
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"shared capture corpus not found at {CAPTURES}"))]
    return [pytest.param(p, id=p.stem) for p in paths]


# -- file writers --------------------------------------------------------------------


def pcap_bytes(frames: list[tuple[int, bytes]], linktype: int, *, nanoseconds: bool = False,
               order: str = "<", snaplen: int = 262144) -> bytes:
    """A classic pcap file of (time in ns, frame bytes) records."""
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for time_ns, data in frames:
        seconds, ns = divmod(time_ns, 1_000_000_000)
        frac = ns if nanoseconds else ns // 1000
        out.append(struct.pack(order + "IIII", seconds, frac, len(data), len(data)) + data)
    return b"".join(out)


def block(block_type: int, body: bytes, order: str = "<") -> bytes:
    """A pcapng block: body padded to 4 bytes, lengths on both ends."""
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def shb(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int, tsresol: int | None = None, order: str = "<",
        snaplen: int = 0) -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack(order + "HHB3x", 9, 1, tsresol) + struct.pack(order + "HH", 0, 0)
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options, order)


def epb(interface: int, units: int, data: bytes, order: str = "<") -> bytes:
    fields = struct.pack(order + "IIIII", interface, units >> 32, units & 0xFFFFFFFF,
                         len(data), len(data))
    return block(6, fields + data, order)


def opb(interface: int, units: int, data: bytes, order: str = "<") -> bytes:
    """The obsolete Packet Block (type 2)."""
    fields = struct.pack(order + "HHIIII", interface, 0, units >> 32, units & 0xFFFFFFFF,
                         len(data), len(data))
    return block(2, fields + data, order)


def spb(data: bytes, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", len(data)) + data, order)


# -- packets -------------------------------------------------------------------------

LOCALHOST = bytes((127, 0, 0, 1))
TCP, UDP = 6, 17
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ipv4(proto: int, payload: bytes, src: bytes = LOCALHOST, dst: bytes = LOCALHOST,
         ident: int = 0, fragment: int = 0, options: bytes = b"") -> bytes:
    """An IPv4 header (checksum left zero: nothing here checks it) and payload."""
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident,
                         fragment, 64, proto, 0, src, dst)
    return header + options + payload


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", flags: int = TCP_ACK,
        ack: int = 0) -> bytes:
    return struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack, (5 << 12) | flags,
                       65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ethernet(ip_packet: bytes, ethertype: int = 0x0800) -> bytes:
    return bytes(6) + bytes(6) + struct.pack("!H", ethertype) + ip_packet


# -- records, read or made ---------------------------------------------------------------


def first_record(records: list[Record], frame: int, command: str | None = None) -> Record:
    """The first record of ``frame`` (with ``command``, if given)."""
    return next(r for r in records
                if r.frame == frame and command in (None, r.command_name))


def built_record(message: Message | None, kind: RecordKind = MESSAGE, size: int = 0,
                 reason: str = "") -> Record:
    """A record of circuit 3, server (10.0.0.2:5064) to client, frame 57 at 12.5 s."""
    return Record(kind, 57, 12.5, "10.0.0.2:5064", "10.0.0.1:40000", "tcp", 3, Role.SERVER,
                  message, size, reason)


# -- synthetic TCP connections from real CA streams ----------------------------------


def capture_streams(name: str) -> tuple[list[bytes], list[bytes]]:
    """The messages (bytes) of each direction of the first circuit of a capture."""
    client, server = [], []
    for record in shark.read(capture(name)):
        if record.circuit == 1:
            (client if record.sender == Role.CLIENT else server).append(
                record.message.to_bytes())
    return client, server


Segment = tuple[bool, int, bytes, int, int]  # from_client, seq, payload, flags, ack


def tcp_frames(segments: Iterable[Segment], server_port: int = 5064,
               client_port: int = 40000) -> list[Frame]:
    """Raw IPv4 frames of segments."""
    frames = []
    for n, (from_client, seq, payload, flags, ack) in enumerate(segments, 1):
        ports = (client_port, server_port) if from_client else (server_port, client_port)
        data = ipv4(TCP, tcp(*ports, seq, payload, flags, ack))
        frames.append(Frame(n, n / 1000, n * 1_000_000, LinkType.IPV4, memoryview(data)))
    return frames


def conversation(pieces: Iterable[tuple[bool, bytes]], closed: bool = False) -> bytes:
    """A pcap (Ethernet) of one TCP circuit: the handshake, then a segment per piece
    (from the client or not, its bytes), each acknowledging what the other side sent
    before it; then both FINs if ``closed``."""
    segments = [(True, 100, b"", TCP_SYN, 0), (False, 500, b"", TCP_SYN | TCP_ACK, 101)]
    sent = {True: 101, False: 501}
    for from_client, payload in pieces:
        segments.append((from_client, sent[from_client], payload, TCP_ACK | TCP_PSH,
                         sent[not from_client]))
        sent[from_client] += len(payload)
    if closed:
        segments.append((True, sent[True], b"", TCP_FIN | TCP_ACK, sent[False]))
        segments.append((False, sent[False], b"", TCP_FIN | TCP_ACK, sent[True] + 1))
    frames = [(f.time_ns, ethernet(bytes(f.data))) for f in tcp_frames(segments)]
    return pcap_bytes(frames, LinkType.EN10MB)


def chunked(data: bytes, sizes: Iterable[int]) -> list[tuple[int, bytes]]:
    """(offset, piece) of ``data`` cut into pieces of the given sizes (cycled)."""
    out, offset = [], 0
    for size in itertools.cycle(sizes):
        if offset >= len(data):
            return out
        out.append((offset, data[offset : offset + size]))
        offset += size
    return out


def synthetic(client: bytes, server: bytes, client_sizes: Iterable[int],
              server_sizes: Iterable[int], drop: Iterable[tuple[bool, int]] = (),
              handshake: bool = True) -> list[Segment]:
    """A connection carrying two byte streams, segments alternating between directions,
    each acknowledging all the other side sent before it; ``drop`` lists (from_client,
    segment index) that the capture misses (the receiver got them)."""
    dropped = set(drop)
    segments: list[Segment] = []
    if handshake:
        segments += [(True, 100, b"", TCP_SYN, 0), (False, 500, b"", TCP_SYN | TCP_ACK, 101)]
    sent = {True: 101, False: 501}  # next sequence number of each side
    pieces = [[(True, p) for _, p in chunked(client, client_sizes)],
              [(False, p) for _, p in chunked(server, server_sizes)]]
    for index, pair in enumerate(itertools.zip_longest(*pieces)):
        for from_client, payload in filter(None, pair):
            segment = (from_client, sent[from_client], payload, TCP_ACK | TCP_PSH,
                       sent[not from_client])
            sent[from_client] += len(payload)
            if (from_client, index) not in dropped:
                segments.append(segment)
    segments.append((True, sent[True], b"", TCP_FIN | TCP_ACK, sent[False]))
    segments.append((False, sent[False], b"", TCP_FIN | TCP_ACK, sent[True] + 1))
    return segments


# Real captures damaged on purpose: frames to cut, drop, reorder and write back.

Frames = list[tuple[int, bytes]]  # (time in ns, frame bytes)


def real_frames(path: Path) -> tuple[Frames, int]:
    """The frames of a real capture, as bytes, and its link type."""
    frames = [(f.time_ns, bytes(f.data), f.linktype) for f in read_frames(path)]
    assert len({f[2] for f in frames}) == 1
    return [(t, d) for t, d, _ in frames], frames[0][2]


def write(tmp_path: Path, frames: Frames, linktype: int, name: str = "damaged.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(pcap_bytes(frames, linktype, nanoseconds=True))
    return path


def tcp_payload_size(data: bytes, linktype: int) -> int:
    """The TCP payload length of a frame (0 if it is not TCP)."""
    packet = packets.PacketDecoder().decode(Frame(1, 0.0, 0, linktype, memoryview(data)))
    return len(packet.payload) if packet is not None and packet.transport == packets.TCP else 0


def split_points(stream: list[bytes], inside_extended: tuple[int, ...]) -> list[int]:
    """Segment sizes cutting a stream at every message boundary, inside every extended
    header at the given offsets, and anywhere needed to keep segments under 60000 bytes."""
    cuts, offset = set(), 0
    for message in stream:
        cuts.add(offset)
        if message[2:4] == b"\xff\xff" and message[6:8] == b"\0\0":  # extended header
            cuts.update(offset + k for k in inside_extended)
        offset += len(message)
    points = sorted(cuts | {offset})
    sizes = []
    for start, end in zip(points, points[1:], strict=False):
        while end - start > 60000:
            sizes.append(60000)
            start += 60000
        if end > start:
            sizes.append(end - start)
    return sizes


def connection(records: list[shark.Record], client_sizes: list[int],
               server_sizes: list[int]) -> list[tuple[bool, int, bytes, int, int]]:
    """A TCP connection carrying the messages of ``records`` (one circuit, in capture
    order) in segments of the given sizes, which cut each side's stream at message
    boundaries and inside messages. Segments go out in the order of the messages they
    carry, so that no reply precedes its request; each acknowledges all the other side
    sent before it."""
    streams = {side: [r.message.to_bytes() for r in records
                      if (r.sender == Role.CLIENT) == side] for side in (True, False)}
    ranks = {side: [i for i, r in enumerate(records) if (r.sender == Role.CLIENT) == side]
             for side in (True, False)}
    pieces = []  # (rank of the message holding the first byte, offset in it, side, bytes)
    for side, sizes in ((True, client_sizes), (False, server_sizes)):
        data = b"".join(streams[side])
        ends = list(itertools.accumulate(map(len, streams[side])))
        offset = 0
        for size in sizes:
            index = bisect.bisect_right(ends, offset)
            within = offset - (ends[index] - len(streams[side][index]))
            pieces.append((ranks[side][index], within, side, data[offset : offset + size]))
            offset += size
        assert offset == len(data)
    segments = [(True, 100, b"", TCP_SYN, 0), (False, 500, b"", TCP_SYN | TCP_ACK, 101)]
    sent = {True: 101, False: 501}
    for _rank, _within, side, payload in sorted(pieces, key=lambda p: p[:2]):
        segments.append((side, sent[side], payload, TCP_ACK | TCP_PSH, sent[not side]))
        sent[side] += len(payload)
    segments.append((True, sent[True], b"", TCP_FIN | TCP_ACK, sent[False]))
    segments.append((False, sent[False], b"", TCP_FIN | TCP_ACK, sent[True] + 1))
    return segments
