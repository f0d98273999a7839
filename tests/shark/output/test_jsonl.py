"""One JSON object per record (:mod:`shark.output.jsonl`): the keys its docstring
promises, for messages, gaps, undecodable bytes and circuit marks; the fast path of
:func:`record_json` writes exactly what :func:`record_dict` holds."""

from __future__ import annotations

import json
import math

import pytest
from builders import OWN_CAPTURES, built_record, first_record

import shark
from decoder import Anomaly, Channel, DBRType, DBRValue, Role
from decoder import messages as m
from shark.extract.record import ERROR, GAP, MESSAGE, OPEN, Record
from shark.output.jsonl import record_dict, record_json

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
ECA_NORMAL = 1

#: The keys of every object, in this order.
KEYS = ["frame", "time", "src", "dst", "transport", "circuit", "sender", "command",
        "command_id", "pv", "data_type", "data_count", "status", "value", "latency"]
#: Keys some records add.
OPTIONAL = {"display", "sid", "request_frame", "severity", "alarm_status", "epics_time", "anomaly",
            "size", "reason"}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(shark.read(BASIC, lifecycle=True))


def parsed(record: Record) -> dict:
    """The object ``record_json`` writes, read back from its UTF-8 bytes."""
    line = record_json(record)
    assert "\n" not in line
    return json.loads(line.encode("utf-8"))


def reply(data: object, data_type: DBRType = DBRType.DOUBLE) -> m.ReadNotifyResponse:
    return m.ReadNotifyResponse(data_type=data_type, status=ECA_NORMAL, ioid=2, data=data)


# -- what the objects hold -----------------------------------------------------------


def test_a_response_with_alarm_time_and_its_request(records: list[Record]) -> None:
    record = first_record(records, 42)
    out = parsed(record)
    assert list(out) == [*KEYS, "display", "severity", "alarm_status", "epics_time",
                         "request_frame"]
    assert out == {
        "frame": 42, "time": record.time, "src": "127.0.0.1:5064",
        "dst": "127.0.0.1:33700", "transport": "tcp", "circuit": 1, "sender": "server",
        "command": "READ_NOTIFY", "command_id": 15, "pv": "DEMO:BASIC:TEMP",
        "data_type": "DBR_TIME_DOUBLE", "data_count": 1, "status": "ECA_NORMAL",
        "value": 85.5, "latency": record.latency, "display": "85.50", "severity": "MINOR",
        "alarm_status": "HIGH", "epics_time": record.message.data.timestamp,
        "request_frame": 41,
    }
    assert record.time == 1795269995.746063 and 0 < record.latency < 1e-3
    assert math.isclose(out["epics_time"], 1795269993.260478, abs_tol=1e-6)


