"""Nothing lost in silence, nothing kept forever: fragments never completed, segments far
outside the window, and per-connection state after connections end or go idle."""

from __future__ import annotations

import io
import random

import pytest
from builders import (
    LOCALHOST,
    ROOT,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    UDP,
    ethernet,
    ipv4,
    pcap_bytes,
    tcp,
    udp,
)

import shark
from decoder import messages as m
from shark.analysis.attribution import Session
from shark.capture.files import Frame, LinkType, read_frames
from shark.extract.reader import CaReader
from shark.extract.record import ERROR, MESSAGE
from shark.network.packets import FRAGMENT_TIMEOUT, TCP, Packet, PacketDecoder
from shark.network.reassembly import DATA, DROPPED, TcpReassembler

SERVER = bytes((10, 0, 0, 1))
MASK = 0xFFFFFFFF
HOSTILE = ROOT.parent / "shared" / "hostile"


# -- IP fragments never completed -----------------------------------------------------------


def _first_fragment(ident: int, payload: bytes = b"\0" * 40) -> bytes:
    datagram = udp(40000, 5064, payload)
    return ipv4(UDP, datagram[:24], ident=ident, fragment=0x2000)


def test_lost_fragment_of_the_hostile_capture_is_an_error_record() -> None:
    path = HOSTILE / "udp_fragment_lost.pcap"
    if not path.is_file():
        pytest.skip(f"hostile captures not found at {HOSTILE}")
    records = list(shark.read(path))
    errors = [r for r in records if r.kind is ERROR]
    assert len(errors) == 1
    assert errors[0].size == 24 and errors[0].frame == 1
    assert "incomplete IP fragments: 24 of 56 bytes" in errors[0].reason
    assert records[-2].message.name == "DEMO:OK"  # the next datagram, whole, is decoded


def test_fragments_expire_after_the_timeout_in_capture_time() -> None:
    decoder = PacketDecoder()
    first = Frame(1, 100.0, 0, LinkType.RAW, memoryview(_first_fragment(1)))
    assert decoder.decode(first) is None and not decoder.lost
    later = Frame(2, 100.0 + FRAGMENT_TIMEOUT + 1, 0, LinkType.RAW,
                  memoryview(_first_fragment(2)))
    assert decoder.decode(later) is None
    (lost,) = decoder.take_lost()
    assert (lost.frame, lost.sport, lost.dport, lost.seen, lost.size, lost.reason) == (
        1, 40000, 5064, 24, 48, "timeout")
    assert [d.reason for d in decoder.flush()] == ["end of capture"]
    assert not decoder._fragments and not decoder.lost


def test_expired_fragment_is_reported_by_the_reader_when_it_expires() -> None:
    frames = [(1_000_000_000, ethernet(_first_fragment(1))),
              (int((2 + FRAGMENT_TIMEOUT) * 1e9), ethernet(_first_fragment(2)))]
    records = list(CaReader().records(read_frames(_pcap(frames))))
    assert [(r.frame, r.reason) for r in records] == [
        (1, "incomplete IP fragments: 24 of 48 bytes of the datagram seen (timeout)"),
        (2, "incomplete IP fragments: 24 of 48 bytes of the datagram seen (end of capture)")]


def test_fragments_of_traffic_that_is_not_ca_give_no_record() -> None:
    other = ipv4(UDP, udp(40000, 2049, bytes(40))[:24], ident=3, fragment=0x2000)
    records = list(CaReader().records(read_frames(_pcap([(0, ethernet(other))]))))
    assert records == []


def _pcap(frames: list[tuple[int, bytes]]) -> io.BytesIO:
    return io.BytesIO(pcap_bytes(frames, LinkType.EN10MB))


# -- segments far outside the window --------------------------------------------------------


def _seg(seq: int, data: bytes = b"", flags: int = TCP_ACK, frame: int = 0,
         client: bool = True, time: float = 0.0, port: int = 40000, ack: int = 0) -> Packet:
    ends = ((LOCALHOST, port), (SERVER, 5064))
    (src, sport), (dst, dport) = ends if client else ends[::-1]
    return Packet(frame, time, src, sport, dst, dport, TCP, seq & MASK, ack & MASK, flags,
                  memoryview(data))


