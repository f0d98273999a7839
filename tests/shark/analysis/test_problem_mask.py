"""One judge, two forms: :func:`problem_mask` over columns says of every row what
:func:`problems` says of the record it was made from."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from builders import OWN_CAPTURES, capture_paths

import shark
from decoder import Anomaly, Role
from decoder import messages as m
from shark.analysis.batch import records_batch
from shark.analysis.problems import PROBLEM_COLUMNS, is_problem, problem_mask
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record

CLIENT, SERVER = "127.0.0.1:40000", "127.0.0.1:5064"
SKIPPED = "capture starts inside the connection: 12 bytes skipped"


def _record(kind, message=None, circuit=1, reason="", anomaly=None) -> Record:
    record = Record(kind, 1, 1.0, SERVER, CLIENT, "tcp" if circuit else "udp", circuit,
                    Role.SERVER, message, size=10, reason=reason)
    if anomaly is not None:
        record.anomaly = Anomaly(anomaly, "detail", message, None)
    return record


def judged(records: list[Record], midstream: set[int]) -> list[bool]:
    return [is_problem(r, midstream) for r in records]


def test_every_rule_on_made_up_records() -> None:
    original = m.ReadNotifyRequest(sid=1, ioid=2)
    records = [
        _record(OPEN, circuit=1, reason="mid-stream"),
        _record(OPEN, circuit=2, reason="syn"),
        _record(MESSAGE, m.NotFoundResponse(cid=3), circuit=None),
        _record(MESSAGE, m.CreateChFailResponse(cid=3)),
        _record(MESSAGE, m.ServerDisconnResponse(cid=3)),
        _record(MESSAGE, m.WriteNotifyResponse(status=160, ioid=1)),
        _record(MESSAGE, m.WriteNotifyResponse(status=1, ioid=1)),
        _record(MESSAGE, m.WriteNotifyResponse(status=5, ioid=1)),  # an unknown code
        _record(MESSAGE, m.ErrorResponse(cid=4, status=1, original_request=original,
                                         error_message="no")),
        _record(MESSAGE, m.EchoResponse()),
        _record(MESSAGE, m.ReadNotifyRequest(sid=1, ioid=2)),
        _record(GAP, reason="lost"),
        _record(ERROR, reason="bad header"),
        _record(CLOSE, reason="rst"),
        _record(CLOSE, reason="fin"),
        *(_record(MESSAGE, m.ReadNotifyResponse(status=1, ioid=9), circuit=c,
                  anomaly="response without request") for c in (1, 2)),
        *(_record(ERROR, circuit=c, reason=SKIPPED) for c in (1, 2)),
        _record(MESSAGE, m.ReadNotifyResponse(status=1, ioid=9), circuit=1,
                anomaly="duplicate subscription"),
        _record(MESSAGE, m.CreateChFailResponse(cid=3), anomaly="unknown CID"),
    ]
    expected = judged(records, {1})
    assert expected == [False, False, True, True, True, True, False, True, True, False,
                        False, True, True, True, False, False, True, False, True, True, True]
    batch = records_batch(records)
    assert problem_mask(batch).tolist() == expected  # the OPEN rows tell of circuit 1
    without_open = records_batch(records[2:])
    assert problem_mask(without_open, {1}).tolist() == expected[2:]
    assert problem_mask(without_open).tolist() == judged(records[2:], set())
    # the columns it reads are enough
    assert problem_mask(records_batch(records, PROBLEM_COLUMNS)).tolist() == expected
    assert problem_mask(batch.select(["frame"])).tolist() == [False] * len(records)


def _cut(source: Path, target: Path, skip: int) -> None:
    """``source`` (a classic pcap) without its first ``skip`` packets: a capture that
    joins its circuit mid-stream."""
    data = source.read_bytes()
    little = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    header = "<IIII" if little else ">IIII"
    out, at, n = [data[:24]], 24, 0
    while at + 16 <= len(data):
        size = struct.unpack(header, data[at:at + 16])[2]
        if n >= skip:
            out.append(data[at:at + 16 + size])
        at, n = at + 16 + size, n + 1
    target.write_bytes(b"".join(out))


def _agree(path: Path) -> int:
    """Check both forms on a capture: its records (OPEN and CLOSE too) as a batch, and
    its messages table; the number of problems."""
    records = list(shark.read(path, lifecycle=True))
    midstream = {r.circuit for r in records if r.kind is OPEN and r.reason != "syn"}
    expected = np.array(judged(records, midstream), dtype=bool)
    assert problem_mask(records_batch(records)).tolist() == expected.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = shark.open(path, tables=["messages"]).arrow("messages")
    messages = np.array([r.kind not in (OPEN, CLOSE) for r in records])
    assert problem_mask(table, midstream).tolist() == expected[messages].tolist()
    return int(expected.sum())


@pytest.mark.parametrize("path", [*sorted(OWN_CAPTURES.glob("*.pcap")), *capture_paths()],
                         ids=lambda p: p.name)
def test_both_forms_agree_on_every_capture(path: Path) -> None:
    _agree(path)


def test_both_forms_agree_on_a_capture_joined_mid_stream(tmp_path: Path) -> None:
    late = tmp_path / "late.pcap"
    _cut(OWN_CAPTURES / "softioc_pyepics_basic.pcap", late, 14)
    records = list(shark.read(late, lifecycle=True))
    assert [r.reason for r in records if r.kind is OPEN] == ["mid-stream"]
    _agree(late)
