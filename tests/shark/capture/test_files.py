"""The capture file readers: pcap and pcapng variants, gzip, streams, damaged files."""

from __future__ import annotations

import gzip
import io
import random
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from builders import (
    block,
    capture,
    corpus_params,
    epb,
    idb,
    manifest,
    opb,
    pcap_bytes,
    shb,
    spb,
)

import shark
import shark.capture.files
from shark.capture.files import (
    MAX_RECORD,
    CaptureError,
    Frame,
    LinkType,
    read_blocks,
    read_frames,
)

EN10MB, LINUX_SLL = LinkType.EN10MB, LinkType.LINUX_SLL


def frames_of(name: str) -> list[Frame]:
    return list(read_frames(capture(name)))


def as_sll(ethernet_frame: bytes) -> bytes:
    """The same packet as Linux cooked v1 would show it (16-byte header)."""
    return struct.pack("!HHH8sH", 0, 772, 6, bytes(8), 0x0800) + ethernet_frame[14:]


def read_all(data: bytes) -> list[Frame]:
    return list(read_frames(io.BytesIO(data)))


# -- agreement with an independent reader ------------------------------------------------


@pytest.mark.parametrize("path", corpus_params())
def test_frames_match_dpkt(path: Path) -> None:
    dpkt = pytest.importorskip("dpkt")
    ours = list(read_frames(path))
    with open(path, "rb") as stream:
        reader = dpkt.pcap.Reader(stream) if path.suffix == ".pcap" else dpkt.pcapng.Reader(
            stream)
        theirs = list(reader)
    assert len(ours) == len(theirs) == manifest(path)["capture_analysis"]["frames"]
    for frame, (time, data) in zip(ours, theirs, strict=True):
        assert bytes(frame.data) == data
        assert frame.time == pytest.approx(float(time), abs=1e-6)
    assert [f.number for f in ours] == list(range(1, len(ours) + 1))


