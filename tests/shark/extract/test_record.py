"""Record kinds: an Enum of their own, apart from TCP event kinds, printed as before."""

from __future__ import annotations

import json

from builders import capture_streams, synthetic, tcp_frames

import shark
from decoder import Role
from shark.extract.bulk import UPDATES, UpdateBatch
from shark.extract.reader import CaReader
from shark.extract.record import Record, RecordKind
from shark.network.reassembly import TcpEventKind
from shark.output.jsonl import record_dict, record_json
from shark.output.text import format_record


def test_record_kinds_are_members_of_one_enum_with_the_old_names_and_values() -> None:
    assert [shark.MESSAGE, shark.GAP, shark.ERROR, shark.OPEN, shark.CLOSE] == [
        RecordKind.MESSAGE, RecordKind.GAP, RecordKind.ERROR, RecordKind.OPEN,
        RecordKind.CLOSE]
    assert all(isinstance(kind, RecordKind) for kind in (
        shark.MESSAGE, shark.GAP, shark.ERROR, shark.OPEN, shark.CLOSE, UPDATES))
    assert UpdateBatch.kind is RecordKind.UPDATES
    # The strings they were still compare equal, and print the same.
    assert shark.GAP == "gap" and shark.MESSAGE == "message" and UPDATES == "updates"
    assert str(shark.GAP) == "gap" and f"{shark.CLOSE}" == "close"
    assert json.dumps(shark.ERROR) == '"error"'


def test_tcp_event_kinds_are_another_type_that_no_record_kind_equals() -> None:
    assert not isinstance(TcpEventKind.GAP, RecordKind)
    assert TcpEventKind.GAP is not RecordKind.GAP
    assert TcpEventKind.GAP != RecordKind.GAP and RecordKind.GAP != TcpEventKind.GAP
    assert TcpEventKind.GAP != "gap"  # not a string either
    for kind in TcpEventKind:
        assert all(kind != record_kind for record_kind in RecordKind)


def test_a_tcp_gap_becomes_a_record_gap() -> None:
    """The reader turns the reassembler's GAP into a GAP record, and its other events
    into OPEN and CLOSE records: each compared with its own kind."""
    client, server = capture_streams("ca_basic_default_port.pcap")
    segments = synthetic(b"".join(client), b"".join(server), [40], [40], drop=[(False, 3)])
    records = list(CaReader(lifecycle=True).records(tcp_frames(segments)))
    kinds = {record.kind for record in records}
    assert kinds <= set(RecordKind) and RecordKind.GAP in kinds
    assert records[0].kind is RecordKind.OPEN and records[-1].kind is RecordKind.CLOSE
    gap = next(r for r in records if r.kind is RecordKind.GAP)
    assert gap.sender is Role.SERVER and gap.size == 40


def _record(kind: RecordKind, size: int = 0, reason: str = "") -> Record:
    return Record(kind, 7, 1.5, "10.0.0.1:5064", "10.0.0.2:40000", "tcp", 1, Role.SERVER,
                  None, size, reason)


def test_jsonl_and_text_print_what_they_printed_when_kinds_were_strings() -> None:
    gap = _record(RecordKind.GAP, 40, "40 bytes missing from the capture (fin)")
    assert record_dict(gap) == {
        "frame": 7, "time": 1.5, "src": "10.0.0.1:5064", "dst": "10.0.0.2:40000",
        "transport": "tcp", "circuit": 1, "sender": "server", "command": "GAP",
        "command_id": None, "pv": None, "data_type": None, "data_count": None,
        "status": None, "value": None, "latency": None, "size": 40,
        "reason": "40 bytes missing from the capture (fin)",
    }
    commands = {kind: json.loads(record_json(_record(kind)))["command"]
                for kind in (RecordKind.GAP, RecordKind.ERROR, RecordKind.OPEN,
                             RecordKind.CLOSE)}
    assert commands == {RecordKind.GAP: "GAP", RecordKind.ERROR: "UNDECODED",
                        RecordKind.OPEN: "OPEN", RecordKind.CLOSE: "CLOSE"}
    assert format_record(_record(RecordKind.CLOSE, reason="fin")).endswith("CLOSE (fin)")
    assert format_record(gap).endswith("GAP 40 bytes: 40 bytes missing from the capture (fin)")
