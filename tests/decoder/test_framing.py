"""Framing real TCP streams: any chunking gives the same messages; and the values
decoded from ca_dbr_families equal what the client (pyepics on libca) saw.

The streams come from the shared captures (reassembled here with dpkt, which
only the tests use); the tests skip when ../shared/captures is absent.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections import Counter
from typing import Any

import pytest
from builders import CAPTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoder import DecodeError, Role, StreamFramer, split_datagram
from decoder import messages as m
from decoder.dbr import DBRType

needs_captures = pytest.mark.skipif(
    not CAPTURES.is_dir(), reason=f"shared capture corpus not found at {CAPTURES}"
)
C2S, S2C = "client_to_server", "server_to_client"
SENDER = {C2S: Role.CLIENT, S2C: Role.SERVER}


# --- reading the captures (tests only) ----------------------------------------------------


class Capture:
    """One capture's TCP streams (one circuit) and UDP datagrams, plus its manifest."""

    def __init__(self, name: str) -> None:
        dpkt = pytest.importorskip("dpkt", reason="dpkt reads the captures")
        path = next(CAPTURES.glob(f"{name}.pcap*"))
        self.manifest = json.loads((CAPTURES / f"{name}.json").read_text())
        segments: dict[tuple, dict[int, bytes]] = {}
        isn: dict[tuple, int] = {}
        client_flow = None
        self.datagrams: list[bytes] = []
        with open(path, "rb") as f:
            magic = f.read(4)
            f.seek(0)
            reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
            decap = {1: dpkt.ethernet.Ethernet, 113: dpkt.sll.SLL, 276: dpkt.sll2.SLL2}[
                reader.datalink()
            ]
            for _, frame in reader:
                ip = decap(frame).data
                if not isinstance(ip, dpkt.ip.IP):
                    continue
                if isinstance(ip.data, dpkt.udp.UDP):
                    self.datagrams.append(bytes(ip.data.data))
                    continue
                tcp = ip.data
                if not isinstance(tcp, dpkt.tcp.TCP):
                    continue
                flow = (ip.src, tcp.sport, ip.dst, tcp.dport)
                if tcp.flags & dpkt.tcp.TH_SYN:
                    isn[flow] = tcp.seq + 1
                    if not tcp.flags & dpkt.tcp.TH_ACK:
                        client_flow = flow
                if tcp.data:  # first copy of each segment wins; retransmissions dropped
                    segments.setdefault(flow, {}).setdefault(tcp.seq, bytes(tcp.data))
        assert client_flow is not None and len(segments) == 2, "expected one TCP circuit"
        self.client_port, self.server_port = client_flow[1], client_flow[3]
        #: direction -> the segments' payloads, in sequence order
        self.segments: dict[str, list[bytes]] = {}
        for flow, by_seq in segments.items():
            base = isn.get(flow, min(by_seq))
            ordered = sorted(by_seq.items(), key=lambda item: (item[0] - base) % 2**32)
            offset = 0
            for seq, data in ordered:
                assert (seq - base) % 2**32 == offset, "gap or overlap in the TCP stream"
                offset += len(data)
            direction = C2S if flow == client_flow else S2C
            self.segments[direction] = [data for _, data in ordered]
        self.streams = {d: b"".join(segs) for d, segs in self.segments.items()}


@functools.cache
def capture(name: str) -> Capture:
    if not CAPTURES.is_dir():
        pytest.skip(f"shared capture corpus not found at {CAPTURES}")
    return Capture(name)


def frame_all(data: bytes, sender: Role) -> list[m.Message]:
    framer = StreamFramer(sender)
    out = framer.feed(data)
    assert framer.pending == 0 and framer.bytes_consumed == len(data)
    return out


def fingerprint(messages: list[m.Message]) -> list[tuple[type, bytes]]:
    return [(type(msg), msg.to_bytes()) for msg in messages]