# -- pcap -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_byte_orders_and_resolutions(order: str, nanoseconds: bool) -> None:
    real = frames_of("ca_basic_default_port.pcap")[:6]
    records = [(f.time_ns + i * 123, bytes(f.data)) for i, f in enumerate(real)]
    data = pcap_bytes(records, EN10MB, nanoseconds=nanoseconds, order=order)
    frames = read_all(data)
    assert [bytes(f.data) for f in frames] == [d for _, d in records]
    expected_ns = [t if nanoseconds else t // 1000 * 1000 for t, _ in records]
    assert [f.time_ns for f in frames] == expected_ns
    assert all(f.linktype == EN10MB for f in frames)
    assert frames[0].time == expected_ns[0] / 1e9


def test_nanosecond_pcap_from_the_corpus() -> None:
    frames = frames_of("caproto_cli_vs_softioc.pcap")  # written with nanosecond stamps
    assert any(f.time_ns % 1000 for f in frames)


def test_pcap_record_claiming_4_gib() -> None:
    real = frames_of("ca_basic_default_port.pcap")[:2]
    good = pcap_bytes([(f.time_ns, bytes(f.data)) for f in real], EN10MB)
    lying = good + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"x" * 100
    reader = read_frames(io.BytesIO(lying))
    assert len([next(reader), next(reader)]) == 2
    with pytest.raises(CaptureError, match="bad pcap record header"):
        next(reader)


def test_pcap_record_longer_than_snaplen_allows() -> None:
    data = pcap_bytes([(0, bytes(200_000))], EN10MB, snaplen=1500)
    with pytest.raises(CaptureError):
        read_all(data)


# -- pcapng -------------------------------------------------------------------------------


def test_pcapng_interfaces_with_their_own_link_types_and_resolutions() -> None:
    real = frames_of("ca_basic_default_port.pcap")[:8]
    base = real[0].time_ns
    blocks = [
        shb(),
        idb(EN10MB),  # interface 0: microseconds by default
        block(0x0BAD, b"a block type nobody knows: skipped"),
        idb(LINUX_SLL, tsresol=9),  # interface 1: nanoseconds
        idb(EN10MB, tsresol=0x80 | 20),  # interface 2: 2**-20 seconds
    ]
    expected = []
    for i, frame in enumerate(real):
        data = bytes(frame.data)
        interface = i % 3
        if interface == 0:
            blocks.append(epb(0, base // 1000 + i, data))
            expected.append((EN10MB, data, (base // 1000 + i) * 1000))
        elif interface == 1:
            blocks.append(epb(1, base + i, as_sll(data)))
            expected.append((LINUX_SLL, as_sll(data), base + i))
        else:
            units = (base // 1_000_000_000 << 20) + i
            blocks.append(opb(2, units, data))
            expected.append((EN10MB, data, units * 1_000_000_000 >> 20))
    frames = read_all(b"".join(blocks))
    assert [(f.linktype, bytes(f.data), f.time_ns) for f in frames] == expected
    assert [f.number for f in frames] == list(range(1, len(real) + 1))


def test_pcapng_two_interfaces_decode_to_the_manifest_counts(tmp_path: Path) -> None:
    """Every other frame of a real capture moved to a LINUX_SLL interface: the CA
    messages are the same."""
    path = capture("ca_basic_default_port.pcap")
    real = list(read_frames(path))
    blocks = [shb(), idb(EN10MB, tsresol=6), idb(LINUX_SLL, tsresol=9)]
    for i, frame in enumerate(real):
        if i % 2:
            blocks.append(epb(1, frame.time_ns, as_sll(bytes(frame.data))))
        else:
            blocks.append(epb(0, frame.time_ns // 1000, bytes(frame.data)))
    target = tmp_path / "mixed.pcapng"
    target.write_bytes(b"".join(blocks))
    original = [(r.frame, r.src, r.dst, r.message.to_bytes()) for r in shark.read(path)]
    mixed = [(r.frame, r.src, r.dst, r.message.to_bytes()) for r in shark.read(target)]
    assert mixed == original
    assert len(mixed) == manifest(path)["message_counts_by_command"]["total_ca_messages"]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_big_endian_section_and_simple_packet_block(order: str) -> None:
    real = frames_of("ca_basic_default_port.pcap")[:3]
    data = [bytes(f.data) for f in real]
    file = b"".join([
        shb(order), idb(EN10MB, order=order, snaplen=65535),
        spb(data[0], order), epb(0, 7, data[1], order),
        # a second section, in the other byte order, redeclares its interfaces
        shb(">" if order == "<" else "<"), idb(LINUX_SLL, order=">" if order == "<" else "<"),
        epb(0, 9, as_sll(data[2]), ">" if order == "<" else "<"),
    ])
    frames = read_all(file)
    assert [bytes(f.data) for f in frames] == [data[0], data[1], as_sll(data[2])]
    assert [f.linktype for f in frames] == [EN10MB, EN10MB, LINUX_SLL]
    assert [f.time_ns for f in frames] == [0, 7000, 9000]


def test_pcapng_packet_on_undeclared_interface() -> None:
    file = shb() + idb(EN10MB) + epb(3, 0, bytes(60))
    with pytest.raises(CaptureError, match="undeclared interface"):
        read_all(file)


def test_pcapng_block_claiming_4_gib() -> None:
    file = shb() + idb(EN10MB) + struct.pack("<II", 6, 0xFFFFFFF0) + bytes(64)
    with pytest.raises(CaptureError, match="block length"):
        read_all(file)


def test_pcapng_packet_longer_than_its_block() -> None:
    good = epb(0, 0, bytes(64))
    lying = good[:20] + struct.pack("<I", 1_000_000) + good[24:]  # captured length field
    with pytest.raises(CaptureError, match="does not fit"):
        read_all(shb() + idb(EN10MB) + lying)


def test_pcapng_trailing_length_mismatch() -> None:
    good = epb(0, 0, bytes(64))
    with pytest.raises(CaptureError, match="trailing length"):
        read_all(shb() + idb(EN10MB) + good[:-4] + struct.pack("<I", 12))


# -- sources -----------------------------------------------------------------------------


def test_gzip_is_recognised_by_content(tmp_path: Path) -> None:
    path = capture("ca_dbr_families.pcapng")
    original = [(f.time_ns, bytes(f.data)) for f in read_frames(path)]
    disguised = tmp_path / "not-compressed.pcap"  # the name does not matter
    disguised.write_bytes(gzip.compress(path.read_bytes()))
    assert [(f.time_ns, bytes(f.data)) for f in read_frames(disguised)] == original
    stream = io.BytesIO(gzip.compress(path.read_bytes()))
    assert len(list(read_frames(stream))) == len(original)


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(capture("ca_dbr_families.pcapng").read_bytes())
    frames = []
    with pytest.raises(CaptureError):
        frames.extend(read_frames(io.BytesIO(packed[: len(packed) // 2])))
    assert frames  # what decompressed is read first


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    path = capture("ca_basic_default_port.pcap")

    class Stdin:
        buffer = io.BytesIO(path.read_bytes())

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert len(list(read_frames("-"))) == len(list(read_frames(path)))


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", b"GET / HTTP/1.1\r\n\r\n", bytes(100)])
def test_not_a_capture(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(CaptureError):
        read_all(data)
    path = tmp_path / "x"
    path.write_bytes(data)
    with pytest.raises(CaptureError):
        list(read_frames(path))


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_frames(tmp_path / "absent.pcap"))


# -- truncation ----------------------------------------------------------------------------


def _cut_offsets(size: int) -> list[int]:
    """Every offset in the first 300 bytes (file and first record headers), then a
    spread over the rest."""
    return sorted(set(range(0, min(size, 300))) | set(range(300, size, max(1, size // 400))))


@pytest.mark.parametrize("name", ["ca_basic_default_port.pcap", "ca_dbr_families.pcapng",
                                  "ca_two_clients_two_iocs.pcapng"])
def test_truncated_captures_yield_a_prefix_then_capture_error(name: str) -> None:
    data = capture(name).read_bytes()
    full = [bytes(f.data) for f in read_all(data)]
    for cut in _cut_offsets(len(data)):
        frames = []
        try:
            frames.extend(bytes(f.data) for f in read_frames(io.BytesIO(data[:cut])))
        except CaptureError:
            pass
        else:
            # ending exactly between two records is a well-formed (shorter) capture
            assert len(frames) < len(full) or cut == len(data)
            assert cut >= 24
        assert frames == full[: len(frames)], cut


@pytest.mark.parametrize("name", ["ca_basic_default_port.pcap",
                                  "ca_put_callback_and_errors.pcapng"])
def test_truncated_captures_through_the_whole_pipeline(name: str, tmp_path: Path) -> None:
    """The message layer, from a path (memory-mapped), raises nothing but CaptureError,
    after the messages of the frames before the damage."""
    path = capture(name)
    data = path.read_bytes()
    full = [r.message.to_bytes() for r in shark.read(path)]
    for cut in range(0, len(data), max(1, len(data) // 60)):
        cut_path = tmp_path / f"cut{cut}"
        cut_path.write_bytes(data[:cut])
        records = []
        try:
            records.extend(shark.read(cut_path))
        except CaptureError:
            pass
        messages = [r.message.to_bytes() for r in records if r.kind == shark.MESSAGE]
        assert messages == full[: len(messages)]


def test_record_size_limit() -> None:
    """A pcapng block just over the limit is refused before anything is read for it."""
    lying = struct.pack("<II", 6, MAX_RECORD + 4) + bytes(64)
    with pytest.raises(CaptureError, match="block length"):
        read_all(shb() + idb(EN10MB) + lying)


def test_damaged_captures_raise_only_capture_error() -> None:
    """Random bytes changed in real captures: the whole pipeline reads what it can and
    raises nothing but CaptureError."""
    rng = random.Random(2024)
    files = [capture(name).read_bytes() for name in (
        "ca_basic_default_port.pcap", "ca_put_callback_and_errors.pcapng",
        "ca_unanswered_searches.pcap", "pyepics_vs_caproto_ioc.pcap")]
    for _ in range(120):
        data = bytearray(rng.choice(files))
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            for record in shark.read(io.BytesIO(bytes(data))):
                repr(record)
        except CaptureError:
            pass


# -- blocks ------------------------------------------------------------------------------


def _blocked(source: Any, size: int) -> tuple[list[tuple[int, float, int, int, bytes]],
                                              CaptureError | None]:
    """The frames of :func:`read_blocks`, and the error that ended them, if one did."""
    frames: list[tuple[int, float, int, int, bytes]] = []
    try:
        for block in read_blocks(source, size):
            assert 0 < len(block) <= size
            frames += [(f.number, f.time, f.time_ns, f.linktype, bytes(f.data))
                       for f in block.frames()]
            assert [block.frame(i) for i in range(len(block))] == list(block.frames())
    except CaptureError as exc:
        return frames, exc
    return frames, None


@pytest.mark.parametrize("size", [1, 3, 4096])
@pytest.mark.parametrize("name", ["ca_basic_default_port.pcap", "ca_dbr_families.pcapng",
                                  "ca_two_clients_two_iocs.pcapng"])
def test_blocks_hold_the_frames(name: str, size: int, tmp_path: Path) -> None:
    """Blocks of frames (from a map, a stream, gzip) are the frames one by one; a
    truncated capture's blocks hold every frame before the damage, then the error."""
    data = capture(name).read_bytes()
    frames = [(f.number, f.time, f.time_ns, f.linktype, bytes(f.data)) for f in read_all(data)]
    gzipped = tmp_path / "capture.gz"
    gzipped.write_bytes(gzip.compress(data))
    for source in (capture(name), io.BytesIO(data), gzipped):
        assert _blocked(source, size) == (frames, None)
    for cut in _cut_offsets(len(data))[::7]:
        expected: list[tuple[int, float, int, int, bytes]] = []
        try:
            for f in read_frames(io.BytesIO(data[:cut])):
                expected.append((f.number, f.time, f.time_ns, f.linktype, bytes(f.data)))
        except CaptureError as exc:
            got, error = _blocked(io.BytesIO(data[:cut]), size)
            assert (got, str(error)) == (expected, str(exc)), cut
        else:
            assert _blocked(io.BytesIO(data[:cut]), size) == (expected, None), cut


def test_pcapng_blocks_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pcapng block copies its frames together: it ends once it holds
    RELEASE_EVERY bytes, however many frames it may take."""
    monkeypatch.setattr(shark.capture.files, "RELEASE_EVERY", 2000)
    path = capture("ca_two_clients_two_iocs.pcapng")
    blocks = list(read_blocks(path, 4096))
    assert len(blocks) > 1
    assert all(b.ends[-2] - b.starts[0] < 2000 for b in blocks if len(b) > 1)
    assert [f.data for b in blocks for f in b.frames()] == [f.data for f in read_frames(path)]


@pytest.mark.parametrize("name", ["ca_many_channels_500.pcap", "ca_two_clients_two_iocs.pcapng"])
def test_blocks_are_bounded_in_bytes_when_asked(name: str) -> None:
    """With ``block_bytes``, a block ends once its frames span that many bytes (from a
    map or a stream), and the frames are the same."""
    path = capture(name)
    frames = [bytes(f.data) for f in read_frames(path)]
    for source in (path, io.BytesIO(path.read_bytes())):
        blocks = list(read_blocks(source, 4096, block_bytes=3000))
        assert len(blocks) > 3
        assert all(b.ends[-2] - b.starts[0] <= 3000 for b in blocks if len(b) > 1)
        assert [bytes(f.data) for b in blocks for f in b.frames()] == frames
