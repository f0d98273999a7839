"""Which traffic is CA and who sent it (UDP rules, learned ports, roles), and the
resynchronisation heuristic on real streams."""

from __future__ import annotations

import struct
from collections import Counter

from builders import capture, ipv4, manifest, udp

import shark
from decoder import Role
from decoder.messages import decode_header
from shark.capture.files import Frame, LinkType, read_frames
from shark.extract.reader import CaReader
from shark.extract.resync import find_message_start, plausible_header
from shark.network.packets import UDP, PacketDecoder

BEACON = struct.pack("!HHHHII", 13, 0, 13, 5099, 1, 0)


def udp_frame(number: int, sport: int, dport: int, payload: bytes) -> Frame:
    data = ipv4(UDP, udp(sport, dport, payload))
    return Frame(number, float(number), number * 10**9, LinkType.IPV4, memoryview(data))


def udp_counts(frames: list[Frame]) -> Counter:
    return Counter(r.command for r in CaReader().records(frames) if r.transport == "udp")


def test_repeater_traffic_of_clients_seen_only_through_it() -> None:
    """With the client's own datagrams (registration, searches) missing from the
    capture, what the repeater forwards to it from ephemeral ports is still decoded: UDP
    rule 2, CA-shaped datagrams between hosts that speak CA."""
    path = capture("ca_server_restart.pcapng")
    server_port = 5086
    decoder = PacketDecoder()
    frames = []
    for frame in read_frames(path):
        packet = decoder.decode(frame)
        if packet and packet.transport == UDP and (
            server_port in (packet.sport, packet.dport)
            or (packet.dport == 5065 and not packet.payload)
        ):
            continue
        frames.append(frame)
    roles = manifest(path)["message_counts_by_command"]["udp_by_port_role"]
    expected = Counter(roles["other"]) + Counter(roles["to_repeater_port"])
    assert {str(k): v for k, v in udp_counts(frames).items()} == expected
    confirms = [r for r in CaReader().records(frames) if r.command == 17]  # REPEATER_CONFIRM
    assert len(confirms) == 2 and all(r.sender is Role.REPEATER for r in confirms)


def test_udp_roles() -> None:
    path = capture("caproto_cli_vs_softioc.pcap")
    roles = Counter((r.command_name, r.sender) for r in shark.read(path) if r.transport == "udp")
    assert roles["SEARCH", Role.CLIENT] == roles["SEARCH", Role.SERVER] == 10
    assert roles["REPEATER_REGISTER", Role.CLIENT] == 10
    assert roles["REPEATER_CONFIRM", Role.REPEATER] == 10
    assert roles["RSRV_IS_UP", Role.SERVER] + roles["RSRV_IS_UP", Role.REPEATER] == 12


def test_beacons_teach_the_server_port() -> None:
    reader = CaReader()
    list(reader.records([udp_frame(1, 40000, 5065, BEACON)]))
    assert 5099 in reader.server_ports


def test_udp_that_is_not_ca() -> None:
    dns = bytes.fromhex("abcd01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
    frames = [
        udp_frame(1, 40000, 5065, BEACON),  # makes 127.0.0.1 a CA host
        udp_frame(2, 41000, 53, dns),  # same host, not CA-shaped: ignored
        udp_frame(3, 41001, 5064, dns),  # to the CA port: reported
        udp_frame(4, 41002, 5065, b""),  # a registration: no message
    ]
    records = list(CaReader().records(frames))
    assert [(r.frame, r.kind) for r in records] == [(1, shark.MESSAGE), (3, shark.ERROR)]
    assert records[1].sender == Role.CLIENT and records[1].size == len(dns)


def test_truncated_datagram_keeps_the_messages_before() -> None:
    datagram = BEACON + BEACON[:10]
    records = list(CaReader().records([udp_frame(1, 40000, 5065, datagram)]))
    assert [r.kind for r in records] == [shark.MESSAGE, shark.ERROR]
    assert records[1].size == 10


# -- the resynchronisation heuristic ----------------------------------------------------------


def server_stream(name: str) -> bytes:
    return b"".join(r.message.to_bytes() for r in shark.read(capture(name))
                    if r.circuit == 1 and r.sender == Role.SERVER)


def boundaries(stream: bytes) -> list[int]:
    out, offset = [], 0
    while offset < len(stream):
        out.append(offset)
        header = decode_header(stream, offset)
        offset += header[6] + header[1]
    return out + [len(stream)]


def test_every_real_header_is_plausible() -> None:
    for name in ("ca_dbr_families.pcapng", "ca_big_arrays_small_mss.pcapng",
                 "caproto_cli_vs_softioc.pcap", "ca_put_callback_and_errors.pcapng"):
        stream = server_stream(name)
        ends = boundaries(stream)
        for start, end in zip(ends, ends[1:], strict=False):
            assert plausible_header(stream, start) == end - start


def test_resync_lands_on_a_real_boundary_from_anywhere() -> None:
    for name, step in (("ca_monitors_100hz.pcap", 37), ("ca_dbr_families.pcapng", 11),
                       ("ca_big_arrays.pcap", 9973)):
        stream = server_stream(name)
        view = memoryview(stream)
        real = set(boundaries(stream))
        for start in range(0, len(stream), step):
            offset, found = find_message_start(view[start:], final=True)
            assert start + offset in real, (name, start)
            assert found or start + offset == len(stream)


def test_resync_waits_for_confirmation() -> None:
    stream = server_stream("ca_monitors_100hz.pcap")
    ends = boundaries(stream)
    anchor = next(o for o in ends if stream[o + 1] == 1 and decode_header(stream, o)[1])
    following = next(o for o in ends if o > anchor)
    partial = stream[anchor - 5 : following + 8]  # the successor's header is incomplete
    assert find_message_start(partial) == (5, False)
    assert find_message_start(partial, final=True) == (5, True)
    assert find_message_start(stream[anchor - 5 : following + 16]) == (5, True)


def test_search_to_an_unannounced_port_teaches_the_port() -> None:
    """An IOC on port 6064 that no beacon announced is found from the search itself;
    its reply, and a random datagram that is not a search, are told apart."""
    from decoder import messages as m

    search = (m.VersionRequest(priority=1, sequence_number=7).to_bytes()
              + m.SearchRequest(name="SITE:PV", cid=3).to_bytes())
    reply = (m.VersionResponse(priority=1, sequence_number=7).to_bytes()
             + m.SearchResponse(port=6064, ip=0xFFFFFFFF, cid=3, version=13).to_bytes())
    noise = bytes(range(48))
    reader = CaReader()
    records = list(reader.records([
        udp_frame(1, 40000, 7000, noise),
        udp_frame(2, 40000, 6064, search),
        udp_frame(3, 6064, 40000, reply),
    ]))
    assert [r.command_name for r in records] == ["VERSION", "SEARCH", "VERSION", "SEARCH"]
    assert [r.sender for r in records] == [Role.CLIENT] * 2 + [Role.SERVER] * 2
    assert 6064 in reader.server_ports and 7000 not in reader.server_ports