def feed_in_chunks(data: bytes, sender: Role, sizes: Any) -> list[m.Message]:
    """Feed ``data`` in chunks of the sizes ``sizes`` yields, checking the
    framer's bookkeeping after every chunk."""
    framer = StreamFramer(sender)
    out: list[m.Message] = []
    fed = framed = 0
    while fed < len(data):
        chunk = data[fed : fed + next(sizes)]
        fed += len(chunk)
        new = framer.feed(chunk)
        if new:
            out += new
            framed += sum(msg.size for msg in new)
        assert framer.bytes_consumed == framed
        assert framer.pending == fed - framed
    assert framer.pending == 0
    return out


# --- the captures frame as the manifests count ----------------------------------------------


@needs_captures
@pytest.mark.parametrize("name", ["ca_big_arrays", "ca_big_arrays_small_mss", "ca_dbr_families"])
def test_capture_streams_frame_to_the_manifest_counts(name: str) -> None:
    cap = capture(name)
    counts = cap.manifest["message_counts_by_command"]
    extended = 0
    for direction, stream in cap.streams.items():
        messages = frame_all(stream, SENDER[direction])
        assert b"".join(msg.to_bytes() for msg in messages) == stream
        got = Counter(str(msg.command) for msg in messages)
        assert got == Counter(counts[f"tcp_{direction}"]), direction
        extended += sum(msg.extended for msg in messages)
        assert not any(isinstance(msg, m.UnknownCommand) for msg in messages)
    assert extended == cap.manifest["capture_analysis"]["extended_header_messages_tcp"]


@needs_captures
@pytest.mark.parametrize("name", ["ca_big_arrays", "ca_dbr_families"])
def test_capture_datagrams_split_to_the_manifest_counts(name: str) -> None:
    """Every UDP datagram (search, search replies, beacons, repeater traffic)
    splits into whole messages, with the sender guessed from their shape."""
    cap = capture(name)
    got: Counter[str] = Counter()
    for datagram in cap.datagrams:
        for msg in split_datagram(datagram, None):
            got[str(msg.command)] += 1
    assert got == Counter(cap.manifest["message_counts_by_command"]["udp"])


@needs_captures
def test_big_arrays_stream_has_extended_headers_both_ways() -> None:
    cap = capture("ca_big_arrays")
    replies = [msg for msg in frame_all(cap.streams[S2C], Role.SERVER) if msg.extended]
    assert any(isinstance(msg, m.ReadNotifyResponse) and msg.data_count == 100_000
               for msg in replies)
    writes = [msg for msg in frame_all(cap.streams[C2S], Role.CLIENT) if msg.extended]
    assert [(type(w), w.data_type, w.data_count) for w in writes] == [
        (m.WriteNotifyRequest, DBRType.FLOAT, 70_000)
    ]
    assert writes[0].data.count == 70_000


# --- any chunking gives the same messages --------------------------------------------------


@needs_captures
@pytest.mark.parametrize("direction", [S2C, C2S])
def test_every_split_point_of_a_real_stream(direction: str) -> None:
    """Cut the ca_dbr_families stream in two at every byte offset."""
    stream = capture("ca_dbr_families").streams[direction]
    sender = SENDER[direction]
    reference = fingerprint(frame_all(stream, sender))
    ends = [0]
    for _, wire in reference:
        ends.append(ends[-1] + len(wire))
    for cut in range(len(stream) + 1):
        framer = StreamFramer(sender)
        first = framer.feed(stream[:cut])
        complete = sum(1 for end in ends[1:] if end <= cut)
        assert len(first) == complete, cut
        assert framer.pending == cut - ends[complete]
        second = framer.feed(stream[cut:])
        assert fingerprint(first + second) == reference, cut


@needs_captures
def test_every_split_point_around_real_extended_headers() -> None:
    """ca_big_arrays' replies: cut at every offset within the first 40 bytes of
    each message, which covers splits inside an extended header's extra 8 bytes."""
    stream = capture("ca_big_arrays").streams[S2C]
    reference = fingerprint(frame_all(stream, Role.SERVER))
    assert sum(wire[2:4] == b"\xff\xff" for _, wire in reference) == 11
    start = 0
    for index, (_, wire) in enumerate(reference):
        pair = reference[index : index + 2]  # this message and the next one
        piece = b"".join(w for _, w in pair)
        for cut in range(min(40, len(piece))):
            framer = StreamFramer(Role.SERVER)
            first = framer.feed(piece[:cut])
            complete = int(cut >= len(wire)) + int(cut == len(piece))
            assert len(first) == complete
            assert framer.pending == cut - sum(len(w) for _, w in pair[:complete])
            assert fingerprint(first + framer.feed(piece[cut:])) == pair
        start += len(wire)
    assert start == len(stream)


