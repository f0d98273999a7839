"""From captured frames to UDP datagrams and TCP segments.

:class:`PacketDecoder` peels the link layer (Ethernet with 802.1Q/802.1ad tags, Linux
cooked v1 and v2, BSD loopback, raw IP), IPv4 (options, fragments) and IPv6 (extension
headers, fragments), and returns a :class:`Packet` for every UDP datagram or TCP
segment; anything else (ARP, ICMP, other protocols, frames too short to parse) gives
``None``. Fragments are reassembled with bounded memory: at most
:data:`MAX_PENDING_DATAGRAMS` incomplete datagrams are held, the oldest dropped first.
A datagram given up (evicted, inconsistent, not completed within
:data:`FRAGMENT_TIMEOUT` seconds of capture time, or still incomplete at the end of the
capture) becomes a :class:`LostDatagram` in :attr:`PacketDecoder.lost`, so that the
bytes its fragments brought can be reported rather than vanish. Datagrams are given
up only while decoding a fragment, for which :meth:`PacketDecoder.decode` returns None,
and by :meth:`PacketDecoder.flush`: a reader need look at ``lost`` only then.

Headers are read with one ``struct.unpack_from`` each from the frame's memoryview; the
payload is a memoryview slice, never a copy (except for reassembled fragments).
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from shark.capture.files import Frame, LinkType
from shark.network.headers import IPV4_HEADER, TCP_HEADER, UDP_HEADER

__all__ = [
    "FRAGMENT_TIMEOUT",
    "MAX_PENDING_DATAGRAMS",
    "LostDatagram",
    "TCP",
    "UDP",
    "Packet",
    "PacketDecoder",
    "TcpFlags",
    "format_address",
]

TCP = 6
UDP = 17

#: Incomplete fragmented datagrams held at once, all flows together.
MAX_PENDING_DATAGRAMS = 256
#: Seconds of capture time a fragmented datagram may take to complete (Linux's
#: ``ipfrag_time``); checked when a fragment of another datagram arrives.
FRAGMENT_TIMEOUT = 30.0
#: An IP datagram cannot be larger; fragments claiming to reach past it are bogus.
_MAX_DATAGRAM = 65535


class TcpFlags:
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10


class Packet(NamedTuple):
    """A UDP datagram or TCP segment, with where and when it was captured."""

    frame: int
    time: float
    #: Raw IP address: 4 bytes (IPv4) or 16 (IPv6); see :func:`format_address`.
    src: bytes
    sport: int
    dst: bytes
    dport: int
    #: :data:`TCP` or :data:`UDP`.
    transport: int
    #: TCP sequence and acknowledgement numbers, and flags (see :class:`TcpFlags`); 0
    #: for UDP.
    seq: int
    ack: int
    flags: int
    #: The transport payload, as captured (a TCP segment cut by the snaplen is short).
    payload: memoryview


class LostDatagram(NamedTuple):
    """A fragmented IP datagram given up before all its fragments came."""

    #: Frame number and time of the latest fragment received.
    frame: int
    time: float
    src: bytes
    dst: bytes
    #: The transport protocol (:data:`UDP`, :data:`TCP`, ...).
    protocol: int
    #: Ports, when the first fragment (which holds the UDP or TCP header) came; else None.
    sport: int | None
    dport: int | None
    #: Bytes of the datagram's IP payload that the fragments received covered, and its
    #: length if known (from the last fragment, or the UDP header's length field).
    seen: int
    size: int | None
    #: Why it was given up: "timeout", "evicted", "inconsistent" or "end of capture".
    reason: str


def format_address(address: bytes) -> str:
    """Dotted IPv4 or RFC 5952 IPv6 text of a raw address."""
    if len(address) == 4:
        return socket.inet_ntop(socket.AF_INET, address)
    return socket.inet_ntop(socket.AF_INET6, address)


#: Named tuples built with ``tuple.__new__`` directly: half the cost of the class call.
_new = tuple.__new__

_EN10MB = LinkType.EN10MB
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100))
#: Address family values of BSD loopback headers: AF_INET is 2 everywhere, AF_INET6
#: differs (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30).
_AF_INET = 2
_AF_INET6 = frozenset((10, 24, 28, 30))

#: The headers (:mod:`shark.network.headers`), read from the fields they are read for.
_IPV4_AT = IPV4_HEADER.offsets["total_length"]
_IPV4 = IPV4_HEADER.part("total_length").struct
_IPV4_SIZE = IPV4_HEADER.size  # without options
_IPV6 = struct.Struct("!HBB16s16s")  # from the payload length on
_UDP = UDP_HEADER.part("sport", "length").struct
_UDP_SIZE = UDP_HEADER.size
_PORTS = struct.Struct("!HH")  # the ports that begin both UDP and TCP headers
_TCP = TCP_HEADER.part("sport", "offset_flags").struct
_TCP_SIZE = TCP_HEADER.size  # without options
_ETHERNET_SIZE = 14
#: From the ethertype to the TCP flags, in as few fields as will do (each costs an
#: object): ethertype, IP version, header length and TOS; total length; fragment field,
#: TTL and protocol; addresses; ports; sequence and acknowledgement numbers; TCP data
#: offset and flags.
_ETHERNET_IPV4_TCP = struct.Struct("!IH2xI2x4s4sHHIIH")
# (the same IPv4 and TCP fields, merged: from the ethertype's 2 bytes on)
assert _ETHERNET_IPV4_TCP.size == 2 + _IPV4_SIZE + _TCP.size
_TCP_AT = _ETHERNET_SIZE + _IPV4_SIZE  # in an Ethernet frame, after an IPv4 header
_PAYLOAD_AT = _TCP_AT + _TCP_SIZE  # after TCP without options

#: IPv6 extension headers skipped on the way to the transport header, with how their
#: length field counts: (hdr_ext_len + 1) * 8 bytes, AH's (payload_len + 2) * 4.
_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_FRAGMENT, _IPV6_DEST_OPTS, _IPV6_AH = 0, 43, 44, 60, 51
_IPV6_SKIPPED = frozenset((_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_DEST_OPTS))


class PacketDecoder:
    """Decodes frames into packets; holds the fragment reassembly state."""

    __slots__ = ("_fragments", "fragments_dropped", "lost")

    def __init__(self) -> None:
        self._fragments: dict[tuple, _Datagram] = {}
        #: Incomplete datagrams given up (evicted, inconsistent or timed out).
        self.fragments_dropped = 0
        #: Those datagrams, until the reader takes them (see the module documentation).
        self.lost: list[LostDatagram] = []

    def flush(self) -> list[LostDatagram]:
        """End of capture: give up every incomplete datagram; return (and forget) every
        datagram given up and not yet taken."""
        for key in list(self._fragments):
            self._give_up(key, "end of capture")
        return self.take_lost()

    def take_lost(self) -> list[LostDatagram]:
        """The datagrams given up since the last call."""
        lost, self.lost = self.lost, []
        return lost

    def decode(self, frame: Frame) -> Packet | None:
        """The UDP datagram or TCP segment in ``frame``, or None."""
        number, time, _ns, linktype, data = frame
        try:
            if linktype == _EN10MB:
                if len(data) >= 48:
                    # The common case in one unpack: Ethernet without tags, IPv4 without
                    # options or fragments, TCP.
                    (link_ip, total, fragment_proto, src, dst, sport, dport, seq, ack,
                     offset_flags) = _ETHERNET_IPV4_TCP.unpack_from(data, 12)
                    if (link_ip >> 8 == 0x080045 and fragment_proto & 0xFF == TCP
                            and not fragment_proto & 0x3FFF0000):
                        end = _ETHERNET_SIZE + total
                        if total < _IPV4_SIZE or end > len(data):
                            end = len(data)
                        start = _TCP_AT + (offset_flags >> 12) * 4
                        if start < _PAYLOAD_AT or start > end:
                            return None
                        return _new(Packet, (number, time, src, sport, dst, dport, TCP, seq,
                                             ack, offset_flags & 0x1FF, data[start:end]))
                if data[12] == 8 and data[13] == 0:
                    version, offset = 4, 14
                else:
                    version, offset = _link(linktype, data)
            else:
                version, offset = _link(linktype, data)
            if version == 4:
                return self._ipv4(frame, data, offset)
            if version == 6:
                return self._ipv6(frame, data, offset)
        except (struct.error, IndexError):  # a header cut short by the snaplen
            pass
        return None

    def _ipv4(self, frame: Frame, data: memoryview, offset: int) -> Packet | None:
        header_len = (data[offset] & 0x0F) * 4
        if header_len < _IPV4_SIZE:
            return None
        total, ident, fragment, _ttl, proto, _sum, src, dst = _IPV4.unpack_from(
            data, offset + _IPV4_AT)
        end = offset + total
        if total < header_len or end > len(data):
            # 0 with TCP segmentation offload, or more than captured: use what is there
            end = len(data)
        start = offset + header_len
        if fragment & 0x3FFF:  # more-fragments flag or a fragment offset
            payload = self._reassemble(
                (src, dst, ident, proto), (fragment & 0x1FFF) * 8, fragment & 0x2000,
                data[start:end], frame,
            )
            if payload is None:
                return None
            data, start, end = memoryview(payload), 0, len(payload)
        return _transport(frame, proto, src, dst, data, start, end)

    def _ipv6(self, frame: Frame, data: memoryview, offset: int) -> Packet | None:
        length, proto, _hops, src, dst = _IPV6.unpack_from(data, offset + 4)
        start = offset + 40
        end = start + length
        if end > len(data) or not length:  # jumbogram (0) or cut by the snaplen
            end = len(data)
        while proto in _IPV6_SKIPPED or proto == _IPV6_AH or proto == _IPV6_FRAGMENT:
            following = data[start]
            if proto == _IPV6_FRAGMENT:
                fragment, ident = struct.unpack_from("!HI", data, start + 2)
                start += 8
                if fragment & 0xFFF9:  # an offset or the more-fragments flag
                    payload = self._reassemble(
                        (src, dst, ident, following), fragment & 0xFFF8, fragment & 1,
                        data[start:end], frame,
                    )
                    if payload is None:
                        return None
                    data, start, end = memoryview(payload), 0, len(payload)
            elif proto == _IPV6_AH:
                start += (data[start + 1] + 2) * 4
            else:
                start += (data[start + 1] + 1) * 8
            proto = following
        return _transport(frame, proto, src, dst, data, start, end)

    def _reassemble(
        self, key: tuple, offset: int, more: int, piece: memoryview, frame: Frame
    ) -> bytes | None:
        """Add a fragment; return the whole payload once every piece is in."""
        fragments = self._fragments
        datagram = fragments.get(key)
        if datagram is None:
            if fragments:
                self._expire(frame.time)
            if len(fragments) >= MAX_PENDING_DATAGRAMS:
                self._give_up(next(iter(fragments)), "evicted")  # the oldest: dicts keep
                # insertion order
            datagram = fragments[key] = _Datagram(frame.time)
        datagram.frame, datagram.time = frame.number, frame.time
        end = offset + len(piece)
        datagram.pieces.append((offset, bytes(piece)))
        if end > _MAX_DATAGRAM or (datagram.total is not None and end > datagram.total):
            self._give_up(key, "inconsistent")
            return None
        if not more:
            datagram.total = end
        payload = datagram.assemble()
        if payload is not None:
            del fragments[key]
        return payload

    def _expire(self, now: float) -> None:
        """Give up the datagrams begun more than :data:`FRAGMENT_TIMEOUT` ago (in the
        order they began, which is the dict's)."""
        fragments = self._fragments
        expired = []
        for key, datagram in fragments.items():
            if datagram.start > now - FRAGMENT_TIMEOUT:
                break
            expired.append(key)
        for key in expired:
            self._give_up(key, "timeout")

    def _give_up(self, key: tuple, reason: str) -> None:
        datagram = self._fragments.pop(key)
        self.fragments_dropped += 1
        src, dst, _ident, protocol = key
        sport = dport = None
        size = datagram.total
        for offset, piece in datagram.pieces:
            if offset == 0 and len(piece) >= 4 and protocol in (TCP, UDP):
                sport, dport = _PORTS.unpack_from(piece)
                if protocol == UDP and size is None and len(piece) >= _UDP_SIZE:
                    size = _UDP.unpack_from(piece)[2] or None
        self.lost.append(LostDatagram(datagram.frame, datagram.time, src, dst, protocol,
                                      sport, dport, datagram.covered(), size, reason))


class _Datagram:
    """The fragments of one IP datagram received so far."""

    __slots__ = ("total", "pieces", "start", "frame", "time")

    def __init__(self, start: float) -> None:
        #: Payload length, known once the last fragment (no more-fragments flag) is in.
        self.total: int | None = None
        self.pieces: list[tuple[int, bytes]] = []
        #: Capture time of the first fragment received; frame and time of the latest.
        self.start = start
        self.frame = 0
        self.time = start

    def covered(self) -> int:
        """Bytes of the payload the pieces received cover, each counted once."""
        covered = end = 0
        for offset, piece in sorted(self.pieces):
            stop = offset + len(piece)
            if stop > end:
                covered += stop - max(offset, end)
                end = stop
        return covered

    def assemble(self) -> bytes | None:
        """The payload if the pieces cover it without a hole; where pieces overlap, the
        later one in offset order wins (the IP specification leaves it open)."""
        if self.total is None:
            return None
        covered = 0
        for offset, piece in sorted(self.pieces):
            if offset > covered:
                return None
            covered = max(covered, offset + len(piece))
        if covered < self.total:
            return None
        payload = bytearray(self.total)
        for offset, piece in sorted(self.pieces):
            payload[offset : offset + len(piece)] = piece
        return bytes(payload)


def _link(linktype: int, data: memoryview) -> tuple[int, int]:
    """(IP version, offset of the IP header) of a frame; version 0 if it is not IP."""
    if linktype == LinkType.EN10MB:
        ethertype = (data[12] << 8) | data[13]
        offset = 14
        while ethertype in _VLAN_TAGS:
            ethertype = (data[offset + 2] << 8) | data[offset + 3]
            offset += 4
        return _ETHERTYPE_VERSION.get(ethertype, 0), offset
    if linktype == LinkType.LINUX_SLL:
        return _ETHERTYPE_VERSION.get((data[14] << 8) | data[15], 0), 16
    if linktype == LinkType.LINUX_SLL2:
        return _ETHERTYPE_VERSION.get((data[0] << 8) | data[1], 0), 20
    if linktype == LinkType.NULL or linktype == LinkType.LOOP:
        # NULL's family is in the byte order of the machine that captured, LOOP's in
        # network order; every family value fits in 16 bits, so the order shows.
        family = int.from_bytes(data[:4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        if family == _AF_INET:
            return 4, 4
        return (6 if family in _AF_INET6 else 0), 4
    if linktype == LinkType.RAW:
        return data[0] >> 4, 0
    if linktype == LinkType.IPV4:
        return 4, 0
    if linktype == LinkType.IPV6:
        return 6, 0
    return 0, 0


_ETHERTYPE_VERSION = {_ETHERTYPE_IPV4: 4, _ETHERTYPE_IPV6: 6}


def _transport(
    frame: Frame, proto: int, src: bytes, dst: bytes, data: memoryview, start: int, end: int
) -> Packet | None:
    if proto == TCP:
        sport, dport, seq, ack, offset_flags = _TCP.unpack_from(data, start)
        header_len = (offset_flags >> 12) * 4
        if header_len < _TCP_SIZE or start + header_len > end:
            return None
        return _new(Packet, (frame.number, frame.time, src, sport, dst, dport, TCP, seq, ack,
                             offset_flags & 0x1FF, data[start + header_len : end]))
    if proto == UDP:
        sport, dport, length = _UDP.unpack_from(data, start)
        if _UDP_SIZE <= length <= end - start:
            end = start + length  # drop link-layer padding after the datagram
        return _new(Packet, (frame.number, frame.time, src, sport, dst, dport, UDP, 0, 0, 0,
                             data[start + _UDP_SIZE : end]))
    return None