def test_a_request_an_array_and_a_string(records: list[Record]) -> None:
    request = parsed(first_record(records, 22))
    assert list(request) == KEYS
    assert {k: request[k] for k in ("sender", "command", "pv", "data_type", "data_count",
                                     "status", "value", "latency")} == {
        "sender": "client", "command": "READ_NOTIFY", "pv": "DEMO:BASIC:TEMP",
        "data_type": "DBR_DOUBLE", "data_count": 0, "status": None, "value": None,
        "latency": None}
    wave = parsed(first_record(records, 34))
    assert wave["value"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    assert wave["data_count"] == 10 and wave["request_frame"] == 33
    assert parsed(first_record(records, 30))["value"] == "hello shark"


def test_display_is_the_value_as_its_channel_has_it_read(records: list[Record]) -> None:
    """``value`` stays raw; ``display`` has the PREC and enum strings the capture carried
    (DEMO:BASIC:TEMP has PREC 2, DEMO:BASIC:STATE the states Idle, Running, Fault)."""
    shown = {(r.pv, r.message.data_type_name): parsed(r) for r in records
             if r.sender is Role.SERVER and isinstance(r.message, m._DataPayload)}
    temp = shown["DEMO:BASIC:TEMP", "DBR_CTRL_DOUBLE"]
    assert (temp["value"], temp["display"]) == (85.5, "85.50")
    state = shown["DEMO:BASIC:STATE", "DBR_CTRL_ENUM"]
    assert (state["value"], state["display"]) == (1, "Running")
    label = shown["DEMO:BASIC:LABEL", "DBR_STRING"]
    assert (label["value"], label["display"]) == ("hello shark", "hello shark")
    wave = shown["DEMO:BASIC:WAVE", "DBR_DOUBLE"]
    assert wave["display"] == "[0.0, 0.5, 1.0, 1.5, ...] (10)"
    assert "display" not in parsed(first_record(records, 22))  # a request carries no value


def test_messages_about_no_channel(records: list[Record]) -> None:
    beacon = parsed(first_record(records, 1))
    assert beacon == {
        "frame": 1, "time": first_record(records, 1).time, "src": "127.0.0.1:34595",
        "dst": "127.0.0.1:5065", "transport": "udp", "circuit": None, "sender": "server",
        "command": "RSRV_IS_UP", "command_id": 13, "pv": None, "data_type": None,
        "data_count": None, "status": None, "value": None, "latency": None,
    }


def test_sid_when_the_pv_is_unknown() -> None:
    record = built_record(reply([1.0]))
    record.channel = Channel(None, None, sid=9)
    out = parsed(record)
    assert list(out) == [*KEYS, "display", "sid"] and out["sid"] == 9 and out["pv"] is None
    record.pv = "DEMO:X"
    assert "sid" not in parsed(record)


def test_gap_and_undecoded() -> None:
    common = {"frame": 57, "time": 12.5, "src": "10.0.0.2:5064", "dst": "10.0.0.1:40000",
              "transport": "tcp", "circuit": 3, "sender": "server", "command_id": None,
              "pv": None, "data_type": None, "data_count": None, "status": None,
              "value": None, "latency": None}
    gap = parsed(built_record(None, GAP, 40, "40 bytes missing from the capture"))
    assert list(gap) == [*KEYS, "size", "reason"]
    assert gap == {**common, "command": "GAP", "size": 40,
                   "reason": "40 bytes missing from the capture"}
    undecoded = parsed(built_record(None, ERROR, 12, "no CA header"))
    assert list(undecoded) == [*KEYS, "size", "reason"]
    assert undecoded == {**common, "command": "UNDECODED", "size": 12,
                         "reason": "no CA header"}


def test_open_has_no_sender(records: list[Record]) -> None:
    opened = parsed(next(r for r in records if r.kind is OPEN))
    assert list(opened) == [*KEYS, "size", "reason"]
    assert (opened["command"], opened["sender"], opened["size"], opened["reason"]) == (
        "OPEN", None, 0, "syn")


def test_non_finite_floats_are_strings() -> None:
    assert parsed(built_record(reply([math.nan])))["value"] == "NaN"
    assert parsed(built_record(reply([math.inf])))["value"] == "Infinity"
    assert parsed(built_record(reply([math.nan, math.inf, -math.inf, 1.5])))["value"] == [
        "NaN", "Infinity", "-Infinity", 1.5]
    assert "NaN" not in record_json(built_record(reply([math.nan]))).replace('"NaN"', "")


def test_an_undecodable_value_and_an_anomaly() -> None:
    short = built_record(m.ReadNotifyResponse.from_wire(DBRType.DOUBLE, 10, ECA_NORMAL, 2,
                                                 b"\0" * 8))
    out = parsed(short)
    assert list(out) == [*KEYS, "anomaly"]
    assert (out["data_type"], out["data_count"], out["value"], out["anomaly"]) == (
        "DBR_DOUBLE", 10, None,
        "undecodable value: DBR_DOUBLE x 10 needs 80 bytes, payload has 8")
    marked = built_record(reply([1.0]))
    marked.anomaly = Anomaly("unknown ioid", "no request 2", marked.message, None)
    assert parsed(marked)["anomaly"] == "unknown ioid: no request 2"


def test_text_is_utf8_not_escaped() -> None:
    record = built_record(reply(["température"], DBRType.STRING))
    record.pv = "CAFÉ:T"
    line = record_json(record)
    assert '"pv":"CAFÉ:T"' in line and '"value":"température"' in line
    assert json.loads(line.encode("utf-8"))["pv"] == "CAFÉ:T"


@pytest.mark.parametrize("where", ["pv", "value"])
def test_bytes_that_are_not_utf8_still_give_utf8_json(where: str) -> None:
    raw = b"\xff\xfeAB".decode("utf-8", "surrogateescape")
    if where == "pv":
        search = m.SearchRequest(cid=1, name=b"\xff\xfeAB")
        record = Record(MESSAGE, 1, 1.0, "10.0.0.1:40000", "10.0.0.2:5064", "udp", None,
                        Role.CLIENT, search)
        record.pv = search.name
        assert record.pv == raw
    else:
        record = built_record(reply([raw], DBRType.STRING))
        assert record.message.data.value == raw
    line = json.loads(record_json(record).encode("utf-8"))
    assert line[where] == "\\xff\\xfeAB"
    assert record_dict(record)[where] == "\\xff\\xfeAB"


# -- record_dict and record_json agree -----------------------------------------------


def unusual() -> list[Record]:
    """Records off the fast path, or near its edges."""
    out = []
    with_sid = built_record(reply([math.nan]))
    with_sid.channel = Channel(None, None, sid=9)
    out.append(with_sid)
    out.append(built_record(reply([math.nan, math.inf, -math.inf, 1.5])))
    out.append(built_record(reply([1, 2, 3], DBRType.LONG)))
    out.append(built_record(reply([])))
    out.append(built_record(reply(DBRValue(DBRType.TIME_DOUBLE, [2.5], status=3, severity=1,
                                    seconds=1000, nanoseconds=5), DBRType.TIME_DOUBLE)))
    out.append(built_record(reply(DBRValue(DBRType.STS_DOUBLE, [2.5], status=0, severity=0),
                           DBRType.STS_DOUBLE)))
    out.append(built_record(reply(["température"], DBRType.STRING)))
    out.append(built_record(m.ReadNotifyResponse.from_wire(DBRType.DOUBLE, 10, ECA_NORMAL, 2,
                                                    b"\0" * 8)))
    anomalous = built_record(reply([1.0]))
    anomalous.anomaly = Anomaly("unknown ioid", "no request 2", anomalous.message, None)
    out.append(anomalous)
    out.append(built_record(m.UnknownCommand(99, data_type=1, data_count=2, parameter1=3)))
    out.append(built_record(m.ErrorResponse(cid=1, status=0x72, error_message="bad",
                                     original_request=m.ReadNotifyRequest(sid=1, ioid=2))))
    out.append(built_record(m.EchoResponse()))
    whole_seconds = built_record(m.EchoResponse())
    whole_seconds.time = 12  # an int: the fast path leaves it to record_dict
    out.append(whole_seconds)
    out.append(built_record(None, GAP, 40, "lost"))
    out.append(built_record(None, ERROR, 12, "bad"))
    return out


def test_record_json_is_record_dict_encoded(records: list[Record]) -> None:
    for record in [*records, *unusual()]:
        line = record_json(record)
        expected = record_dict(record)
        assert line == json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
        assert json.loads(line) == expected
        assert list(expected)[:len(KEYS)] == KEYS
        assert set(expected) - set(KEYS) <= OPTIONAL


def test_unknown_commands_by_number() -> None:
    out = parsed(built_record(m.UnknownCommand(99, data_type=1, data_count=2, parameter1=3)))
    assert (out["command"], out["command_id"]) == ("UNKNOWN_99", 99)
    assert parsed(built_record(m.UnknownCommand(99)))["command"] == "UNKNOWN_99"
