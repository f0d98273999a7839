"""The TCP segments of a block of frames, their headers read all at once.

:class:`shark.network.packets.PacketDecoder` reads a frame's headers with one
``struct.unpack_from``, and makes a :class:`shark.network.packets.Packet` of it: a few
microseconds a frame, more than all the rest for a capture of monitor updates, where
nearly every frame is the next TCP segment of a server. :func:`tcp_segments` reads
the headers of a whole :class:`shark.capture.files.FrameBlock` with numpy instead, for the
frames whose shape is the common one: IPv4 without options or fragments, carrying
TCP, on a link layer that has no variable part (Ethernet without VLAN tags, Linux
cooked v1 and v2, BSD loopback, raw IPv4). Fields, payload bounds and the frames left
out are exactly those of the decoder: a frame left out (``connection`` -1) is for the
decoder to read, whatever it is.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from shark.capture.files import FrameBlock, LinkType
from shark.network.headers import IPV4_HEADER, TCP_HEADER
from shark.network.packets import TcpFlags

__all__ = ["Segments", "tcp_segments"]

#: Per link type: where the IP header starts, and the bytes before it that say IPv4
#: ((offset, value) pairs; for BSD loopback, either of two byte orders).
_LINKS: dict[int, tuple[int, tuple[tuple[tuple[int, int], ...], ...]]] = {
    LinkType.EN10MB: (14, (((12, 0x08), (13, 0x00)),)),
    LinkType.LINUX_SLL: (16, (((14, 0x08), (15, 0x00)),)),
    LinkType.LINUX_SLL2: (20, (((0, 0x08), (1, 0x00)),)),
    LinkType.NULL: (4, (((0, 2), (1, 0), (2, 0), (3, 0)), ((0, 0), (1, 0), (2, 0), (3, 2)))),
    LinkType.LOOP: (4, (((0, 2), (1, 0), (2, 0), (3, 0)), ((0, 0), (1, 0), (2, 0), (3, 2)))),
    LinkType.RAW: (0, ()),  # (the version nibble is checked with the header length)
    LinkType.IPV4: (0, ()),
}
_IPV4_TCP = 6
#: Header fields read here, by offset (:mod:`shark.network.headers`).
_IP = IPV4_HEADER.offsets
_VERSION_IHL, _TOTAL, _FRAGMENT, _PROTOCOL, _ADDRESSES = (
    _IP["version_ihl"], _IP["total_length"], _IP["fragment"], _IP["protocol"], _IP["src"])
_IPV4_SIZE = IPV4_HEADER.size
_TCP = TCP_HEADER.offsets
_PORTS, _SEQ, _ACK, _OFFSET_FLAGS = _TCP["sport"], _TCP["seq"], _TCP["ack"], _TCP["offset_flags"]
_TCP_SIZE = TCP_HEADER.size
_SYN_FIN_RST = TcpFlags.SYN | TcpFlags.FIN | TcpFlags.RST


class Segments:
    """The TCP segments of a block, a list entry per frame: ``connection`` (an index
    into ``addresses``, -1 for frames left to the decoder), sequence and
    acknowledgement numbers, flags, and where the payload is in the block's view.
    ``addresses`` are (src, sport, dst, dport) as :class:`shark.network.reassembly.TcpReassembler`
    keys them.

    ``stretches`` cut the frames into stretches (the first frame of each, then the
    number of frames): a stretch is consecutive frames that carry one direction's
    next payload bytes, one after the other, with the same acknowledgement number and
    no SYN, FIN or RST (a server sending updates, most often), so that a reader can
    take the whole of it as the next bytes once it has checked its first frame; every
    other frame is a stretch of its own."""

    __slots__ = ("connection", "seq", "ack", "flags", "start", "end", "addresses",
                 "stretches")

    def __init__(self, connection: list[int], seq: list[int], ack: list[int],
                 flags: list[int], start: list[int], end: list[int],
                 addresses: list[tuple[bytes, int, bytes, int]], stretches: list[int]
                 ) -> None:
        self.connection = connection
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.start = start
        self.end = end
        self.addresses = addresses
        self.stretches = stretches


def tcp_segments(block: FrameBlock) -> Segments | None:
    """The segments of ``block``; None when its link type is not one read here."""
    link = _LINKS.get(block.linktype)
    if link is None or not len(block):
        return None
    ip, markers = link
    tcp = ip + _IPV4_SIZE
    data = np.frombuffer(block.view, np.uint8)
    starts = np.array(block.starts, dtype=np.int64)
    caplen = np.array(block.ends, dtype=np.int64) - starts
    whole = caplen >= tcp + _TCP_SIZE
    # Frames too short are read at the buffer's start instead (and left out).
    base = np.where(whole, starts, 0)
    if len(data) < tcp + _TCP_SIZE:
        return None
    head = sliding_window_view(data, tcp + _TCP_SIZE)[base]  # (rows copied, no index per byte)
    keep = whole & (head[:, ip + _VERSION_IHL] == 0x45) & (head[:, ip + _PROTOCOL] == _IPV4_TCP)
    keep &= ((head[:, ip + _FRAGMENT] & 0x3F) == 0) & (head[:, ip + _FRAGMENT + 1] == 0)
    if markers:
        keep &= np.logical_or.reduce([np.logical_and.reduce([head[:, at] == value
                                                             for at, value in marker])
                                      for marker in markers])
    words = head.astype(np.int64)
    total = words[:, ip + _TOTAL] << 8 | words[:, ip + _TOTAL + 1]
    end = np.where((total < _IPV4_SIZE) | (ip + total > caplen), caplen, ip + total)
    header = (words[:, tcp + _OFFSET_FLAGS] >> 4) * 4
    keep &= (header >= _TCP_SIZE) & (tcp + header <= end)
    seq = _u32(words, tcp + _SEQ)
    ack = _u32(words, tcp + _ACK)
    flags = (words[:, tcp + _OFFSET_FLAGS] & 1) << 8 | words[:, tcp + _OFFSET_FLAGS + 1]
    # A connection's direction: addresses (src, dst) and ports (sport, dport) as 12 bytes.
    keys = np.ascontiguousarray(np.concatenate(
        (head[:, ip + _ADDRESSES : ip + _ADDRESSES + 8], head[:, tcp + _PORTS : tcp + _PORTS + 4]),
        axis=1)).view("V12").ravel()
    distinct, connection = np.unique(keys[keep], return_inverse=True)
    index = np.full(len(keys), -1, dtype=np.int64)
    index[keep] = connection.ravel()
    addresses = [(raw[0:4], raw[8] << 8 | raw[9], raw[4:8], raw[10] << 8 | raw[11])
                 for raw in (key.tobytes() for key in distinct)]
    first = starts + tcp + header
    return Segments(index.tolist(), seq.tolist(), ack.tolist(), flags.tolist(),
                    first.tolist(), (starts + end).tolist(), addresses,
                    _stretches(index, seq, ack, flags, end + starts - first))


def _stretches(connection: np.ndarray, seq: np.ndarray, ack: np.ndarray, flags: np.ndarray,
               size: np.ndarray) -> list[int]:
    """Where each stretch of :class:`Segments` begins, then the number of frames."""
    carries = (connection >= 0) & (size > 0) & (flags & _SYN_FIN_RST == 0)
    follows = (carries[1:] & carries[:-1] & (connection[1:] == connection[:-1])
               & (seq[1:] == (seq[:-1] + size[:-1]) & 0xFFFFFFFF) & (ack[1:] == ack[:-1]))
    return [0, *(np.flatnonzero(~follows) + 1).tolist(), len(connection)]


def _u32(words: np.ndarray, at: int) -> np.ndarray:
    """The big-endian 32-bit field at byte ``at`` of each row."""
    return (words[:, at] << 24 | words[:, at + 1] << 16 | words[:, at + 2] << 8
            | words[:, at + 3])
