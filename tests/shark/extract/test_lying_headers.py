"""The hostile captures whose headers lie about their size or command: at most the
corrupted message is lost, and it is marked, on the per-record path and the bulk one.

The captures are in the shared hostile folder (its README tells what each did before);
the tests skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import ROOT

import shark
from decoder import Command, Role
from decoder import messages as m
from shark.capture.files import read_frames
from shark.extract.bulk import HeaderRoom, Run, frame_headers
from shark.extract.reader import CaReader
from shark.extract.record import ERROR, GAP, MESSAGE, UPDATES

HOSTILE = ROOT.parent / "shared" / "hostile"


def hostile(name: str) -> Path:
    path = HOSTILE / name
    if not path.is_file():
        pytest.skip(f"hostile capture {name} not found")
    return path


def _read(path: Path, bulk: bool) -> list:
    """The records of the reader alone (bulk: update batches as their records)."""
    out = []
    for item in CaReader(bulk=bulk).records(read_frames(path)):
        out += item.records() if item.kind is UPDATES else [item]
    return out


def _key(record) -> tuple:
    return (record.kind, record.frame, record.sender, record.command, record.size)


@pytest.mark.parametrize("bulk", [False, True], ids=["records", "bulk"])
def test_a_lying_size_costs_the_one_message(bulk: bool) -> None:
    """One header's size set to 0xFFF8 hid 64 KB of the circuit after it: now only its
    own 24 bytes are skipped, as one ERROR record, and the 1,309 other messages of the
    capture (1,310 with the corrupted one) are all read."""
    records = _read(hostile("one_lying_size_field_hides_rest_of_circuit.pcap"), bulk)
    marks = [r for r in records if r.kind in (ERROR, GAP)]
    assert [(r.kind, r.size) for r in marks] == [(ERROR, 24)]
    assert "65528" in marks[0].reason
    assert sum(r.kind is MESSAGE for r in records) == 1309


def test_both_paths_read_a_lying_size_alike() -> None:
    path = hostile("one_lying_size_field_hides_rest_of_circuit.pcap")
    assert sorted(map(_key, _read(path, True))) == sorted(map(_key, _read(path, False)))


def test_a_flipped_size_bit_costs_the_one_message() -> None:
    """A READ_NOTIFY reply whose size claims 136 bytes swallowed the 4 replies after it
    and showed a VERSION never sent: now it is one ERROR record and the rest is read."""
    records = list(shark.read(hostile("bitflip_size_swallows_4_msgs.pcap")))
    marks = [r for r in records if r.kind in (ERROR, GAP)]
    assert [(r.kind, r.size) for r in marks] == [(ERROR, 24)]
    server = [r for r in records
              if r.kind is MESSAGE and r.sender is Role.SERVER and r.transport == "tcp"]
    assert [r.command for r in server].count(Command.VERSION) == 1
    asked = {r.message.ioid for r in records if r.kind is MESSAGE
             and type(r.message) in (m.ReadNotifyRequest, m.WriteNotifyRequest)}
    answered = {r.message.ioid for r in server
                if type(r.message) in (m.ReadNotifyResponse, m.WriteNotifyResponse)}
    assert len(asked - answered) == 1  # the corrupted reply's


def test_a_flipped_command_bit_is_an_anomaly() -> None:
    """A WRITE_NOTIFY reply read as a CREATE_CHAN reply: a reply to a CREATE_CHAN
    request never made, marked as such."""
    records = list(shark.read(hostile("bitflip_writenotify_to_createchan_silent.pcap")))
    marked = [r for r in records if r.anomaly is not None]
    assert [(r.command, r.anomaly.kind) for r in marked] == [
        (Command.CREATE_CHAN, "response without request")]


def _run(buffer: bytes) -> Run | None:
    framed = frame_headers(buffer, 1 << 20)
    if framed is None:
        return None
    starts, _end, headers = framed
    return Run(buffer, starts, np.array([0, len(starts)]), [1], [0.0], headers)


def _bulk_frames(buffer: bytes) -> bool:
    """Whether the bulk path takes ``buffer`` (else it goes the way that resyncs)."""
    run = _run(buffer)
    return run is not None and run.sizes_fit()


def test_bulk_framing_refuses_a_header_its_fields_contradict() -> None:
    update = m.EventAddResponse(data_type=6, data_count=1, status=1, subscriptionid=3,
                                data=[1.5]).to_bytes()
    assert _run(update * 3).starts.tolist() == [0, 24, 48]
    assert _bulk_frames(update * 3)
    liar = bytearray(update)
    liar[2:4] = b"\xff\xf8"
    assert frame_headers(update + bytes(liar[:16]), 1 << 20) is None  # the incomplete one
    assert not _bulk_frames(update + bytes(liar) + update)
    wrong_type = bytearray(update)
    wrong_type[4:6] = b"\x00\x14"  # TIME_DOUBLE takes 24 bytes, not 8
    assert _run(update + bytes(wrong_type) + update) is not None
    assert not _bulk_frames(update + bytes(wrong_type) + update)
    empty = m.HEADER.pack(1, 0, 6, 1, 1, 3)  # the EVENT_CANCEL reply carries nothing
    assert _bulk_frames(update + empty)
    string = m.HEADER.pack(1, 8, 0, 1, 1, 3) + b"on".ljust(8, b"\0")  # rsrv's short string
    assert _bulk_frames(string + update)


def test_headers_copied_while_framing_are_those_of_the_messages() -> None:
    """The headers :func:`frame_headers` copies out while it follows the chain (a stride
    of one size at once, a message at a time where sizes change, an extended header)
    give a run the very fields of each message's header, as the decoder reads it."""
    def update(kind: int, count: int, subscription: int) -> bytes:
        values = [0.5 * k for k in range(count)]
        return m.EventAddResponse(data_type=kind, data_count=count, status=1,
                                  subscriptionid=subscription, data=values).to_bytes()

    big = m.EventAddResponse(data_type=6, data_count=9000, status=1, subscriptionid=9,
                             data=[1.0] * 9000, extended=True).to_bytes()
    buffer = b"".join([update(6, 1, 1) * 5, update(6, 3, 2), update(5, 1, 3), big,
                       update(6, 1, 1) * 3, update(6, 2, 4) * 2, update(6, 1, 5)])
    buffer += update(6, 1, 1)[:20]  # an incomplete message at the end
    starts, end, headers = frame_headers(buffer, 1 << 20)
    assert len(headers) == len(starts) == 14 and end == len(buffer) - 20
    run = Run(buffer, starts, np.array([0, len(starts)]), [1], [0.0], headers)
    want, at = [], 0
    while at < end:  # the chain of messages, header by header
        command, size, data_type, count, p1, p2, header_size = m.decode_header(buffer, at)
        want.append((at, command, size, data_type, count, p1, p2, at + header_size,
                     header_size > m.HEADER_SIZE))
        at += header_size + size
    got = list(zip(starts.tolist(), run.command.tolist(), run.sizes.tolist(),
                   run.data_type.tolist(), run.data_count.tolist(), run.parameter1.tolist(),
                   run.parameter2.tolist(), run.bodies.tolist(), run.extended.tolist(),
                   strict=True))
    assert got == want
    assert run.data_count.tolist()[7] == 9000


