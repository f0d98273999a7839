"""Reading capture files: pcap and pcapng, plain or gzip-compressed, from a path or a stream.

:func:`read_frames` yields one :class:`Frame` per captured packet, numbered from 1 in
file order as Wireshark numbers them. A regular file is memory-mapped, anything else
(stdin, pipes, streams, decompressed gzip) read in 1 MiB chunks; every frame's bytes are
a ``memoryview`` slice of the map or chunk, so a frame costs one header unpack and no
copy. A consumer that keeps frame bytes keeps their chunk alive: one that keeps many
frames should copy them.

A file that is truncated or turns into garbage yields every frame read before the
damage, then raises :class:`CaptureError`. Length fields are checked before anything
is allocated for them, so a lying header cannot make the reader hang or swallow
memory: records and blocks are limited to :data:`MAX_RECORD` bytes.
"""

from __future__ import annotations

import mmap
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from itertools import accumulate, count
from pathlib import Path
from typing import BinaryIO, NamedTuple

from decoder.layout import Layout
from shark.errors import SharkError

__all__ = ["MAX_RECORD", "CaptureError", "Frame", "FrameBlock", "LinkType", "read_blocks",
           "read_frames"]

#: Largest record (pcap) or block (pcapng) accepted: no link layer carries frames near
#: this size, so a larger claim can only be a damaged or hostile file.
MAX_RECORD = 256 * 1024 * 1024
#: A pcap record may exceed the snaplen the file header announces by this much (some
#: writers announce 65535 and store 65549-byte loopback frames); beyond that it is garbage.
SNAPLEN_SLACK = 64 * 1024
#: Bytes read from a stream, or decompressed, at a time.
CHUNK = 1 << 20
#: Of a memory-mapped file, the pages read are given back to the system every this many
#: bytes (see ``_Source.release``).
RELEASE_EVERY = 16 << 20
#: Frames of a :class:`FrameBlock` at most, unless asked otherwise.
BLOCK_FRAMES = 4096


class LinkType:
    """The link-layer header type numbers (LINKTYPE_*) this package decodes."""

    NULL = 0
    EN10MB = 1
    RAW = 101
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


