"""TCP reassembly: the reassembler alone, then CA framing over reassembled streams."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from builders import (
    LOCALHOST,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    capture_streams,
    synthetic,
    tcp_frames,
)

import shark
from decoder import Role
from shark.extract.reader import CaReader
from shark.network.packets import TCP, Packet
from shark.network.reassembly import CLOSE, DATA, GAP, OPEN, TcpEvent, TcpReassembler

CLIENT = (LOCALHOST, 40000)
SERVER = (bytes((127, 0, 0, 2)), 5064)
MASK = 0xFFFFFFFF


def seg(seq: int, data: bytes = b"", flags: int = TCP_ACK, frame: int = 0,
        client: bool = True, ack: int = 0) -> Packet:
    """A segment; its acknowledgement number is 0 (acknowledging nothing) unless given."""
    (src, sport), (dst, dport) = (CLIENT, SERVER) if client else (SERVER, CLIENT)
    return Packet(frame, frame / 10, src, sport, dst, dport, TCP, seq & MASK, ack & MASK,
                  flags, memoryview(data))


def run(segments: Iterable[Packet], **limits: int) -> list[TcpEvent]:
    reassembler = TcpReassembler(**limits)
    events = []
    for n, packet in enumerate(segments, 1):
        events.extend(reassembler.feed(packet._replace(frame=packet.frame or n)))
    return events + reassembler.flush()


def summary(events: list[TcpEvent], client: bool = True) -> list:
    """The events of one direction: bytes runs, ("gap", n) and ("close", reason)."""
    out: list = []
    for event in events:
        if event.kind == OPEN or event.half.from_client is not client:
            continue
        if event.kind == DATA:
            if out and isinstance(out[-1], bytes):
                out[-1] += bytes(event.data)
            else:
                out.append(bytes(event.data))
        elif event.kind == GAP:
            out.append(("gap", event.size))
        elif event.kind == CLOSE:
            out.append(("close", event.reason))
    return out


def handshake(isn: int = 1000, server_isn: int = 5000) -> list[Packet]:
    return [seg(isn, flags=TCP_SYN), seg(server_isn, flags=TCP_SYN | TCP_ACK, client=False),
            seg(isn + 1)]


# -- the reassembler ----------------------------------------------------------------------


def test_in_order_with_handshake_and_roles() -> None:
    events = run([*handshake(), seg(1001, b"hello "), seg(1007, b"world"),
                  seg(5001, b"reply", client=False)])
    assert [e.kind for e in events[:1]] == [OPEN]
    assert summary(events) == [b"hello world", ("close", "end of capture")]
    assert summary(events, client=False) == [b"reply", ("close", "end of capture")]
    data = [e for e in events if e.kind == DATA]
    assert [e.frame for e in data] == [4, 5, 6]
    assert data[0].half.from_client is True and data[2].half.from_client is False
    assert data[0].half.isn == 1000


def test_reordering_duplicates_and_overlaps() -> None:
    stream = bytes(range(200))
    segments = [seg(1001 + a, stream[a:b]) for a, b in
                [(0, 50), (100, 150), (50, 100), (50, 100), (20, 70), (140, 200), (0, 10)]]
    events = run([*handshake(), *segments])
    assert summary(events) == [stream, ("close", "end of capture")]
    # each byte delivered once, by the segment that brought it first
    sizes = [(e.frame, e.size) for e in events if e.kind == DATA]
    assert sizes == [(4, 50), (6, 50), (5, 50), (9, 50)]


def test_hole_never_filled_is_a_gap_at_the_end() -> None:
    events = run([*handshake(), seg(1001, b"a" * 10), seg(1031, b"c" * 10)])
    assert summary(events) == [b"a" * 10, ("gap", 20), b"c" * 10, ("close", "end of capture")]


def test_hold_limit_declares_the_gap() -> None:
    held = [seg(1101 + 10 * i, b"x" * 10) for i in range(10)]
    events = run([*handshake(), seg(1001, b"a" * 10), *held], max_held=50)
    assert summary(events) == [b"a" * 10, ("gap", 90), b"x" * 100, ("close", "end of capture")]
    gap = next(e for e in events if e.kind == GAP)
    assert gap.reason == "hold limit" and gap.frame == 10  # the segment that broke the limit


def test_total_hold_limit() -> None:
    other = seg(7000, b"y" * 30, client=False)
    events = run([*handshake(), seg(1001, b"a"), other, seg(5001, b"b", client=False),
                  seg(1021, b"z" * 40), seg(5101, b"w" * 40, client=False)],
                 max_held_total=60)
    assert ("gap", 19) in summary(events)


def test_fin_closes_once_the_bytes_before_it_are_in() -> None:
    events = run([*handshake(), seg(1011, b"world", TCP_FIN | TCP_ACK), seg(1001, b"0123456789"),
                  seg(5001, flags=TCP_FIN | TCP_ACK, client=False)])
    assert summary(events) == [b"0123456789world", ("close", "fin")]
    assert summary(events, client=False) == [("close", "fin")]


def test_rst_declares_holes_and_closes_both_directions() -> None:
    events = run([*handshake(), seg(1001, b"ab"), seg(1010, b"later"),
                  seg(5001, flags=TCP_RST, client=False)])
    assert summary(events) == [b"ab", ("gap", 7), b"later", ("close", "rst")]
    assert summary(events, client=False) == [("close", "rst")]


def test_mid_stream_start() -> None:
    events = run([seg(123456, b"middle"), seg(123462, b" end"), seg(999, b"x", client=False)])
    data = [e for e in events if e.kind == DATA]
    assert data[0].half.from_client is None and data[0].half.isn is None
    assert b"".join(bytes(e.data) for e in data if e.half is data[0].half) == b"middle end"


def test_sequence_wraparound() -> None:
    isn = MASK - 5
    stream = bytes(range(40))
    pieces = [seg(isn + 1 + a, stream[a:b]) for a, b in [(0, 3), (10, 40), (3, 10), (0, 8)]]
    events = run([seg(isn, flags=TCP_SYN), *pieces])
    assert summary(events) == [stream, ("close", "end of capture")]


def test_syn_ack_without_syn_names_the_server() -> None:
    events = run([seg(5000, flags=TCP_SYN | TCP_ACK, client=False), seg(1001, b"hi"),
                  seg(5001, b"ho", client=False)])
    halves = {e.half.from_client for e in events if e.kind == DATA}
    assert halves == {True, False}


def test_reuse_of_addresses_starts_a_new_connection() -> None:
    first = [*handshake(), seg(1001, b"one", TCP_FIN | TCP_ACK),
             seg(5001, flags=TCP_FIN | TCP_ACK, client=False)]
    late = [seg(1001, b"one")]  # a retransmission after the close: ignored
    second = [*handshake(isn=90000, server_isn=70000), seg(90001, b"two")]
    events = run([*first, *late, *second])
    opens = [e for e in events if e.kind == OPEN]
    assert [e.half.connection.number for e in opens] == [1, 2]
    assert summary(events) == [b"one", ("close", "fin"), b"two", ("close", "end of capture")]


def test_syn_with_new_isn_on_open_connection() -> None:
    events = run([*handshake(), seg(1001, b"old"), *handshake(isn=50000), seg(50001, b"new")])
    assert summary(events) == [b"old", ("close", "reused"), b"new", ("close", "end of capture")]


def test_acknowledged_hole_is_a_gap_at_once() -> None:
    events = run([*handshake(), seg(1001, b"a" * 10), seg(1021, b"c" * 10),
                  seg(5001, ack=1031, client=False), seg(1031, b"d")])
    assert summary(events) == [b"a" * 10, ("gap", 10), b"c" * 10 + b"d",
                               ("close", "end of capture")]
    gap = next(e for e in events if e.kind == GAP)
    assert gap.frame == 6 and gap.reason == "acknowledged by the receiver"


def test_acknowledgement_inside_a_hole_and_without_held_data() -> None:
    events = run([*handshake(), seg(1001, b"a" * 10),
                  seg(5001, ack=1016, client=False),  # 5 of 20 missing bytes acknowledged
                  seg(1031, b"c"), seg(1016, b"b" * 15)])
    assert summary(events) == [b"a" * 10, ("gap", 5), b"b" * 15 + b"c",
                               ("close", "end of capture")]


def test_acknowledged_fin_after_a_hole() -> None:
    events = run([*handshake(), seg(1011, flags=TCP_FIN | TCP_ACK),
                  seg(5001, ack=1012, client=False)])  # the FIN's own number acknowledged
    assert summary(events) == [("gap", 10), ("close", "fin")]


def test_keepalive_and_bare_acks_deliver_nothing() -> None:
    events = run([*handshake(), seg(1001, b"abc"), seg(1003, b"c"), seg(1004), seg(1004)])
    assert summary(events) == [b"abc", ("close", "end of capture")]


# -- CA over reassembled streams ------------------------------------------------------------


def messages_by_sender(records: list[shark.Record]) -> tuple[list[bytes], list[bytes]]:
    client = [r.message.to_bytes() for r in records if r.kind == shark.MESSAGE
              and r.sender == Role.CLIENT]
    server = [r.message.to_bytes() for r in records if r.kind == shark.MESSAGE
              and r.sender == Role.SERVER]
    return client, server


def test_resegmented_big_arrays_1_to_37_bytes() -> None:
    """Every message boundary, the 24-byte extended headers included, falls at every
    possible position inside a segment."""
    client, server = capture_streams("ca_big_arrays.pcap")
    server = server[:9]  # the 800 kB DBR_DOUBLE reply and what precedes it
    assert any(len(m) > 0xFFFF for m in client) and any(len(m) > 0xFFFF for m in server)
    segments = synthetic(b"".join(client), b"".join(server), range(1, 38), range(37, 0, -1))
    records = list(CaReader().records(tcp_frames(segments)))
    assert all(r.kind == shark.MESSAGE for r in records)
    assert messages_by_sender(records) == (client, server)
    assert any(r.message.extended for r in records)


def test_reordered_and_duplicated_segments() -> None:
    client, server = capture_streams("ca_monitors_100hz.pcap")
    segments = synthetic(b"".join(client), b"".join(server[:300]), [50, 13], [90, 7, 33])
    # Swap neighbours from the same side (the capture cannot show an acknowledgement
    # before the data it acknowledges, so segments do not cross the other side's), and
    # repeat every fifth segment.
    shuffled, i = [], 0
    while i < len(segments):
        if i + 1 < len(segments) and segments[i][0] == segments[i + 1][0] and i % 3 == 0:
            shuffled += [segments[i + 1], segments[i]]
            i += 2
        else:
            shuffled.append(segments[i])
            i += 1
        if i % 5 == 0:
            shuffled.append(shuffled[-1])
    assert shuffled != segments
    records = list(CaReader().records(tcp_frames(shuffled)))
    assert all(r.kind == shark.MESSAGE for r in records)
    assert messages_by_sender(records) == (client, server[:300])


def test_hole_gives_a_gap_then_resync_on_the_next_message() -> None:
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    stream = b"".join(server)
    segments = synthetic(b"", stream, [1], [100], drop=[(False, 40)])
    records = list(CaReader().records(tcp_frames(segments)))
    gaps = [r for r in records if r.kind == shark.GAP]
    assert [g.size for g in gaps] == [100]
    assert gaps[0].sender == Role.SERVER and gaps[0].circuit == 1
    errors = [r for r in records if r.kind == shark.ERROR]
    assert len(errors) == 1 and "after a gap" in errors[0].reason
    _, decoded = messages_by_sender(records)
    # what precedes the hole is intact, what follows is a suffix of the original
    before = records.index(gaps[0])
    assert records.index(errors[0]) > before
    assert decoded[:before] == server[:before]
    after = decoded[before:]
    assert after == server[len(server) - len(after):]
    lost_bytes = len(stream) - sum(map(len, decoded))
    assert lost_bytes == 100 + errors[0].size
    assert len(server) - len(decoded) <= 4


def test_capture_starting_mid_connection() -> None:
    client, server = capture_streams("ca_monitors_100hz.pcap")
    segments = synthetic(b"".join(client), b"".join(server), [30], [45], handshake=False)
    records = list(CaReader().records(tcp_frames(segments[40:])))
    decoded_client, decoded_server = messages_by_sender(records)
    assert decoded_server and decoded_server == server[len(server) - len(decoded_server):]
    assert decoded_client == client[len(client) - len(decoded_client):]
    # the server messages lost are those the capture missed, and at most two more
    missed = sum(len(s[2]) for s in segments[:40] if not s[0])
    lost = sum(map(len, server)) - sum(map(len, decoded_server))
    assert missed <= lost <= missed + 2 * max(map(len, server))
    assert all(r.kind in (shark.MESSAGE, shark.ERROR) for r in records)


def test_garbage_in_a_stream_is_skipped() -> None:
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    junk = b"\xff\xee" * 20
    stream = b"".join(server[:50]) + junk + b"".join(server[50:100])
    records = list(CaReader().records(tcp_frames(synthetic(b"", stream, [1], [64]))))
    errors = [r for r in records if r.kind == shark.ERROR]
    assert [(e.size, e.sender) for e in errors] == [(len(junk), Role.SERVER)]
    assert "unknown command" in errors[0].reason
    assert messages_by_sender(records)[1] == server[:100]


def test_header_claiming_too_much_is_skipped() -> None:
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    lying = bytes.fromhex("0001ffff00060000 00000001 00000002") + (200_000_000).to_bytes(4, "big")
    lying += bytes(4)
    stream = b"".join(server[:20]) + lying + b"".join(server[20:40])
    records = list(CaReader(max_payload=1 << 20).records(
        tcp_frames(synthetic(b"", stream, [1], [1000]))))
    errors = [r for r in records if r.kind == shark.ERROR]
    assert len(errors) == 1 and "bad header" in errors[0].reason
    assert errors[0].size == len(lying)
    assert messages_by_sender(records)[1] == server[:40]


def test_stream_ending_inside_a_message() -> None:
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    cut = next(i for i, m in enumerate(server) if len(m) > 40)
    stream = b"".join(server[:cut]) + server[cut][:20]
    records = list(CaReader().records(tcp_frames(synthetic(b"", stream, [1], [50]))))
    assert messages_by_sender(records)[1] == server[:cut]
    assert records[-1].kind == shark.ERROR and records[-1].size == 20
    assert "stream ends" in records[-1].reason


@pytest.mark.parametrize("ports", [(), (7000,)])
def test_user_ports(ports: tuple[int, ...]) -> None:
    client, server = capture_streams("ca_basic_default_port.pcap")
    segments = synthetic(b"".join(client), b"".join(server), [100], [100])
    records = list(CaReader(ports).records(tcp_frames(segments, server_port=7000)))
    assert len(records) == (len(client) + len(server) if ports else 0)


def test_rst_with_a_hole_in_the_other_direction() -> None:
    """One segment closes both directions, one of them with a hole to declare first."""
    client, server = capture_streams("ca_basic_default_port.pcap")
    server_bytes = b"".join(server)
    segments = [(True, 100, b"", TCP_SYN, 0), (False, 500, b"", TCP_SYN | TCP_ACK, 101),
                (True, 101, b"".join(client), TCP_ACK | TCP_PSH, 501),
                (False, 501 + 100, server_bytes[100:], TCP_ACK | TCP_PSH, 101),  # 100 lost
                (True, 101 + len(b"".join(client)), b"", TCP_RST, 0)]
    records = list(CaReader().records(tcp_frames(segments)))
    assert [r.size for r in records if r.kind == shark.GAP] == [100]
    decoded_client, decoded_server = messages_by_sender(records)
    assert decoded_client == client
    assert decoded_server == server[len(server) - len(decoded_server):]


def test_lost_syn_ack_needs_no_resync() -> None:
    client, server = capture_streams("ca_basic_default_port.pcap")
    segments = synthetic(b"".join(client), b"".join(server), [64], [64])
    del segments[1]  # the SYN-ACK
    records = list(CaReader().records(tcp_frames(segments)))
    assert all(r.kind == shark.MESSAGE for r in records)
    assert messages_by_sender(records) == (client, server)


def test_acknowledged_hole_does_not_hold_back_what_follows() -> None:
    """With the client talking too (ECHO requests), its acknowledgements reveal the hole
    at once: records stay in capture order instead of waiting for the end."""
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    echoes = bytes.fromhex("0017" + "00" * 14) * 200
    segments = synthetic(echoes, b"".join(server), [16], [100], drop=[(False, 40)])
    records = list(CaReader().records(tcp_frames(segments)))
    gap = next(r for r in records if r.kind == shark.GAP)
    assert gap.size == 100 and "acknowledged" in gap.reason
    frames = [r.frame for r in records]
    assert frames == sorted(frames)
    assert gap.frame < len(segments) // 2