def test_scattered_sequence_numbers_every_byte_accounted_for() -> None:
    """20,000 segments at random sequence numbers (none overlapping): every byte is
    delivered or reported dropped, none vanishes."""
    rng = random.Random(14)
    size = 16
    starts = rng.sample(range(0, MASK // size), 20000)
    reassembler = TcpReassembler()
    events = reassembler.feed(_seg(999, flags=TCP_SYN, frame=1))
    events += reassembler.feed(_seg(4999, flags=TCP_SYN | TCP_ACK, frame=2, client=False))
    for n, start in enumerate(starts, 3):
        events += reassembler.feed(_seg(start * size, rng.randbytes(size), frame=n))
    events += reassembler.flush()
    delivered = sum(e.size for e in events if e.kind is DATA)
    dropped = [e for e in events if e.kind is DROPPED]
    assert delivered + sum(e.size for e in dropped) == size * len(starts)
    assert dropped and all("far outside the window" in e.reason for e in dropped)
    assert {"before" in e.reason for e in dropped} == {True, False}  # behind and ahead
    # (those a window or less ahead are held, then given to the stream after a gap)
    assert len(dropped) > len(starts) // 2


def test_retransmissions_stay_silent_and_bytes_after_the_fin_are_dropped() -> None:
    reassembler = TcpReassembler()
    events = reassembler.feed(_seg(999, flags=TCP_SYN, frame=1))
    events += reassembler.feed(_seg(1000, b"abcdef", frame=2))
    events += reassembler.feed(_seg(1000, b"abcdef", frame=3))  # a retransmission
    events += reassembler.feed(_seg(1010, b"held", frame=4))  # past the FIN to come
    events += reassembler.feed(_seg(1006, b"", flags=TCP_FIN | TCP_ACK, frame=5))
    events += reassembler.feed(_seg(1020, b"later", frame=6))
    dropped = [(e.frame, e.size, e.reason) for e in events if e.kind is DROPPED]
    assert dropped == [(5, 4, "segment after the end of the stream"),
                       (6, 5, "segment after the end of the stream")]


def test_dropped_bytes_become_error_records() -> None:
    request = m.VersionRequest(priority=0).to_bytes()
    frames = [
        (1, ethernet(ipv4(TCP, tcp(40000, 5064, 999, flags=TCP_SYN), dst=SERVER))),
        (2, ethernet(ipv4(TCP, tcp(40000, 5064, 1000, request, TCP_PSH | TCP_ACK),
                          dst=SERVER))),
        (3, ethernet(ipv4(TCP, tcp(40000, 5064, 1000 - 0x40000000, request,
                                   TCP_PSH | TCP_ACK), dst=SERVER))),
    ]
    records = list(CaReader().records(read_frames(_pcap(frames))))
    assert [r.kind for r in records] == [MESSAGE, ERROR]
    assert records[1].frame == 3 and records[1].size == len(request)
    assert "far outside the window" in records[1].reason


# -- bounded state --------------------------------------------------------------------------


def _short_connection(port: int, start: float, close: bool = True) -> list[Packet]:
    request = m.VersionRequest(priority=0).to_bytes()
    reply = m.VersionResponse().to_bytes()
    c, s = 1000, 5000
    packets = [
        _seg(c, flags=TCP_SYN, port=port),
        _seg(s, flags=TCP_SYN | TCP_ACK, client=False, port=port, ack=c + 1),
        _seg(c + 1, request, TCP_PSH | TCP_ACK, port=port, ack=s + 1),
        _seg(s + 1, reply, TCP_PSH | TCP_ACK, client=False, port=port,
             ack=c + 1 + len(request)),
    ]
    if close:
        c_end, s_end = c + 1 + len(request), s + 1 + len(reply)
        packets += [_seg(c_end, flags=TCP_FIN | TCP_ACK, port=port, ack=s_end),
                    _seg(s_end, flags=TCP_FIN | TCP_ACK, client=False, port=port,
                         ack=c_end + 1)]
    return [p._replace(time=start + k * 0.001) for k, p in enumerate(packets)]


def _feed(reader: CaReader, session: Session, packets: list[Packet]) -> list:
    out: list = []
    for packet in packets:
        reader._packet(packet, out)
    return list(session.records(out, lifecycle=True))


def test_state_goes_when_connections_close() -> None:
    reader, session = CaReader(lifecycle=True), Session()
    records = []
    for n in range(3000):
        records += _feed(reader, session, _short_connection(10000 + n, n * 0.01))
        assert reader._tcp.open_connections <= 1
        assert len(reader._states) == 0 and len(session.circuits) == 0
    assert sum(r.kind is MESSAGE for r in records) == 6000
    assert not any(r.kind is ERROR for r in records)
    assert reader._tcp.remembered_closed <= 2 * 4096


def test_state_goes_after_idle_time_without_the_end() -> None:
    reader, session = CaReader(lifecycle=True), Session()
    tcp = reader._tcp
    records = []
    for n in range(2000):  # 0.5 s apart: about 2 * IDLE_TIMEOUT open at once at most
        records += _feed(reader, session, _short_connection(10000 + n, n * 0.5, close=False))
    limit = 2 * tcp.idle_timeout / 0.5
    assert tcp.open_connections <= limit
    assert len(reader._states) <= 2 * limit and len(session.circuits) <= limit
    closes = [r for r in records if r.kind.name == "CLOSE"]
    assert closes and {r.reason for r in closes} == {"idle"}
    assert sum(r.kind is MESSAGE for r in records) == 4000  # each decoded, then closed
    records = list(session.records(reader._flushed([]), lifecycle=True))
    assert tcp.open_connections == 0 and not reader._states and not session.circuits


def test_open_connections_are_bounded_in_number() -> None:
    reader = CaReader(lifecycle=True)
    reader._tcp.max_open = 100
    session = Session()
    for n in range(1000):  # all within the idle time
        _feed(reader, session, _short_connection(10000 + n, n * 0.001, close=False))
        assert reader._tcp.open_connections <= 100
        assert len(reader._states) <= 200 and len(session.circuits) <= 100


def test_an_idle_connection_that_resumes_is_read_on() -> None:
    reassembler = TcpReassembler(idle_timeout=10.0)
    events = reassembler.feed(_seg(999, flags=TCP_SYN, frame=1, time=0.0))
    events += reassembler.feed(_seg(1000, b"abc", frame=2, time=1.0))
    events += reassembler.feed(_seg(1, flags=TCP_SYN, frame=3, time=20.0, port=40001))
    events += reassembler.feed(_seg(1003, b"def", frame=4, time=21.0))
    kinds = [(e.kind.name, e.frame, e.reason) for e in events]
    assert ("CLOSE", 3, "idle") in kinds
    assert [bytes(e.data) for e in events if e.kind is DATA] == [b"abc", b"def"]

