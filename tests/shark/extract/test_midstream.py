"""Damaged captures, end to end: cut mid-circuit, segments lost, reordered, duplicated,
streams re-segmented inside extended headers.

``tests/shark/network/test_reassembly.py`` checks reassembly and framing on synthetic
streams. Here capture files are written to ``tmp_path`` from real ones and read with
:func:`shark.read`, so that the session's attribution is checked too: everything after
the first point where the stream can be resynchronised decodes, each loss is a GAP
record, every PV named is the right one, and what the capture does not tell stays
unnamed (``pv`` None, with the SID where the message gives one) rather than guessed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

from builders import (
    capture,
    capture_streams,
    connection,
    pcap_bytes,
    real_frames,
    split_points,
    synthetic,
    tcp_frames,
    tcp_payload_size,
    write,
)

import shark
from decoder import DBRType, ReadNotifyRequest, ReadNotifyResponse, Role
from decoder import messages as m
from shark.capture.files import LinkType
from shark.output.jsonl import record_dict, record_json

#: Messages whose SID is known to the circuit state even when their PV is not.
WITH_SID = (m.CreateChanResponse, m.ReadNotifyRequest, m.ReadNotifyResponse,
            m.WriteNotifyRequest, m.WriteRequest, m.EventAddRequest, m.EventAddResponse,
            m.EventCancelRequest, m.ClearChannelRequest, m.ClearChannelResponse)

def by_direction(records: Iterable[shark.Record]) -> dict[tuple[str, str], list[shark.Record]]:
    out: dict[tuple[str, str], list[shark.Record]] = {}
    for r in records:
        if r.transport == "tcp":
            out.setdefault((r.src, r.dst), []).append(r)
    return out


def align(damaged: list[shark.Record], full: list[shark.Record]) -> list[int]:
    """For each message of ``damaged``, the index of the same message (same bytes) in
    ``full``, matching forwards only: duplicates cannot match twice, nothing reorders."""
    indexes, j = [], 0
    wire = [r.message.to_bytes() for r in full]
    for r in damaged:
        data = r.message.to_bytes()
        while wire[j] != data:
            j += 1  # IndexError: a message that is not in the full capture
        indexes.append(j)
        j += 1
    return indexes


def messages(records: Iterable[shark.Record]) -> list[shark.Record]:
    return [r for r in records if r.kind == shark.MESSAGE]


def test_capture_cut_mid_circuit_names_only_what_it_shows(tmp_path: Path) -> None:
    """ca_many_channels_500 cut after the client sent most of its CREATE_CHAN requests.

    What the cut file can tell about a channel: its name, from a CREATE_CHAN request or
    a search kept; which CID a SID stands for, from a CREATE_CHAN reply or a
    CLEAR_CHANNEL request decoded. A message names its PV when both are known by then,
    and no other does; an unnamed one still gives the SID. (The server's CREATE_CHAN
    replies right after the cut carry no payload to resynchronise on, so the kept
    channels are linked to their SIDs only by their CLEAR_CHANNEL.)"""
    path = capture("ca_many_channels_500.pcap")
    full = list(shark.read(path))
    creating = sorted({r.frame for r in full if type(r.message) is m.CreateChanRequest})
    cut = creating[-2] + 1  # the last batch of CREATE_CHAN requests is kept
    frames, linktype = real_frames(path)
    # The server listens on a port of its own, which the beacons before the cut
    # announced: the user of such a capture says it with --port.
    port = int(next(r.dst for r in full if r.circuit and r.sender == Role.CLIENT)
               .rpartition(":")[2])
    damaged = list(shark.read(write(tmp_path, frames[cut - 1 :], linktype), ports=[port]))
    shift = cut - 1  # frame numbers of the cut file are shifted by this

    assert not [r for r in damaged if r.kind == shark.GAP]  # nothing lost after the cut
    truth: dict[int, shark.Record] = {}
    full_dirs = by_direction(full)
    for key, records in by_direction(damaged).items():
        # resynchronisation errors only come first; then every message decodes
        kinds = [r.kind for r in records]
        assert shark.ERROR not in kinds[kinds.index(shark.MESSAGE):]
        decoded = messages(records)
        reference = full_dirs[key]
        indexes = align(decoded, reference)
        assert indexes == list(range(indexes[0], len(reference)))  # a suffix
        for r, i in zip(decoded, indexes, strict=True):
            # Until the first anchor is confirmed, messages wait (a false candidate
            # claiming a long payload holds the search until its bytes are in).
            assert r.frame + shift >= reference[i].frame
            truth[id(r)] = reference[i]
        if records[0].sender == Role.CLIENT:  # in sync at once: a name is an anchor
            assert len(decoded) == sum(r.frame >= cut for r in reference)

    names: set[int] = set()  # CIDs whose name the kept part tells
    links: set[int] = set()  # SIDs whose CID it tells
    named = unnamed = 0
    for r in damaged:
        msg = r.message
        if type(msg) is m.SearchRequest:
            names.add(msg.cid)
        if r.transport == "udp" or r.kind != shark.MESSAGE:
            continue
        if type(msg) is m.CreateChanRequest:
            names.add(msg.cid)
        elif type(msg) in (m.CreateChanResponse, m.ClearChannelRequest):
            links.add(msg.sid)
        channel = truth[id(r)].channel
        if channel is None:
            assert r.pv is None
            continue
        by_cid = isinstance(msg, (m.CreateChanRequest, m.CreateChanResponse,
                                  m.AccessRightsResponse))
        if channel.cid in names and (by_cid or channel.sid in links):
            assert r.pv == truth[id(r)].pv, r
            named += 1
        else:
            assert r.pv is None, r
            unnamed += 1
            if isinstance(msg, WITH_SID):
                assert record_dict(r)["sid"] == channel.sid
                assert record_dict(r)["pv"] is None
        request = truth[id(r)].request
        if request is not None and request.frame >= cut:  # the request was kept
            assert r.request is not None and r.request.frame + shift == request.frame
            if r.frame + shift == truth[id(r)].frame:
                assert r.latency == truth[id(r)].latency
    assert named >= 35 * 3  # the kept CREATE_CHAN requests and CLEAR_CHANNEL exchanges
    assert unnamed > 1000  # the reads, subscriptions and clears of the other channels
    # UDP after the cut is whole
    assert [(r.frame + shift, r.pv) for r in damaged if r.transport == "udp"] == [
        (r.frame, r.pv) for r in full if r.frame >= cut and r.transport == "udp"]
    # and the JSON lines say the same (their fast path writes the "sid" too)
    for r in damaged:
        assert record_json(r) == json.dumps(record_dict(r), separators=(",", ":"),
                                            ensure_ascii=False)


def test_lost_create_chan_named_by_the_clients_search(tmp_path: Path) -> None:
    """ca_server_restart cut inside the first circuit, and the client's segment carrying
    the second circuit's CREATE_CHAN requests lost. libca searches again with the same
    CIDs after the restart, so the second circuit's channels are named from the CIDs
    the server's replies give; after the GAP, every message still carries its PV."""
    path = capture("ca_server_restart.pcapng")
    full = list(shark.read(path))
    second = [r for r in full if r.circuit == 2]
    lost_frame = next(r.frame for r in second if type(r.message) is m.CreateChanRequest)
    first_updates = [r.frame for r in full if r.circuit == 1
                     and type(r.message) is m.EventAddResponse]
    cut = first_updates[len(first_updates) // 2]
    frames, linktype = real_frames(path)
    kept = [(n, f) for n, f in enumerate(frames, 1) if n >= cut and n != lost_frame]
    damaged = list(shark.read(write(tmp_path, [f for _, f in kept], linktype)))
    original = {new: n for new, (n, _) in enumerate(kept, 1)}

    circuits = sorted({r.circuit for r in damaged if r.circuit is not None})
    assert circuits == [1, 2]
    # the first circuit, joined mid-stream: its updates concern channels never named
    first = messages(r for r in damaged if r.circuit == 1)
    assert first and all(r.pv is None for r in first)
    assert first[0].anomaly is not None and first[0].anomaly.kind == "unknown subscription"
    # the second: one GAP, the lost segment
    gaps = [r for r in damaged if r.kind == shark.GAP]
    assert [(g.circuit, g.size) for g in gaps] == [
        (2, tcp_payload_size(frames[lost_frame - 1][1], linktype))]
    lost = [r for r in second if r.frame == lost_frame]
    assert {type(r.message) for r in lost} >= {m.VersionRequest, m.CreateChanRequest}
    expected = [r for r in second if r.frame != lost_frame]
    decoded = messages(r for r in damaged if r.circuit == 2)
    assert [(original[r.frame], r.pv, r.message.to_bytes()) for r in decoded] == [
        (r.frame, r.pv, r.message.to_bytes()) for r in expected]
    named = [r for r in decoded if type(r.message) in (m.CreateChanResponse,
                                                       m.AccessRightsResponse)]
    assert len(named) == 4 and all(r.pv for r in named)
    after_gap = [r for r in decoded if r.frame > gaps[0].frame]
    assert after_gap and all(r.pv is not None for r in after_gap
                             if type(r.message) not in (m.VersionResponse,))
    # responses are still paired after the loss
    read = next(r for r in decoded if type(r.message) is m.ReadNotifyResponse)
    assert read.request is not None and read.request.pv == read.pv


def test_two_clients_on_one_host_do_not_lend_each_other_names(tmp_path: Path) -> None:
    """ca_two_clients_two_iocs: two libca clients on one host number their channels
    alike (CID 1 is DEMO:IOCA:TEMP for one, DEMO:IOCA:TARGET for the other). With the
    segments of the first client's circuit to IOC A that create its channels lost, their
    CIDs are only told by CLEAR_CHANNEL at the end, after both clients searched: the
    CID both searched for the same name is named, the other is left unnamed, not given
    the other client's name."""
    path = capture("ca_two_clients_two_iocs.pcapng")
    full = list(shark.read(path))
    creating = {r.frame for r in full if type(r.message) in (
        m.CreateChanRequest, m.CreateChanResponse)}
    first_client_circuit = next(r.circuit for r in full
                                if type(r.message) is m.CreateChanRequest
                                and r.message.name == "DEMO:IOCA:TEMP")
    lost = {r.frame for r in full if r.frame in creating
            and r.circuit == first_client_circuit}
    searched = {r.message.name for r in full if type(r.message) is m.SearchRequest
                and r.message.cid == 1}
    assert searched == {"DEMO:IOCA:TEMP", "DEMO:IOCA:TARGET"}  # what makes it ambiguous
    frames, linktype = real_frames(path)
    kept = [f for n, f in enumerate(frames, 1) if n not in lost]
    damaged = list(shark.read(write(tmp_path, kept, linktype)))

    by_truth = {}
    for r in full:
        if r.circuit == first_client_circuit:
            by_truth.setdefault(type(r.message), []).append(r)
    clears = [r for r in damaged if type(r.message) is m.ClearChannelRequest
              and r.src == by_truth[m.ClearChannelRequest][0].src]
    assert [(r.message.cid, r.pv) for r in clears] == [(1, None), (2, "DEMO:IOCA:COUNTER")]
    assert record_dict(clears[0])["sid"] == clears[0].message.sid
    # and nothing anywhere is named wrong
    full_dirs = by_direction(full)
    for key, records in by_direction(damaged).items():
        decoded = messages(records)
        for r, i in zip(decoded, align(decoded, full_dirs[key]), strict=True):
            assert r.pv in (None, full_dirs[key][i].pv), r
    assert sum(r.kind == shark.GAP for r in damaged) == 2  # one per direction


def test_lost_reordered_and_duplicated_segments(tmp_path: Path) -> None:
    """ca_monitors_100hz with two server segments lost, neighbours swapped and segments
    repeated: each loss is one GAP of the segment's size; the rest decodes, once, in
    order, with the PVs and subscriptions of the undamaged capture."""
    path = capture("ca_monitors_100hz.pcap")
    full = list(shark.read(path))
    frames, linktype = real_frames(path)
    sizes = [tcp_payload_size(data, linktype) for _, data in frames]
    server_data = sorted({r.frame for r in full if r.circuit == 1 and r.sender == Role.SERVER
                          and sizes[r.frame - 1]})
    dropped = {server_data[len(server_data) // 3], server_data[2 * len(server_data) // 3]}
    order: list[int] = []
    n = 1
    while n <= len(frames):
        if (n % 11 == 0 and n + 1 <= len(frames) and sizes[n - 1] and sizes[n]
                and {n, n + 1} <= set(server_data) and not {n, n + 1} & dropped):
            order += [n + 1, n]  # two consecutive server segments, swapped
            n += 2
            continue
        if n not in dropped:
            order.append(n)
            if n % 7 == 0:
                order.append(n)  # a duplicate
        n += 1
    assert len(order) > len(frames)
    damaged = list(shark.read(write(tmp_path, [frames[i - 1] for i in order], linktype)))

    gaps = [r for r in damaged if r.kind == shark.GAP]
    assert sorted(g.size for g in gaps) == sorted(sizes[i - 1] for i in dropped)
    full_dirs = by_direction(full)
    for key, records in by_direction(damaged).items():
        reference = full_dirs[key]
        decoded = messages(records)
        indexes = align(decoded, reference)
        # what is missing is what the lost segments carried, plus at most one message
        # cut by each loss on either side
        lost_messages = sum(r.frame in dropped for r in reference)
        assert len(reference) - len(decoded) <= lost_messages + 2 * len(dropped)
        for r, i in zip(decoded, indexes, strict=True):
            truth = reference[i]
            assert r.pv == truth.pv
            if truth.subscription is not None:
                assert r.subscription.subscriptionid == truth.subscription.subscriptionid
        # errors (bytes skipped to resynchronise) only just after a gap
        for index, r in enumerate(records):
            if r.kind == shark.ERROR:
                assert records[index - 1].kind == shark.GAP and "after a gap" in r.reason
    assert sum(r.kind == shark.MESSAGE for r in damaged) > len(full) - 20


def test_resegmented_inside_extended_headers(tmp_path: Path) -> None:
    """ca_big_arrays' circuit with a segment boundary inside every extended header (in
    the 16-byte part and in the 8-byte extension), then the same connection captured
    from a segment that starts inside the extended header of the 800 kB reply."""
    full = [r for r in shark.read(capture("ca_big_arrays.pcap")) if r.circuit == 1]
    client, server = capture_streams("ca_big_arrays.pcap")
    assert sum(m[2:4] == b"\xff\xff" for m in client + server) >= 3
    segments = connection(full, split_points(client, (5, 20)),
                          split_points(server, (13, 17)))
    frames = [(f.time_ns, bytes(f.data)) for f in tcp_frames(segments)]
    whole = list(shark.read(write(tmp_path, frames, LinkType.IPV4, "whole.pcap")))
    assert all(r.kind == shark.MESSAGE for r in whole)
    assert [(r.pv, r.sender, r.message.to_bytes()) for r in whole] == [
        (r.pv, r.sender, r.message.to_bytes()) for r in full]

    # Start the capture at the segment beginning 17 bytes into the extended header of
    # the largest server message.
    largest = max(range(len(server)), key=lambda i: len(server[i]))
    start_offset = sum(map(len, server[:largest])) + 17
    seq = 501 + start_offset
    first = next(i for i, s in enumerate(segments) if not s[0] and s[1] == seq)
    cut = list(shark.read(write(tmp_path, frames[first:], LinkType.IPV4, "cut.pcap")))
    for sender in (Role.CLIENT, Role.SERVER):
        records = [r for r in cut if r.sender == sender]
        reference = [r for r in full if r.sender == sender]
        decoded = messages(records)
        assert decoded
        kinds = [r.kind for r in records]
        assert shark.ERROR not in kinds[kinds.index(shark.MESSAGE):]
        assert shark.GAP not in kinds
        indexes = align(decoded, reference)
        assert indexes == list(range(indexes[0], len(reference)))
        if sender == Role.SERVER:
            assert indexes[0] == largest + 1  # the one cut is skipped, the next decodes
            error = records[0]
            assert error.kind == shark.ERROR
            assert error.size == len(server[largest]) - 17
        for r, i in zip(decoded, indexes, strict=True):
            truth = reference[i]
            # the channels were created before the cut: unknown, but known by SID
            assert r.pv is None
            # known by SID: requests name it, responses through the request kept
            request_kept = r.request is not None or (
                r.subscription is not None and r.subscription.request is not None)
            if "sid" in type(r.message).FIELDS or request_kept:
                assert record_dict(r)["sid"] == truth.channel.sid


def test_clear_channel_joins_a_channel_known_by_cid_to_its_sid() -> None:
    """Joined after the CREATE_CHAN request but without its reply, a circuit knows the
    channel's name by CID and sees its SID in requests: CLEAR_CHANNEL, which carries
    both, makes them one channel, named."""
    from decoder import Circuit

    circuit = Circuit()
    circuit.handle(m.CreateChanRequest(name="DEMO:X", cid=5), Role.CLIENT)
    read = circuit.handle(m.ReadNotifyRequest(sid=9, ioid=1, data_type=6, data_count=1),
                          Role.CLIENT)
    assert read.name is None and read.anomaly.kind == "unknown SID"
    clear = circuit.handle(m.ClearChannelRequest(sid=9, cid=5), Role.CLIENT)
    assert clear.name == "DEMO:X" and clear.channel is read.channel
    assert circuit.handle(m.ClearChannelResponse(sid=9, cid=5), Role.SERVER).name == "DEMO:X"


def test_resync_is_not_held_by_an_implausible_header() -> None:
    """A header that is not plausible is passed over at once, even when the payload it
    claims is not all buffered yet (it used to hold the search until the stream ended)."""
    from shark.extract.resync import find_message_start

    implausible = m.EventAddResponse(data_type=0, data_count=768, status=1,
                                     subscriptionid=1).header_bytes(256)
    _client, server = capture_streams("ca_monitors_100hz.pcap")
    real = b"".join(server[20:23])
    buffer = implausible + real
    assert find_message_start(buffer) == (len(implausible), True)


def test_payload_less_requests_resynchronise_at_a_segment_start() -> None:
    """Joined mid-connection, a client that only polls sends READ_NOTIFY requests, which
    carry no payload and so never vouch for themselves: its first segment of whole
    messages is where framing resumes. The segment before, which starts inside a
    request, is skipped (it must not be taken for a boundary)."""
    requests = [ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=7, ioid=i)
                .to_bytes() for i in range(1, 21)]
    replies = [ReadNotifyResponse(data_type=DBRType.DOUBLE, data_count=1, status=1,
                                  ioid=i, data=[i / 2]).to_bytes() for i in range(1, 21)]
    client = b"".join([b"\0\0\0\x07\0\0\0\x00", *requests])  # a request's last 8 bytes
    segments = synthetic(client, b"".join(replies), [8] + [16] * 20, [len(replies[0])],
                         handshake=False)
    frames = tcp_frames(segments)
    records = [r for r in shark.read(io.BytesIO(pcap_bytes(
        [(f.time_ns, bytes(f.data)) for f in frames], LinkType.IPV4)))]
    got = [r.message.ioid for r in records if type(r.message) is ReadNotifyRequest]
    assert got == list(range(1, 21))
    assert [r.message.ioid for r in records if type(r.message) is ReadNotifyResponse] == got
    skipped = [r for r in records if r.kind == "error" and r.sender == Role.CLIENT]
    assert [r.size for r in skipped] == [8]
