"""Mutations of real captures for the fuzz target (``tests/test_fuzz.py``).

A bundled capture (classic little-endian pcap, Ethernet) is parsed once into a
:class:`Layout`: where each frame, each TCP or UDP payload and each CA header lies in the
file. A :class:`Mutation` then changes the file the way damage and liars do: a flipped
bit, a cut, a splice of its own bytes, a pcap or pcapng header field that lies (lengths,
times, link type, interface), a CA header field that lies (command, size, data type,
count). Each mutation is a small frozen dataclass, so that hypothesis prints a failing
case as something a person can read and replay.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from builders import OWN_CAPTURES, block, shb
from hypothesis import strategies as st

#: The bundled captures the fuzzer starts from.
CAPTURES = tuple(sorted(p.name for p in OWN_CAPTURES.glob("*.pcap")))
PCAP_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER = struct.Struct("<IIII")
CA_HEADER = struct.Struct("!HHHHII")
CA_PORT = 5064

#: Field -> (byte offset in the CA header, width).
CA_FIELDS = {"command": (0, 2), "size": (2, 2), "data_type": (4, 2), "count": (6, 2),
             "param1": (8, 4), "param2": (12, 4)}
#: pcap global header field -> (offset, struct format).
PCAP_FIELDS = {"version_major": (4, "<H"), "version_minor": (6, "<H"), "snaplen": (16, "<I"),
               "linktype": (20, "<I")}
#: pcap record header field -> (offset, struct format).
RECORD_FIELDS = {"ts_sec": (0, "<I"), "ts_frac": (4, "<I"), "incl_len": (8, "<I"),
                 "orig_len": (12, "<I")}


@dataclass(frozen=True)
class Payload:
    """A TCP or UDP payload of one frame: where it lies in the file, and its flow."""

    start: int
    length: int
    transport: str
    src: tuple[bytes, int]
    dst: tuple[bytes, int]

    @property
    def ca_circuit(self) -> bool:
        """TCP to or from the CA server port: a circuit every reader decodes."""
        return self.transport == "tcp" and CA_PORT in (self.src[1], self.dst[1])


@dataclass(frozen=True)
class Layout:
    """Where things lie in one capture file."""

    name: str
    data: bytes
    records: tuple[int, ...]  # file offsets of the pcap record headers
    payloads: tuple[Payload, ...]
    ca_headers: tuple[int, ...]  # file offsets of CA headers at a message boundary


@cache
def layout(name: str) -> Layout:
    data = (OWN_CAPTURES / name).read_bytes()
    magic, _, _, _, _, _, linktype = PCAP_HEADER.unpack_from(data)
    assert magic == 0xA1B2C3D4 and linktype == 1, f"{name}: not a LE Ethernet pcap"
    records, payloads, headers = [], [], []
    offset = PCAP_HEADER.size
    while offset + RECORD_HEADER.size <= len(data):
        _, _, incl, _ = RECORD_HEADER.unpack_from(data, offset)
        records.append(offset)
        start = offset + RECORD_HEADER.size
        payload = _payload(data, start, incl)
        if payload is not None:
            payloads.append(payload)
            headers.extend(_ca_headers(data, payload))
        offset = start + incl
    return Layout(name, data, tuple(records), tuple(payloads), tuple(headers))


def _payload(data: bytes, frame: int, length: int) -> Payload | None:
    """The TCP or UDP payload of an Ethernet/IPv4 frame, if it has one."""
    if length < 34 or data[frame + 12:frame + 14] != b"\x08\x00":
        return None
    ip = frame + 14
    ihl = (data[ip] & 0x0F) * 4
    total = struct.unpack_from("!H", data, ip + 2)[0]
    proto = data[ip + 9]
    src, dst = data[ip + 12:ip + 16], data[ip + 16:ip + 20]
    l4 = ip + ihl
    end = min(ip + total, frame + length)
    sport, dport = struct.unpack_from("!HH", data, l4)
    if proto == 6:
        start, transport = l4 + (data[l4 + 12] >> 4) * 4, "tcp"
    elif proto == 17:
        start, transport = l4 + 8, "udp"
    else:
        return None
    if start >= end:
        return None
    return Payload(start, end - start, transport, (src, sport), (dst, dport))


def _ca_headers(data: bytes, payload: Payload) -> list[int]:
    """CA headers found walking the payload from its start (the bundled captures put a
    message boundary at the start of every segment)."""
    found, pos, end = [], payload.start, payload.start + payload.length
    while pos + CA_HEADER.size <= end:
        _, size, _, count, _, _ = CA_HEADER.unpack_from(data, pos)
        found.append(pos)
        header = CA_HEADER.size
        if size == 0xFFFF and count == 0 and pos + 24 <= end:
            size = struct.unpack_from("!I", data, pos + 16)[0]
            header = 24
        pos += header + size
    return found


# -- mutations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    def apply(self, data: bytes, layout: Layout) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError


def _put(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    if offset + size > len(data):
        return data
    return data[:offset] + struct.pack(fmt, value) + data[offset + size:]


@dataclass(frozen=True)
class BitFlip(Mutation):
    position: int
    bit: int

    def apply(self, data: bytes, layout: Layout) -> bytes:
        if not data:
            return data
        at = self.position % len(data)
        return data[:at] + bytes([data[at] ^ (1 << self.bit)]) + data[at + 1:]


@dataclass(frozen=True)
class Truncate(Mutation):
    length: int

    def apply(self, data: bytes, layout: Layout) -> bytes:
        return data[:self.length % (len(data) + 1)]


@dataclass(frozen=True)
class Splice(Mutation):
    """Bytes of the file copied elsewhere in it: inserted, or written over what is there."""

    source: int
    length: int
    target: int
    insert: bool

    def apply(self, data: bytes, layout: Layout) -> bytes:
        if not data:
            return data
        start = self.source % len(data)
        chunk = data[start:start + self.length]
        at = self.target % len(data)
        rest = at if self.insert else at + len(chunk)
        return data[:at] + chunk + data[rest:]


@dataclass(frozen=True)
class PcapField(Mutation):
    """A pcap header field that lies: the global header's, or record ``record``'s."""

    field: str
    value: int
    record: int | None = None

    def apply(self, data: bytes, layout: Layout) -> bytes:
        if self.record is None:
            offset, fmt = PCAP_FIELDS[self.field]
        else:
            field_offset, fmt = RECORD_FIELDS[self.field]
            offset = layout.records[self.record % len(layout.records)] + field_offset
        return _put(data, offset, fmt, self.value & _mask(fmt))


@dataclass(frozen=True)
class CaField(Mutation):
    """A CA header field that lies (``header`` indexes the capture's CA headers)."""

    header: int
    field: str
    value: int

    def apply(self, data: bytes, layout: Layout) -> bytes:
        if not layout.ca_headers:
            return data
        field_offset, width = CA_FIELDS[self.field]
        offset = layout.ca_headers[self.header % len(layout.ca_headers)] + field_offset
        fmt = "!H" if width == 2 else "!I"
        return _put(data, offset, fmt, self.value & _mask(fmt))


@dataclass(frozen=True)
class PayloadBitFlip(Mutation):
    """A bit flipped inside a CA circuit's TCP payload: the frames keep their lengths, so
    every byte still reaches the decoder (see ``test_fuzz``'s byte accounting)."""

    position: int
    bit: int

    def apply(self, data: bytes, layout: Layout) -> bytes:
        total = sum(p.length for p in circuit_payloads(layout))
        if not total:
            return data
        at = self.position % total
        for payload in circuit_payloads(layout):
            if at < payload.length:
                return BitFlip(payload.start + at, self.bit).apply(data, layout)
            at -= payload.length
        return data


def circuit_payloads(layout: Layout) -> tuple[Payload, ...]:
    return tuple(p for p in layout.payloads if p.ca_circuit)


def circuit_ca_headers(layout: Layout) -> tuple[int, ...]:
    starts = [(p.start, p.start + p.length) for p in circuit_payloads(layout)]
    return tuple(h for h in layout.ca_headers if any(a <= h < b for a, b in starts))


@dataclass(frozen=True)
class CircuitCaField(Mutation):
    """A lying CA header field in a CA circuit (lengths of frames unchanged)."""

    header: int
    field: str
    value: int

    def apply(self, data: bytes, layout: Layout) -> bytes:
        headers = circuit_ca_headers(layout)
        if not headers:
            return data
        field_offset, width = CA_FIELDS[self.field]
        fmt = "!H" if width == 2 else "!I"
        offset = headers[self.header % len(headers)] + field_offset
        return _put(data, offset, fmt, self.value & _mask(fmt))


@dataclass(frozen=True)
class ToPcapng(Mutation):
    """The capture rewritten as pcapng (first, if at all: it replaces the whole file), with
    one of its fields lying: ``field`` in :data:`PCAPNG_LIES`, on block ``index``."""

    field: str
    value: int
    index: int = 0

    def apply(self, data: bytes, layout: Layout) -> bytes:
        return pcapng(layout, self.field, self.value, self.index)


#: What a pcapng rewrite can lie about.
PCAPNG_LIES = ("none", "tsresol", "tsoffset", "block_length", "trailing_length", "caplen",
               "interface", "ts_high", "block_type")


def pcapng(layout: Layout, lie: str = "none", value: int = 0, index: int = 0) -> bytes:
    """``layout``'s frames as a pcapng file (microsecond units unless lying), with ``lie``."""
    data = layout.data
    options = b""
    if lie == "tsresol":
        options += struct.pack("<HHB3x", 9, 1, value & 0xFF)
    if lie == "tsoffset":
        options += struct.pack("<HHq", 14, 8, _signed64(value))
    if options:
        options += struct.pack("<HH", 0, 0)
    blocks = [shb(), block(1, struct.pack("<HHI", 1, 0, 0) + options)]
    target = index % max(len(layout.records), 1)
    for number, offset in enumerate(layout.records):
        seconds, micros, incl, orig = RECORD_HEADER.unpack_from(data, offset)
        frame = data[offset + RECORD_HEADER.size:offset + RECORD_HEADER.size + incl]
        units = seconds * 1_000_000 + micros
        interface, caplen = 0, len(frame)
        lying = number == target
        if lying and lie == "interface":
            interface = value & 0xFFFFFFFF
        if lying and lie == "caplen":
            caplen = value & 0xFFFFFFFF
        if lying and lie == "ts_high":
            units = ((value & 0xFFFFFFFF) << 32) | (units & 0xFFFFFFFF)
        body = struct.pack("<IIIII", interface, units >> 32, units & 0xFFFFFFFF, caplen,
                           orig) + frame
        raw = block(6, body)
        if lying and lie == "block_length":
            raw = raw[:4] + struct.pack("<I", value & 0xFFFFFFFF) + raw[8:]
        if lying and lie == "trailing_length":
            raw = raw[:-4] + struct.pack("<I", value & 0xFFFFFFFF)
        if lying and lie == "block_type":
            raw = struct.pack("<I", value & 0xFFFFFFFF) + raw[4:]
        blocks.append(raw)
    return b"".join(blocks)


def _mask(fmt: str) -> int:
    return (1 << (8 * struct.calcsize(fmt))) - 1


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


# -- strategies ------------------------------------------------------------------------


def _interesting(bits: int) -> st.SearchStrategy[int]:
    """Boundary values liars and bit rot produce, and anything else."""
    top = (1 << bits) - 1
    edges = [0, 1, 2, 7, 8, 15, 16, 0x7F, 0xFF, 0x100, top, top - 1, top - 7, top >> 1,
             (top >> 1) + 1]
    return st.one_of(st.sampled_from([e for e in edges if e <= top]), st.integers(0, top))


POSITION = st.integers(0, 1 << 20)

#: Mutations that know nothing of the format: for any file.
BLIND_MUTATION: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(BitFlip, POSITION, st.integers(0, 7)),
    st.builds(Truncate, POSITION),
    st.builds(Splice, POSITION, st.integers(1, 2048), POSITION, st.booleans()),
)