@needs_captures
@pytest.mark.parametrize("chunk", range(1, 38))
def test_fixed_chunk_sizes(chunk: int) -> None:
    """Chunks of 1..37 bytes over ca_dbr_families (both ways) and the client side
    of ca_big_arrays (a 280 kB extended WRITE_NOTIFY)."""
    for name, direction in (("ca_dbr_families", S2C), ("ca_dbr_families", C2S),
                            ("ca_big_arrays", C2S)):
        stream = capture(name).streams[direction]
        sender = SENDER[direction]
        reference = fingerprint(frame_all(stream, sender))
        sizes = iter(lambda: chunk, None)
        assert fingerprint(feed_in_chunks(stream, sender, sizes)) == reference


@needs_captures
@pytest.mark.parametrize("seed", range(4))
def test_random_chunk_sizes_over_big_arrays(seed: int) -> None:
    rng = random.Random(seed)
    stream = capture("ca_big_arrays").streams[S2C]
    reference = fingerprint(frame_all(stream, Role.SERVER))
    sizes = iter(lambda: int(math.exp(rng.uniform(0, math.log(200_000)))), None)
    assert fingerprint(feed_in_chunks(stream, Role.SERVER, sizes)) == reference


@needs_captures
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cuts=st.lists(st.integers(0, 5760), max_size=60))
def test_random_cut_points(cuts: list[int]) -> None:
    stream = capture("ca_dbr_families").streams[S2C]
    reference = fingerprint(frame_all(stream, Role.SERVER))
    bounds = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    framer = StreamFramer(Role.SERVER)
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        out += framer.feed(stream[a:b])
    assert fingerprint(out) == reference and framer.pending == 0


@needs_captures
def test_segments_as_captured_with_small_mss() -> None:
    """1448-byte segments put CA headers at arbitrary offsets inside segments."""
    cap = capture("ca_big_arrays_small_mss")
    for direction, segments in cap.segments.items():
        framer = StreamFramer(SENDER[direction])
        out = [msg for segment in segments for msg in framer.feed(segment)]
        assert framer.pending == 0
        assert fingerprint(out) == fingerprint(frame_all(cap.streams[direction],
                                                         SENDER[direction]))


# --- bookkeeping on synthetic streams --------------------------------------------------------


def _extended_then_plain() -> tuple[bytes, bytes]:
    big = m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=1, ioid=7,
                               data=[0.5] * 3, extended=True)
    small = m.EchoResponse()
    return big.to_bytes(), small.to_bytes()


@pytest.mark.parametrize("extra", range(9))
def test_extended_header_split_inside_its_extra_8_bytes(extra: int) -> None:
    big, small = _extended_then_plain()
    assert big[2:4] == b"\xff\xff" and big[6:8] == b"\0\0"
    framer = StreamFramer(Role.SERVER)
    assert framer.feed(big[: 16 + extra]) == []
    assert framer.pending == 16 + extra and framer.bytes_consumed == 0
    out = framer.feed(big[16 + extra :] + small)
    assert [type(msg) for msg in out] == [m.ReadNotifyResponse, m.EchoResponse]
    assert out[0].extended and list(out[0].data.values) == [0.5] * 3
    assert framer.pending == 0 and framer.bytes_consumed == len(big) + len(small)


def test_pending_and_bytes_consumed_across_feeds() -> None:
    big, small = _extended_then_plain()
    framer = StreamFramer(Role.SERVER)
    assert framer.feed(small[:10]) == [] and framer.pending == 10
    assert len(framer.feed(small[10:] + big[:5])) == 1
    assert (framer.bytes_consumed, framer.pending) == (16, 5)
    assert len(framer.feed(big[5:])) == 1
    assert (framer.bytes_consumed, framer.pending) == (16 + len(big), 0)
    assert framer.feed(b"") == []