class CaptureError(SharkError):
    """The input is not a capture this reader understands, or is damaged or truncated.

    ``offset`` is the position in the (decompressed) input where the problem was found.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class Frame(NamedTuple):
    """One captured packet."""

    #: 1-based position in the file.
    number: int
    #: Capture time, Unix seconds.
    time: float
    #: The same time, exact, in integer nanoseconds.
    time_ns: int
    #: LINKTYPE_* of the interface that captured it (see :class:`LinkType`).
    linktype: int
    #: The captured bytes (possibly fewer than were on the wire: the snaplen).
    data: memoryview


class FrameBlock:
    """Consecutive frames of one link type, as where they lie in one buffer: frame
    ``first + i`` is ``view[starts[i]:ends[i]]``, captured at ``time_ns[i]``.

    What the tables read is mostly frames of one kind (a server's monitor updates), and
    a :class:`Frame` object each costs more than the rest of their way: a block lets a
    reader look at the headers of all its frames at once (:mod:`shark.network.packets`) and
    make frames only of those that need the general way (:meth:`frame`).
    """

    __slots__ = ("first", "linktype", "view", "starts", "ends", "time_ns")

    def __init__(self, first: int, linktype: int, view: memoryview, starts: list[int],
                 ends: list[int], time_ns: list[int]) -> None:
        self.first = first
        self.linktype = linktype
        self.view = view
        self.starts = starts
        self.ends = ends
        self.time_ns = time_ns

    def __len__(self) -> int:
        return len(self.starts)

    def frame(self, index: int) -> Frame:
        """The block's frame ``index`` (from 0)."""
        ns = self.time_ns[index]
        return _new(Frame, (self.first + index, ns / _NS_PER_S, ns, self.linktype,
                            self.view[self.starts[index] : self.ends[index]]))

    def part(self, begin: int, stop: int) -> FrameBlock:
        """Its frames ``begin`` to ``stop`` (from 0), in the same buffer."""
        return FrameBlock(self.first + begin, self.linktype, self.view,
                          self.starts[begin:stop], self.ends[begin:stop],
                          self.time_ns[begin:stop])

    def frames(self) -> Iterator[Frame]:
        view, linktype = self.view, self.linktype
        for number, ns, start, end in zip(count(self.first), self.time_ns, self.starts,
                                          self.ends):
            yield _new(Frame, (number, ns / _NS_PER_S, ns, linktype, view[start:end]))

    @classmethod
    def of(cls, frames: list[Frame]) -> FrameBlock:
        """A block of frames (of one link type) read one by one: their bytes joined."""
        lengths = [len(frame.data) for frame in frames]
        ends = list(accumulate(lengths))
        return cls(frames[0].number, frames[0].linktype,
                   memoryview(b"".join([frame.data for frame in frames])),
                   [end - length for end, length in zip(ends, lengths, strict=True)], ends,
                   [frame.time_ns for frame in frames])


_PCAP_MAGIC = {
    # magic as read little-endian -> (byte order, nanosecond timestamps)
    0xA1B2C3D4: ("<", False),
    0xD4C3B2A1: (">", False),
    0xA1B23C4D: ("<", True),
    0x4D3CB2A1: (">", True),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_GZIP_MAGIC = b"\x1f\x8b"

_IDB, _OPB, _SPB, _EPB = 1, 2, 3, 6
#: A pcapng Enhanced Packet Block up to its packet data, in a little-endian section
#: (the writer's); the data follows, padded to 32 bits, then ``block_length`` again.
EPB_LAYOUT = Layout("<", (
    ("block_type", "I"), ("block_length", "I"), ("interface_id", "I"),
    ("timestamp_high", "I"), ("timestamp_low", "I"), ("captured_length", "I"),
    ("original_length", "I"),
))
#: Where the packet data starts, and the smallest block (no data, trailing length).
_EPB_DATA = EPB_LAYOUT.size
_EPB_MIN = EPB_LAYOUT.size + 4
_OPT_END, _OPT_TSRESOL, _OPT_TSOFFSET = 0, 9, 14
_NS_PER_S = 1_000_000_000
#: Builds a named tuple from a tuple without the Python-level ``__new__`` the class
#: generates: half the cost, on the path taken once per frame.
_new = tuple.__new__


def read_frames(source: str | Path | BinaryIO) -> Iterator[Frame]:
    """Yield the frames of a pcap or pcapng capture.

    ``source`` is a path, ``"-"`` for standard input, or a binary stream. Gzip
    compression is recognised by its magic number whatever the file is called.
    Raises :class:`CaptureError` (after yielding what could be read) on anything
    that is not a well-formed capture, and :class:`OSError` if a path cannot be opened.
    """
    for item in _items(source, BLOCK_FRAMES):
        if type(item) is FrameBlock:
            yield from item.frames()
        else:
            yield item


def read_blocks(source: str | Path | BinaryIO, frames: int = BLOCK_FRAMES,
                block_bytes: int | None = None) -> Iterator[FrameBlock]:
    """:func:`read_frames` in blocks of up to ``frames`` frames (a block also ends where
    the link type changes, or where a stream's read window moves on; pcapng's, whose
    frames are copied together, at :data:`RELEASE_EVERY` bytes). With ``block_bytes``,
    a block also ends once its records span that many bytes: what a reader decodes of
    a block is alive at once, so a consumer that wants memory small asks for small
    blocks (a few megabytes of monitor updates are still tens of thousands)."""
    limit = sys.maxsize if block_bytes is None else max(block_bytes, 1)
    pending: list[Frame] = []
    size = 0
    try:
        for item in _items(source, frames, limit):
            if type(item) is FrameBlock:
                yield item
                continue
            if pending and (len(pending) == frames or size >= min(RELEASE_EVERY, limit)
                            or item.linktype != pending[0].linktype):
                yield FrameBlock.of(pending)
                pending, size = [], 0
            pending.append(item)
            size += len(item.data)
    except CaptureError:  # the frames read before the damage come first
        if pending:
            yield FrameBlock.of(pending)
        raise
    if pending:
        yield FrameBlock.of(pending)


def _items(source: str | Path | BinaryIO, frames: int, block_bytes: int = sys.maxsize
           ) -> Iterator[Frame | FrameBlock]:
    """The frames of a capture, pcap's in blocks, pcapng's one by one."""
    if isinstance(source, (str, Path)):
        if str(source) == "-":
            yield from _reader(_Source(b"", _raw_chunks(sys.stdin.buffer)), frames,
                               block_bytes)
            return
        with open(source, "rb") as stream:
            yield from _reader(_mapped(stream), frames, block_bytes)
        return
    yield from _reader(_Source(b"", _raw_chunks(source)), frames, block_bytes)


def _mapped(stream: BinaryIO) -> _Source:
    """The whole of a regular file, memory-mapped: frames are then views of the page
    cache, with no read or copy at all. Other files are read in chunks."""
    try:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty, a pipe or device, or no mmap here
        return _Source(b"", _raw_chunks(stream))
    # The map is not closed explicitly: frames handed out may still be views of it.
    return _Source(mapped, iter(()))


def _reader(source: _Source, frames: int, block_bytes: int = sys.maxsize
            ) -> Iterator[Frame | FrameBlock]:
    """The generator for the format ``source`` starts with (the caller iterates it
    directly: one generator less to pass every frame through)."""
    if source.ensure(2) and source.buf[:2] == _GZIP_MAGIC:
        source = _Source(b"", _gunzip(_pieces(source.view, source.chunks)))
    if not source.ensure(4):
        raise CaptureError("input too short to be a capture file" if source.buf else
                           "empty input: not a capture file")
    (magic,) = struct.unpack_from("<I", source.buf, 0)
    if magic in _PCAP_MAGIC:
        return _read_pcap(source, *_PCAP_MAGIC[magic], frames, block_bytes)
    if magic == _PCAPNG_SHB:
        return _read_pcapng(source)
    raise CaptureError(
        f"not a pcap or pcapng file (starts with {bytes(source.buf[:4]).hex()})", 0
    )


def _raw_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(CHUNK)
        except OSError as exc:  # e.g. EIO on a device; a read error ends the capture
            raise CaptureError(f"read error: {exc}") from exc
        if not chunk:
            return
        yield chunk


def _pieces(head: memoryview, chunks: Iterator[bytes]) -> Iterator[bytes | memoryview]:
    """``head`` (possibly a whole memory-mapped file) in CHUNK-sized pieces, then
    ``chunks``."""
    for start in range(0, len(head), CHUNK):
        yield head[start : start + CHUNK]
    yield from chunks


def _gunzip(pieces: Iterator[bytes | memoryview]) -> Iterator[bytes]:
    """Decompress gzip members (several may be concatenated). At most CHUNK bytes come
    out of each call, so that a small input cannot expand into one huge allocation, and
    at most CHUNK go in, so that what is left unconsumed is never copied at length."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    in_member = False
    pending: bytes | memoryview = b""
    try:
        while True:
            if not pending:
                pending = next(pieces, b"")
                if not pending:
                    break
            in_member = True
            out = inflater.decompress(pending, CHUNK)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                pending = inflater.unused_data
                inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                in_member = False
            if out:
                yield out
        out = inflater.flush()
    except zlib.error as exc:
        raise CaptureError(f"corrupt gzip data: {exc}") from exc
    if out:
        yield out
    if in_member and not inflater.eof:
        raise CaptureError("gzip data truncated")


class _Source:
    """The input as a sliding window of bytes: ``buf`` from ``pos`` on is unread.

    Readers index ``buf`` directly on the hot path and call :meth:`ensure` only when
    the window runs short, which refills it from the chunk iterator.
    """

    __slots__ = ("buf", "view", "pos", "base", "chunks", "release_at", "_released")

    def __init__(self, head: bytes | mmap.mmap, chunks: Iterator[bytes]) -> None:
        self.buf = head
        self.view = memoryview(head)
        self.pos = 0
        #: Input offset of ``buf[0]``.
        self.base = 0
        #: Where more input comes from.
        self.chunks = chunks
        #: Position past which :meth:`release` has pages to give back (never, unless
        #: the window is a memory map).
        mapped = isinstance(head, mmap.mmap) and hasattr(head, "madvise")
        self.release_at = RELEASE_EVERY if mapped else sys.maxsize
        self._released = 0

    def release(self) -> int:
        """Give back the pages of a memory-mapped file read so far, so that the resident
        size stays flat however long the file (read pages otherwise stay mapped, and
        count, until the map is closed). Frames handed out stay valid: the kernel reads
        a page back from the file if one is used again. Returns the next position to
        call it at."""
        start = self._released
        end = self.pos // mmap.PAGESIZE * mmap.PAGESIZE
        if end > start:
            try:
                self.buf.madvise(mmap.MADV_DONTNEED, start, end - start)
            except (OSError, ValueError, AttributeError):
                self.release_at = sys.maxsize  # not here: stop trying
                return self.release_at
            self._released = end
        self.release_at = self.pos + RELEASE_EVERY
        return self.release_at

    def ensure(self, size: int) -> bool:
        """Make at least ``size`` unread bytes available; False at end of input."""
        have = len(self.buf) - self.pos
        if have >= size:
            return True
        parts = [self.view[self.pos :]]
        while have < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        self.base += self.pos
        self.buf = b"".join(parts)
        self.view = memoryview(self.buf)
        self.pos = 0
        return have >= size

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def truncated(self, what: str, size: int) -> CaptureError:
        left = len(self.buf) - self.pos
        return CaptureError(f"capture truncated: {what} needs {size} bytes, {left} left",
                            self.offset)


# -- pcap --------------------------------------------------------------------------------


def _read_pcap(source: _Source, order: str, nanoseconds: bool, frames: int,
               block_bytes: int = sys.maxsize) -> Iterator[FrameBlock]:
    if not source.ensure(24):
        raise source.truncated("pcap file header", 24)
    _magic, major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
        order + "IHHiIII", source.buf, 0
    )
    if major != 2:
        raise CaptureError(f"pcap version {major} is not supported", 4)
    linktype = network & 0xFFFF  # the upper bits carry FCS information
    limit = min(MAX_RECORD, max(snaplen, 0xFFFF) + SNAPLEN_SLACK)
    frac_ns = 1 if nanoseconds else 1000
    record = struct.Struct(order + "IIII")
    unpack = record.unpack_from
    number = 0
    starts: list[int] = []
    ends: list[int] = []
    stamps: list[int] = []
    # The position is kept in a local and written back to ``source`` only when the
    # window must be refilled (or an error reported): this loop runs once per frame.
    # A block ends before the window moves (its frames are views of the window), and
    # past ``cut``: where the pages read are given back, or ``block_bytes`` on.
    pos, buf, view, size = 24, source.buf, source.view, len(source.buf)
    release = source.release_at
    cut = min(release, pos + block_bytes)
    while True:
        if size - pos < 16:
            if starts:
                yield FrameBlock(number - len(starts) + 1, linktype, view, starts, ends, stamps)
                starts, ends, stamps = [], [], []
            source.pos = pos
            if not source.ensure(16):
                if len(source.buf) == source.pos:
                    return
                raise source.truncated("pcap record header", 16)
            pos, buf, view, size = source.pos, source.buf, source.view, len(source.buf)
            cut = min(release, pos + block_bytes)
        seconds, frac, caplen, _wirelen = unpack(buf, pos)
        end = pos + 16 + caplen
        if caplen > limit or end > size:
            if starts:
                yield FrameBlock(number - len(starts) + 1, linktype, view, starts, ends, stamps)
                starts, ends, stamps = [], [], []
            source.pos = pos
            if caplen > limit:
                raise CaptureError(
                    f"bad pcap record header: captured length {caplen}, snaplen {snaplen}",
                    source.offset,
                )
            if not source.ensure(16 + caplen):
                raise source.truncated(f"pcap record of {caplen} bytes", 16 + caplen)
            pos, buf, view, size = source.pos, source.buf, source.view, len(source.buf)
            end = pos + 16 + caplen
            cut = min(release, pos + block_bytes)
        number += 1
        starts.append(pos + 16)
        ends.append(end)
        stamps.append(seconds * _NS_PER_S + frac * frac_ns)
        pos = end
        if len(starts) == frames or pos > cut:
            yield FrameBlock(number - len(starts) + 1, linktype, view, starts, ends, stamps)
            starts, ends, stamps = [], [], []
            if pos > release:  # a memory-mapped file: let go of the pages read
                source.pos = pos
                release = source.release()
            cut = min(release, pos + block_bytes)


# -- pcapng ------------------------------------------------------------------------------


class _Interface:
    """What an Interface Description Block says: link type and timestamp units."""

    __slots__ = ("linktype", "snaplen", "multiplier", "divisor", "offset_ns")

    def __init__(self, linktype: int, snaplen: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        # timestamp units -> ns is units * multiplier // divisor; default microseconds
        self.multiplier = 1000
        self.divisor = 1
        self.offset_ns = 0

    def set_resolution(self, code: int) -> None:
        """Apply an if_tsresol option: 10**-n seconds, or 2**-n when the top bit is set."""
        exponent = code & 0x7F
        if code & 0x80:
            self.multiplier, self.divisor = _NS_PER_S, 1 << exponent
        elif exponent <= 9:
            self.multiplier, self.divisor = 10 ** (9 - exponent), 1
        else:
            self.multiplier, self.divisor = 1, 10 ** (exponent - 9)


def _read_pcapng(source: _Source) -> Iterator[Frame]:
    order = "<"
    block_header = _BLOCK_HEADER[order]
    packet_block, trailer = _EPB_BLOCK[order], _TRAILER[order]
    interfaces: list[_Interface] = []
    number = 0
    while True:
        # The common case first: an enhanced packet block, whole in the window, of a
        # known interface, well formed. Anything else goes the general way below, which
        # checks the same things one by one and says what is wrong.
        pos, buf = source.pos, source.buf
        if len(buf) - pos >= _EPB_MIN:
            block_type, length, if_id, high, low, caplen, _wirelen = packet_block.unpack_from(
                buf, pos)
            end = pos + length
            if (block_type == _EPB and _EPB_MIN <= length <= MAX_RECORD and not length % 4
                    and end <= len(buf) and if_id < len(interfaces)
                    and caplen <= length - _EPB_MIN
                    and trailer.unpack_from(buf, end - 4)[0] == length):
                source.pos = end
                interface = interfaces[if_id]
                time_ns = ((high << 32) | low) * interface.multiplier // interface.divisor
                time_ns += interface.offset_ns
                number += 1
                yield _new(Frame, (number, time_ns / _NS_PER_S, time_ns, interface.linktype,
                                   source.view[pos + _EPB_DATA : pos + _EPB_DATA + caplen]))
                if end > source.release_at:
                    source.release()
                continue
        if len(source.buf) - source.pos < 12 and not source.ensure(12):
            if len(source.buf) == source.pos:
                return
            raise source.truncated("pcapng block header", 12)
        pos, buf = source.pos, source.buf
        # The section header's type reads the same in both byte orders; its own byte
        # order, which the rest of the section follows, is given by the magic after it.
        block_type, length = block_header.unpack_from(buf, pos)
        if block_type == _PCAPNG_SHB:
            order = _section_byte_order(buf[pos + 8 : pos + 12], source.offset)
            block_header = _BLOCK_HEADER[order]
            packet_block, trailer = _EPB_BLOCK[order], _TRAILER[order]
            block_type, length = block_header.unpack_from(buf, pos)
            interfaces = []
        if length < 12 or length % 4 or length > MAX_RECORD:
            raise CaptureError(f"bad pcapng block length {length}", source.offset)
        if len(buf) - pos < length:
            if not source.ensure(length):
                raise source.truncated(f"pcapng block of {length} bytes", length)
            pos, buf = source.pos, source.buf
        end = pos + length
        if block_header.unpack_from(buf, end - 8)[1] != length:
            raise CaptureError("pcapng block's trailing length does not match", source.offset)
        source.pos = end
        body = pos + 8
        if block_type == _EPB or block_type == _OPB:
            if length < _EPB_MIN:
                raise CaptureError("pcapng packet block too short", pos + source.base)
            if block_type == _EPB:
                if_id, high, low, caplen, _wirelen = _EPB_FIELDS[order].unpack_from(buf, body)
            else:
                if_id, _drops, high, low, caplen, _wirelen = _OPB_FIELDS[order].unpack_from(
                    buf, body
                )
            data = body + _EPB_FIELDS[order].size  # (the same size for OPB's fields)
            interface = _interface(interfaces, if_id, pos + source.base)
            time_ns = ((high << 32) | low) * interface.multiplier // interface.divisor
            time_ns += interface.offset_ns
        elif block_type == _SPB:
            if length < 16:
                raise CaptureError("pcapng packet block too short", pos + source.base)
            interface = _interface(interfaces, 0, pos + source.base)
            data = body + 4
            # The captured length is implied: the original length, cut to the block.
            caplen = min(struct.unpack_from(order + "I", buf, body)[0], end - 4 - data)
            time_ns = 0  # simple packet blocks carry no timestamp
        else:
            if block_type == _IDB:
                interfaces.append(_parse_interface(buf, body, end - 4, order, pos + source.base))
            continue  # other blocks (statistics, name resolution, ...) are skipped
        if data + caplen > end - 4:
            raise CaptureError(
                f"pcapng packet of {caplen} bytes does not fit its block", pos + source.base
            )
        number += 1
        yield _new(Frame, (number, time_ns / _NS_PER_S, time_ns, interface.linktype,
                           source.view[data : data + caplen]))
        if source.pos > source.release_at:
            source.release()


_BLOCK_HEADER = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
#: An enhanced packet block's fields after the block header; the header and fields in
#: one (:data:`EPB_LAYOUT`, in either byte order); and a block's trailing length.
_EPB_FIELDS = {order: EPB_LAYOUT.with_order(order).part("interface_id").struct
               for order in "<>"}
_EPB_BLOCK = {order: EPB_LAYOUT.with_order(order).struct for order in "<>"}
_TRAILER = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_OPB_FIELDS = {"<": struct.Struct("<HHIIII"), ">": struct.Struct(">HHIIII")}


def _section_byte_order(magic: bytes, offset: int) -> str:
    """The byte order of a section, from its header block's byte-order magic."""
    if magic == _PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "little"):
        return "<"
    if magic == _PCAPNG_BYTE_ORDER_MAGIC.to_bytes(4, "big"):
        return ">"
    raise CaptureError("pcapng section header with a bad byte-order magic", offset)


def _interface(interfaces: list[_Interface], if_id: int, offset: int) -> _Interface:
    if if_id >= len(interfaces):
        raise CaptureError(f"pcapng packet on undeclared interface {if_id}", offset)
    return interfaces[if_id]


def _parse_interface(buf: bytes, body: int, end: int, order: str, offset: int) -> _Interface:
    if end - body < 8:
        raise CaptureError("pcapng interface block too short", offset)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, body)
    interface = _Interface(linktype, snaplen)
    for code, value in _options(buf, body + 8, end, order):
        if code == _OPT_TSRESOL and value:
            interface.set_resolution(value[0])
        elif code == _OPT_TSOFFSET and len(value) == 8:
            interface.offset_ns = struct.unpack(order + "q", value)[0] * _NS_PER_S
    return interface


def _options(buf: bytes, pos: int, end: int, order: str) -> Iterable[tuple[int, bytes]]:
    """The (code, value) options of a block; a malformed option list ends quietly, since
    options are informational and the block's own length was already validated."""
    option = struct.Struct(order + "HH")
    while pos + 4 <= end:
        code, size = option.unpack_from(buf, pos)
        if code == _OPT_END or pos + 4 + size > end:
            return
        yield code, bytes(buf[pos + 4 : pos + 4 + size])
        pos += 4 + (size + 3) // 4 * 4