#: Mutations of the pcap as bundled.
ANY_MUTATION: st.SearchStrategy[Mutation] = st.one_of(
    BLIND_MUTATION,
    st.builds(PcapField, st.sampled_from(sorted(PCAP_FIELDS)), _interesting(32)),
    st.builds(PcapField, st.sampled_from(sorted(RECORD_FIELDS)), _interesting(32),
              st.integers(0, 1 << 16)),
    st.builds(CaField, st.integers(0, 1 << 16),
              st.sampled_from(["command", "size", "data_type", "count"]), _interesting(16)),
    st.builds(CaField, st.integers(0, 1 << 16), st.sampled_from(["param1", "param2"]),
              _interesting(32)),
)

#: Mutations that keep every frame's length: each byte still reaches the decoder.
IN_PLACE_MUTATION: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(PayloadBitFlip, POSITION, st.integers(0, 7)),
    st.builds(CircuitCaField, st.integers(0, 1 << 16),
              st.sampled_from(["command", "size", "data_type", "count"]), _interesting(16)),
)

PCAPNG_REWRITE: st.SearchStrategy[Mutation] = st.builds(
    ToPcapng, st.sampled_from(PCAPNG_LIES), _interesting(64), st.integers(0, 1 << 16))


@dataclass(frozen=True)
class Case:
    """A bundled capture and the mutations applied to it in order."""

    capture: str
    mutations: tuple[Mutation, ...]

    def data(self) -> bytes:
        base = layout(self.capture)
        data = base.data
        for mutation in self.mutations:
            data = mutation.apply(data, base)
        return data

    def write(self, directory: Path) -> Path:
        suffix = ".pcapng" if any(isinstance(m, ToPcapng) for m in self.mutations) else ".pcap"
        path = directory / f"fuzz{suffix}"
        path.write_bytes(self.data())
        return path


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A capture with one to three mutations; one time in four rewritten as pcapng (with a
    lie) first, then only blind mutations (the pcap offsets no longer hold)."""
    capture = draw(st.sampled_from(CAPTURES))
    if draw(st.integers(0, 3)) == 0:
        rest = draw(st.lists(BLIND_MUTATION, max_size=2))
        return Case(capture, (draw(PCAPNG_REWRITE), *rest))
    return Case(capture, tuple(draw(st.lists(ANY_MUTATION, min_size=1, max_size=3))))


@st.composite
def in_place_cases(draw: st.DrawFn) -> Case:
    capture = draw(st.sampled_from(CAPTURES))
    return Case(capture, tuple(draw(st.lists(IN_PLACE_MUTATION, min_size=1, max_size=3))))