def test_clear_returns_and_accounts_for_the_buffered_bytes() -> None:
    big, small = _extended_then_plain()
    framer = StreamFramer(Role.SERVER)
    framer.feed(small + big[:20])
    assert framer.clear() == big[:20]
    assert (framer.pending, framer.bytes_consumed) == (0, 16 + 20)
    assert len(framer.feed(small)) == 1 and framer.bytes_consumed == 52


def test_decode_error_keeps_the_messages_framed_before_it() -> None:
    """Regression: feed() raised on a bad header and lost the messages the same
    chunk completed before it, though they were counted as consumed."""
    _, small = _extended_then_plain()
    liar = m.HEADER.pack(15, 0xFFFF, 6, 0, 1, 2) + m.EXTENSION.pack(0xFFFFFFFF, 1)
    framer = StreamFramer(Role.SERVER)
    with pytest.raises(DecodeError) as info:
        framer.feed(small + small + liar)
    assert len(info.value.messages) == 2
    assert info.value.offset == 32 == framer.bytes_consumed
    assert framer.pending == len(liar)


# --- ca_dbr_families: decoded values equal what the client saw --------------------------------

_NAMES = {"enum_strs": "enum_strings"}


def _expected(value: Any) -> Any:
    """The manifest writes NaN as the string 'nan'."""
    return float("nan") if value == "nan" else value


def _check_against_client(response: m.Message, result: dict[str, Any], what: str) -> None:
    assert type(response) in (m.ReadNotifyResponse, m.EventAddResponse), what
    assert response.status == result["status"], what
    assert response.data_type == result["type"], what
    assert response.data_count == result["count"], what
    data = response.data
    expected = result["value"]
    got = data.values
    got = got.tolist() if hasattr(got, "tolist") else list(got)
    if result["count"] == 1:
        got = got[0]
    assert got == expected, what
    meta = data.metadata()
    meta.pop("RISC_pad", None)  # rsrv's uninitialised struct padding; libca drops it
    seen = {}
    for key, value in result["meta"].items():
        if key == "stamp":
            seen["seconds"], seen["nanoseconds"] = value["secPastEpoch"], value["nsec"]
        elif key == "no_str":
            assert len(meta["enum_strings"]) == value, what
        elif key == "as_text":  # pyepics' text of a char array: the bytes up to NUL
            assert bytes(data.values).split(b"\0")[0].decode() == value, what
        else:
            seen[_NAMES.get(key, key)] = _expected(value)
    assert meta.keys() == seen.keys(), what
    for key, value in seen.items():
        same = meta[key] == value or (value != value and meta[key] != meta[key])
        assert same, f"{what}: {key} decoded {meta[key]!r}, client saw {value!r}"