def test_headers_framed_in_a_room_reused_are_each_stretch_own() -> None:
    """A reader frames stretch after stretch in one :class:`HeaderRoom`: each gets the
    headers of its own messages, and a run made from one keeps its fields when the room
    is used again (and grown) for the next."""
    def updates(kind: int, count: int, subscriptions: range) -> bytes:
        return b"".join(m.EventAddResponse(data_type=kind, data_count=count, status=1,
                                           subscriptionid=s, data=[0.5] * count).to_bytes()
                        for s in subscriptions)

    room = HeaderRoom()
    stretches = [updates(6, 1, range(1, 40)), updates(6, 3, range(100, 103)),
                 updates(5, 1, range(7, 500))]
    runs = []
    for buffer in stretches:
        starts, end, headers = frame_headers(buffer, 1 << 20, room)
        fresh = frame_headers(buffer, 1 << 20)[2]
        assert end == len(buffer) and headers.tobytes() == fresh.tobytes()
        runs.append(Run(buffer, starts, np.array([0, len(starts)]), [1], [0.0], headers))
    assert [run.parameter2.tolist() for run in runs] == [
        list(range(1, 40)), list(range(100, 103)), list(range(7, 500))]
    assert [set(run.data_type.tolist()) for run in runs] == [{6}, {6}, {5}]


@pytest.mark.parametrize("lie", ["size", "payload"])
def test_messages_after_a_bad_header_in_its_segment_are_read(lie: str) -> None:
    """Payload-less requests vouch for nothing, so a search for the next message would
    skip them all: the reader goes on at once where the bad message ends by its header's
    other fields (a lying size) or by its size (a payload where none belongs), whichever
    plausible messages follow."""
    from builders import synthetic, tcp_frames

    reads = [m.ReadNotifyRequest(data_type=6, data_count=1, sid=1, ioid=i).to_bytes()
             for i in range(6)]
    bad = bytearray(reads[0])
    if lie == "size":
        bad[2:4] = b"\xff\xf8"
    else:
        bad[2:4] = b"\x00\x10"  # 16 bytes of payload, and there they are
        bad += bytes(16)
    version = m.VersionRequest(priority=0, version=13).to_bytes()
    client = version + bytes(bad) + b"".join(reads[1:])
    frames = tcp_frames(synthetic(client, m.VersionResponse(version=13).to_bytes(),
                                  [16, len(client) - 16], [16]))
    records = list(CaReader().records(frames))
    assert [(r.kind, r.size) for r in records if r.kind is not MESSAGE] == [(ERROR, len(bad))]
    assert [r.message.ioid for r in records if type(r.message) is m.ReadNotifyRequest] == [
        1, 2, 3, 4, 5]
