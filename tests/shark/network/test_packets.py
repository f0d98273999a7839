"""Link layers, IPv4/IPv6 and transports: frames built around real CA payloads."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from builders import LOCALHOST, capture, ethernet, ipv4, tcp, udp

from shark.capture.files import Frame, FrameBlock, LinkType, read_blocks, read_frames
from shark.network.packets import (
    MAX_PENDING_DATAGRAMS,
    TCP,
    UDP,
    Packet,
    PacketDecoder,
    TcpFlags,
    format_address,
)
from shark.network.segments import tcp_segments

# A search datagram: VERSION, then SEARCH for "DEMO:V".
SEARCH = (struct.pack("!HHHHII", 0, 0, 1, 13, 1, 1)
          + struct.pack("!HHHHII", 6, 8, 5, 13, 1, 1) + b"DEMO:V\0\0")
SRC6 = ipaddress.IPv6Address("fd00::1").packed
DST6 = ipaddress.IPv6Address("fd00::2").packed


def decode(linktype: int, data: bytes) -> Packet | None:
    return PacketDecoder().decode(Frame(7, 1.5, 1_500_000_000, linktype, memoryview(data)))


def udp_ipv4() -> bytes:
    return ipv4(UDP, udp(40000, 5064, SEARCH))


def check_udp(packet: Packet | None, src: bytes = LOCALHOST, dst: bytes = LOCALHOST) -> None:
    assert packet is not None
    assert (packet.src, packet.sport, packet.dst, packet.dport) == (src, 40000, dst, 5064)
    assert packet.transport == UDP and bytes(packet.payload) == SEARCH
    assert (packet.frame, packet.time) == (7, 1.5)


def ipv6(next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, SRC6, DST6) + payload


def extension(next_header: int, body: bytes = bytes(6)) -> bytes:
    """A hop-by-hop / routing / destination options header: (len+1)*8 bytes."""
    body += bytes(-(len(body) + 2) % 8)
    return bytes((next_header, (len(body) + 2) // 8 - 1)) + body


# -- link layers --------------------------------------------------------------------------


def test_ethernet_and_vlan_tags() -> None:
    check_udp(decode(LinkType.EN10MB, ethernet(udp_ipv4())))
    tagged = bytes(12) + b"\x81\x00\x00\x05\x08\x00" + udp_ipv4()
    check_udp(decode(LinkType.EN10MB, tagged))
    qinq = bytes(12) + b"\x88\xa8\x00\x05\x81\x00\x00\x06\x08\x00" + udp_ipv4()
    check_udp(decode(LinkType.EN10MB, qinq))


def test_ethernet_padding_is_not_payload() -> None:
    check_udp(decode(LinkType.EN10MB, ethernet(udp_ipv4()) + bytes(20)))


def test_non_ip_frames() -> None:
    assert decode(LinkType.EN10MB, ethernet(bytes(28), ethertype=0x0806)) is None  # ARP
    assert decode(LinkType.EN10MB, bytes(10)) is None  # cut short
    assert decode(147, udp_ipv4()) is None  # a link type we do not know
    icmp = ipv4(1, bytes(8))
    assert decode(LinkType.RAW, icmp) is None


def test_linux_cooked_v1_and_v2() -> None:
    sll = struct.pack("!HHH8sH", 0, 772, 6, bytes(8), 0x0800) + udp_ipv4()
    check_udp(decode(LinkType.LINUX_SLL, sll))
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, bytes(8)) + udp_ipv4()
    check_udp(decode(LinkType.LINUX_SLL2, sll2))


@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_loopback_both_byte_orders(order: str) -> None:
    check_udp(decode(LinkType.NULL, struct.pack(order + "I", 2) + udp_ipv4()))
    for family in (10, 24, 28, 30):
        packet = decode(LinkType.NULL, struct.pack(order + "I", family) + ipv6(17, udp(
            40000, 5064, SEARCH)))
        check_udp(packet, SRC6, DST6)
    assert decode(LinkType.NULL, struct.pack(order + "I", 7) + udp_ipv4()) is None


def test_loop_and_raw() -> None:
    check_udp(decode(LinkType.LOOP, struct.pack(">I", 2) + udp_ipv4()))
    check_udp(decode(LinkType.RAW, udp_ipv4()))
    check_udp(decode(LinkType.IPV4, udp_ipv4()))
    v6 = ipv6(17, udp(40000, 5064, SEARCH))
    check_udp(decode(LinkType.RAW, v6), SRC6, DST6)
    check_udp(decode(LinkType.IPV6, v6), SRC6, DST6)


# -- IP -------------------------------------------------------------------------------


def test_ipv4_options_and_tcp() -> None:
    segment = tcp(5064, 40000, 1000, SEARCH, TcpFlags.ACK | TcpFlags.PSH)
    packet = decode(LinkType.RAW, ipv4(TCP, segment, options=b"\x01\x01\x01\x00"))
    assert packet is not None and packet.transport == TCP
    assert (packet.seq, packet.flags, bytes(packet.payload)) == (
        1000, TcpFlags.ACK | TcpFlags.PSH, SEARCH)


def test_ipv4_total_length_zero_and_snaplen_cut() -> None:
    whole = udp_ipv4()
    tso = whole[:2] + b"\0\0" + whole[4:]  # segmentation offload leaves the length 0
    check_udp(decode(LinkType.RAW, tso))
    cut = decode(LinkType.RAW, whole[:-8])  # the datagram cut by the snaplen
    assert cut is not None and bytes(cut.payload) == SEARCH[:-8]


def fragments(payload: bytes, size: int, ident: int = 99) -> list[bytes]:
    """IPv4 fragments of a UDP datagram carrying ``payload``, ``size`` bytes each."""
    datagram = udp(40000, 5064, payload)
    pieces = []
    for offset in range(0, len(datagram), size):
        more = 0x2000 if offset + size < len(datagram) else 0
        pieces.append(ipv4(UDP, datagram[offset : offset + size], ident=ident,
                           fragment=more | offset // 8))
    return pieces


def test_ipv4_fragments_reassembled_in_any_order() -> None:
    payload = SEARCH * 50
    pieces = fragments(payload, 512)
    decoder = PacketDecoder()
    order = [2, 0, 3, 1] + list(range(4, len(pieces)))
    results = [decoder.decode(Frame(n, 0.0, 0, LinkType.RAW, memoryview(pieces[i])))
               for n, i in enumerate(order, 1)]
    assert all(r is None for r in results[:-1])
    assert bytes(results[-1].payload) == payload and results[-1].dport == 5064
    assert results[-1].frame == len(pieces)


def test_ipv4_fragments_bounded() -> None:
    decoder = PacketDecoder()
    for ident in range(MAX_PENDING_DATAGRAMS + 10):  # first fragments only: never complete
        frame = Frame(1, 0.0, 0, LinkType.RAW, memoryview(fragments(SEARCH * 10, 64, ident)[0]))
        assert decoder.decode(frame) is None
    assert len(decoder._fragments) == MAX_PENDING_DATAGRAMS
    assert decoder.fragments_dropped == 10
    bogus = ipv4(UDP, bytes(16), fragment=0x2000 | 8190)  # reaching past 65535 bytes
    assert decoder.decode(Frame(1, 0.0, 0, LinkType.RAW, memoryview(bogus))) is None


def test_ipv6_extension_headers() -> None:
    body = udp(40000, 5064, SEARCH)
    # hop-by-hop (0) -> routing (43) -> destination options (60) -> UDP (17)
    chain = extension(43) + extension(60, bytes(14)) + extension(17)
    check_udp(decode(LinkType.RAW, ipv6(0, chain + body)), SRC6, DST6)


def test_ipv6_fragments() -> None:
    datagram = udp(40000, 5064, SEARCH * 20)
    decoder = PacketDecoder()
    result = None
    for offset in range(0, len(datagram), 256):
        more = 1 if offset + 256 < len(datagram) else 0
        header = struct.pack("!BBHI", 17, 0, offset | more, 0xABCD)
        frame = ipv6(60, extension(44) + header + datagram[offset : offset + 256])
        result = decoder.decode(Frame(1, 0.0, 0, LinkType.RAW, memoryview(frame)))
    assert result is not None and bytes(result.payload) == SEARCH * 20
    atomic = ipv6(44, struct.pack("!BBHI", 17, 0, 0, 1) + datagram)  # offset 0, no more
    assert bytes(decode(LinkType.RAW, atomic).payload) == SEARCH * 20


def test_format_address() -> None:
    assert format_address(LOCALHOST) == "127.0.0.1"
    assert format_address(SRC6) == "fd00::1"


def test_every_corpus_frame_decodes() -> None:
    """All frames of the corpus are UDP or TCP over IPv4, ICMP errors aside."""
    for name in ("ca_two_clients_two_iocs.pcapng", "ca_unanswered_searches.pcap"):
        decoder = PacketDecoder()
        frames = list(read_frames(capture(name)))
        assert all(decoder.decode(f) is not None for f in frames)


# -- a block's TCP headers at once -------------------------------------------------------

REMOTE = bytes((10, 1, 2, 3))


def _segment(payload: bytes = b"xyzw", **kw: int) -> bytes:
    return ipv4(TCP, tcp(40000, 5064, 0x89ABCDEF, payload, ack=0xFEDCBA98, **kw),
                src=REMOTE)


#: Per link type, its header before an IPv4 packet.
LINK_HEADERS = {
    LinkType.EN10MB: lambda ip: ethernet(ip),
    LinkType.LINUX_SLL: lambda ip: bytes(14) + b"\x08\x00" + ip,
    LinkType.LINUX_SLL2: lambda ip: b"\x08\x00" + bytes(18) + ip,
    LinkType.NULL: lambda ip: struct.pack("<I", 2) + ip,
    LinkType.LOOP: lambda ip: struct.pack(">I", 2) + ip,
    LinkType.RAW: lambda ip: ip,
    LinkType.IPV4: lambda ip: ip,
}


def _odd_segments(link) -> list[bytes]:  # noqa: ANN001
    """Frames of every shape: plain, flagged, with options, fragments, cut short,
    with padding after the datagram or a zero total length (segmentation offload),
    a TCP header longer than the datagram, UDP, IPv6, VLAN tags, garbage."""
    plain = _segment()
    return [
        link(plain), link(_segment(b"")), link(_segment(flags=0x18)), link(_segment(flags=0x02)),
        link(_segment(b"a" * 1000)), link(plain + b"\0" * 6),
        link(plain[:2] + b"\0\0" + plain[4:]),  # total length 0
        link(plain[:2] + struct.pack("!H", 30) + plain[4:]),  # cut inside the TCP header
        link(ipv4(TCP, tcp(1, 2, 3, b"opts"), options=b"\x01" * 4)),
        link(ipv4(TCP, tcp(1, 2, 3, b"frag"), fragment=0x2000)),
        link(ipv4(TCP, tcp(1, 2, 3, b"frag"), fragment=0x4000)),  # don't fragment: fine
        link(ipv4(UDP, udp(40000, 5064, SEARCH))), link(ipv6(TCP, tcp(1, 2, 3, b"six"))),
        link(plain)[:30], link(plain)[:-2], bytes(12) + b"\x81\x00\x00\x05\x08\x00" + plain,
        link(plain[:12] + bytes(8) + plain[20:]), b"\xff" * 70, link(plain[:32] + b"\x30"
                                                                      + plain[33:]),
    ]


@pytest.mark.parametrize("linktype", list(LINK_HEADERS), ids=str)
def test_block_segments_are_the_decoders(linktype: int) -> None:
    """What :func:`shark.network.segments.tcp_segments` reads of a frame is what the decoder
    reads of it; it leaves the other shapes to the decoder."""
    frames = _odd_segments(LINK_HEADERS[linktype])
    block = FrameBlock.of([Frame(n, n / 10, n * 100_000_000, linktype, memoryview(data))
                           for n, data in enumerate(frames, 1)])
    segments = tcp_segments(block)
    assert segments is not None
    read = [i for i, connection in enumerate(segments.connection) if connection >= 0]
    # Plain, bare ACK, PSH, SYN, large, padded, total length 0, DF, cut by the snaplen
    # inside the payload, addresses zero.
    assert read == [0, 1, 2, 3, 4, 5, 6, 10, 14, 16]
    frames = list(block.frames())
    for i in read:
        packet = PacketDecoder().decode(frames[i])
        assert packet is not None, i
        connection = segments.connection[i]
        assert segments.addresses[connection] == (packet.src, packet.sport, packet.dst,
                                                  packet.dport)
        assert (segments.seq[i], segments.ack[i], segments.flags[i]) == (
            packet.seq, packet.ack, packet.flags)
        assert block.view[segments.start[i] : segments.end[i]] == packet.payload, i


def test_block_segments_of_real_captures() -> None:
    """Every TCP frame of real captures (Ethernet and Linux cooked), read both ways."""
    for name in ("ca_two_clients_two_iocs.pcapng", "ca_monitors_100hz.pcap"):
        for block in read_blocks(capture(name), 500):
            segments = tcp_segments(block)
            assert segments is not None
            for i, frame in enumerate(block.frames()):
                packet = PacketDecoder().decode(frame)
                if packet is None or packet.transport != TCP:
                    assert segments.connection[i] < 0
                    continue
                connection = segments.connection[i]
                assert connection >= 0
                assert segments.addresses[connection] == (packet.src, packet.sport,
                                                          packet.dst, packet.dport)
                assert (segments.seq[i], segments.ack[i], segments.flags[i]) == (
                    packet.seq, packet.ack, packet.flags)
                assert block.view[segments.start[i] : segments.end[i]] == packet.payload