@needs_captures
def test_dbr_families_values_equal_what_the_client_saw() -> None:
    """Pair each READ_NOTIFY request with libca's get call (in order) and its
    response (by ioid), and compare values and metadata with the client's ops."""
    cap = capture("ca_dbr_families")
    client = cap.manifest["clients"][0]
    requests = frame_all(cap.streams[C2S], Role.CLIENT)
    responses = frame_all(cap.streams[S2C], Role.SERVER)

    names = {r.cid: r.name for r in requests if isinstance(r, m.CreateChanRequest)}
    pv_of_sid = {r.sid: names[r.cid] for r in responses if isinstance(r, m.CreateChanResponse)}
    reply_to = {r.ioid: r for r in responses if isinstance(r, m.ReadNotifyResponse)}
    reads = [r for r in requests if isinstance(r, m.ReadNotifyRequest)]

    calls = [c for c in client["libca_calls"] if c["call"] == "ca_array_get_callback"]
    assert len(reads) == len(calls) == len(reply_to)
    for read, call in zip(reads, calls, strict=True):
        assert (pv_of_sid[read.sid], read.data_type, read.data_count) == (
            call["pv"], call["dbr_type"], call["count"])

    gets = [op for op in client["ops"] if op["op"] == "get"]
    pending = iter(gets)
    op = next(pending)
    checked = 0
    for read in reads:
        if op is not None and (pv_of_sid[read.sid], read.data_type, read.data_count) == (
                op["pv"], op["dbr_type"], op["request_count"]):
            _check_against_client(reply_to[read.ioid], op["result"],
                                  f"{op['pv']} as {op['dbr']}")
            checked += 1
            op = next(pending, None)
    assert checked == len(gets) > 50

    # pyepics PV(form='ctrl').get(): one CTRL_DOUBLE read after the plain gets
    (ctrl_op,) = [op for op in client["ops"] if op["op"] == "pv_get" and op["form"] == "ctrl"]
    ctrl = [reply_to[r.ioid] for r in reads
            if pv_of_sid[r.sid] == ctrl_op["pv"] and r.data_type == DBRType.CTRL_DOUBLE][-1]
    expected = dict(ctrl_op["result"])
    assert ctrl.value == expected.pop("value")
    for key, value in expected.items():
        assert getattr(ctrl.data, key) == value, key

    # PV(form='time', as_string=True): TIME_ENUM for the value, CTRL_ENUM for its text
    (time_op,) = [op for op in client["ops"] if op["op"] == "pv_get" and op["form"] == "time"]
    valve = [r for r in reads if pv_of_sid[r.sid] == time_op["pv"]]
    time_reply = [reply_to[r.ioid] for r in valve if r.data_type == DBRType.TIME_ENUM][-1]
    enum_reply = [reply_to[r.ioid] for r in valve if r.data_type == DBRType.CTRL_ENUM][-1]
    result = time_op["result"]
    assert enum_reply.data.enum_strings[time_reply.value] == result["value"]
    assert (time_reply.data.status, time_reply.data.severity) == (
        result["status"], result["severity"])
    assert time_reply.data.nanoseconds == result["nanoseconds"]
    assert time_reply.data.timestamp == pytest.approx(result["timestamp"], abs=1e-6)

    # caget(as_string=True) of the char waveform: libca subscribes (TIME_CHAR)
    (caget,) = [op for op in client["ops"] if op["op"] == "caget"]
    (update,) = [r for r in responses if isinstance(r, m.EventAddResponse)]
    assert update.data_type == DBRType.TIME_CHAR
    assert bytes(update.data.values).split(b"\0")[0].decode() == caget["result"]



@pytest.mark.parametrize("sender", [Role.CLIENT, Role.SERVER, Role.REPEATER, None])
def test_split_datagram_makes_the_messages_make_message_makes(sender: Role | None) -> None:
    """The splitter makes most message objects itself: each is what
    :func:`decoder.messages.make_message` makes of its header and payload (its form, an
    unknown command's id, EVENT_ADD's two forms, an extended header, a guessed sender)."""
    wire = [
        m.VersionRequest(priority=0, version=13).to_bytes(),
        m.SearchRequest(reply=10, version=13, cid=7, name="DEMO:PV").to_bytes(),
        m.HEADER.pack(0x7F00, 0, 1, 2, 3, 4),  # no such command
        m.EventAddResponse(data_type=6, data_count=1, status=1, subscriptionid=3,
                           data=[1.5]).to_bytes(),
        m.HEADER.pack(1, 0, 6, 1, 1, 3),  # the EVENT_CANCEL reply
        m.EventAddResponse(data_type=6, data_count=9000, status=1, subscriptionid=3,
                           data=[0.5] * 9000, extended=True).to_bytes(),
        m.SearchResponse(port=5064, cid=7).to_bytes(),
    ]
    messages = split_datagram(b"".join(wire), sender)
    assert len(messages) == len(wire)
    for raw, message in zip(wire, messages, strict=True):
        header = m.decode_header(raw)
        assert header is not None
        command, size, data_type, count, p1, p2, header_size = header
        made = m.make_message(command, sender, data_type, count, p1, p2,
                              raw[header_size : header_size + size],
                              header_size == m.EXTENDED_HEADER_SIZE)
        assert type(message) is type(made)
        assert message.to_bytes() == made.to_bytes() == raw
        for field in ("data_type", "data_count", "parameter1", "parameter2", "extended",
                      "role_guessed"):
            assert getattr(message, field) == getattr(made, field), field
    assert messages[2].command == 0x7F00
