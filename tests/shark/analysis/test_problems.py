"""The one judge of what is an error (shark.analysis.problems), on records made here."""

from __future__ import annotations

from decoder import Anomaly, Role
from decoder import messages as m
from shark.analysis.problems import ProblemJudge, ProblemKind, is_problem, problems
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record

CLIENT, SERVER = "127.0.0.1:40000", "127.0.0.1:5064"


def _record(kind, frame=1, message=None, circuit=1, reason="", sender=Role.SERVER) -> Record:
    return Record(kind, frame, float(frame), SERVER, CLIENT, "tcp" if circuit else "udp",
                  circuit, sender, message, size=10, reason=reason)


def _kinds(record: Record, midstream=()) -> list[ProblemKind]:
    found = [p.kind for p in problems(record, midstream)]
    assert is_problem(record, midstream) == bool(found)
    return found


def test_messages_that_are_problems() -> None:
    assert _kinds(_record(MESSAGE, message=m.NotFoundResponse(cid=3), circuit=None)) == [
        ProblemKind.NOT_FOUND]
    assert _kinds(_record(MESSAGE, message=m.CreateChFailResponse(cid=3))) == [
        ProblemKind.CREATE_CH_FAIL]
    assert _kinds(_record(MESSAGE, message=m.ServerDisconnResponse(cid=3))) == [
        ProblemKind.SERVER_DISCONN]
    failed = _record(MESSAGE, message=m.WriteNotifyResponse(status=160, ioid=1))
    [problem] = problems(failed)
    assert (problem.kind, problem.label, problem.text) == (
        ProblemKind.FAILED_STATUS, "WRITE_NOTIFY", "ECA_PUTFAIL")
    assert _kinds(_record(MESSAGE, message=m.WriteNotifyResponse(status=1, ioid=1))) == []
    original = m.ReadNotifyRequest(sid=1, ioid=2)
    error = _record(MESSAGE, message=m.ErrorResponse(cid=4, status=160,
                                                       original_request=original,
                                                       error_message="no"))
    [problem] = problems(error)
    assert (problem.kind, problem.detail) == (ProblemKind.ERROR, "no")
    assert _kinds(_record(MESSAGE, message=m.EchoResponse())) == []


def test_records_without_messages() -> None:
    assert _kinds(_record(GAP, reason="lost")) == [ProblemKind.GAP]
    assert _kinds(_record(ERROR, reason="bad header")) == [ProblemKind.UNDECODED]
    assert _kinds(_record(CLOSE, reason="rst")) == [ProblemKind.RESET]
    assert _kinds(_record(CLOSE, reason="fin")) == []
    assert _kinds(_record(OPEN, reason="syn")) == []


def test_an_anomaly_and_an_error_message_are_two_problems() -> None:
    record = _record(MESSAGE, message=m.CreateChFailResponse(cid=3))
    record.anomaly = Anomaly("unknown CID", "cid 3", record.message, None)
    assert _kinds(record) == [ProblemKind.CREATE_CH_FAIL, ProblemKind.ANOMALY]


def test_what_joining_mid_stream_implies_is_no_problem() -> None:
    """On a circuit joined mid-stream, anomalies that follow from joining late and the
    bytes skipped to the first message are no problems; elsewhere they are."""
    judge = ProblemJudge()
    assert judge.see(_record(OPEN, circuit=1, reason="mid-stream")) == ()
    assert judge.see(_record(OPEN, circuit=2, reason="syn")) == ()
    assert judge.midstream == {1}
    for circuit, expected in ((1, []), (2, [ProblemKind.ANOMALY])):
        late = _record(MESSAGE, message=m.ReadNotifyResponse(status=1, ioid=9),
                       circuit=circuit)
        late.anomaly = Anomaly("response without request", "ioid 9", late.message, None)
        assert [p.kind for p in judge.see(late)] == expected
    skipped = "capture starts inside the connection: 12 bytes skipped"
    assert judge.see(_record(ERROR, circuit=1, reason=skipped)) == ()
    assert [p.kind for p in judge.see(_record(ERROR, circuit=2, reason=skipped))] == [
        ProblemKind.UNDECODED]
    odd = _record(MESSAGE, message=m.ReadNotifyResponse(status=1, ioid=9), circuit=1)
    odd.anomaly = Anomaly("duplicate subscription", "id 3", odd.message, None)
    assert [p.kind for p in judge.see(odd)] == [ProblemKind.ANOMALY]


def test_a_reset_counts_once() -> None:
    """A reset closes both directions of its circuit: one problem."""
    judge = ProblemJudge()
    found = [judge.see(_record(CLOSE, frame=7, reason="rst", sender=s))
             for s in (Role.CLIENT, Role.SERVER)]
    assert [len(f) for f in found] == [1, 0]
    assert len(judge.see(_record(CLOSE, frame=7, circuit=2, reason="rst"))) == 1
