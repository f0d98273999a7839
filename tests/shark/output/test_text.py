"""One line of text per record (:mod:`shark.output.text`), compared with exact strings:
messages with and without a PV, latencies, circuit marks, gaps and undecodable bytes,
and the few words a DBR value is shown in."""

from __future__ import annotations

import math

import pytest
from builders import OWN_CAPTURES, built_record, first_record

import shark
from decoder import Channel, DBRType, DBRValue, Message, Subscription, dbr
from decoder import messages as m
from shark.extract.record import CLOSE, ERROR, GAP, OPEN, Record
from shark.output.text import describe, details, format_record, format_value, subject

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"
ECA_NORMAL = 1


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(shark.read(BASIC, lifecycle=True))


def update(value: float = 22.0) -> m.EventAddResponse:
    """A DBR_TIME_DOUBLE update of subscription 15, in MINOR/HIHI alarm."""
    data = DBRValue(DBRType.TIME_DOUBLE, [value], status=3, severity=1, seconds=1000,
                    nanoseconds=5)
    return m.EventAddResponse(data_type=DBRType.TIME_DOUBLE, status=ECA_NORMAL,
                              subscriptionid=15, data=data)


# -- format_record -------------------------------------------------------------------


def test_a_response_with_its_pv_and_latency(records: list[Record]) -> None:
    reply = first_record(records, 23)
    assert reply.pv == "DEMO:BASIC:TEMP" and reply.latency is not None
    assert format_record(reply, records[0].time) == (
        "    23    2.459564        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  SERVER   "
        "READ_NOTIFY DEMO:BASIC:TEMP DBR_DOUBLE[1] status=ECA_NORMAL ioid=1 data=85.5 "
        "[0.136 ms]")
    # Without a start, the time is the capture's own.
    assert format_record(reply) == (
        "    23 1795269995.722625        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  "
        "SERVER   READ_NOTIFY DEMO:BASIC:TEMP DBR_DOUBLE[1] status=ECA_NORMAL ioid=1 "
        "data=85.5 [0.136 ms]")


def test_requests_arrays_alarms_and_flags_from_the_capture(records: list[Record]) -> None:
    start = records[0].time
    lines = {frame: format_record(first_record(records, frame, command), start)
             for frame, command in ((1, None), (8, None), (14, "ACCESS_RIGHTS"), (22, None),
                                    (34, None), (42, None), (53, None))}
    assert lines == {
        1: "     1    0.000000       127.0.0.1:34595 -> 127.0.0.1:5065        udp    SERVER   "
           "RSRV_IS_UP version=13 server_port=5064 beaconid=0 address=0.0.0.0",
        8: "     8    0.950868        127.0.0.1:5064 -> 127.0.0.1:52133       udp    SERVER   "
           "VERSION priority=1 version=13 sequence_number=1",
        14: "    14    0.956556        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  SERVER   "
            "ACCESS_RIGHTS DEMO:BASIC:TEMP cid=1 access_rights=READ|WRITE",
        22: "    22    2.459428       127.0.0.1:33700 -> 127.0.0.1:5064        tcp#1  CLIENT   "
            "READ_NOTIFY DEMO:BASIC:TEMP DBR_DOUBLE[0] sid=0 ioid=1",
        34: "    34    2.478436        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  SERVER   "
            "READ_NOTIFY DEMO:BASIC:WAVE DBR_DOUBLE[10] status=ECA_NORMAL ioid=6 "
            "data=[0.0, 0.5, 1.0, 1.5, ...] (10) [0.253 ms]",
        42: "    42    2.483002        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  SERVER   "
            "READ_NOTIFY DEMO:BASIC:TEMP DBR_TIME_DOUBLE[1] status=ECA_NORMAL ioid=10 "
            "data=85.50 MINOR/HIGH [0.093 ms]",
        53: "    53    2.501494       127.0.0.1:33700 -> 127.0.0.1:5064        tcp#1  CLIENT   "
            "EVENT_ADD DEMO:BASIC:COUNTER DBR_TIME_DOUBLE[0] sid=6 subscriptionid=15 "
            "mask=VALUE|ALARM",
    }
    assert format_record(first_record(records, 8, "SEARCH"), start) == (
        "     8    0.950868        127.0.0.1:5064 -> 127.0.0.1:52133       udp    SERVER   "
        "SEARCH DEMO:BASIC:TEMP port=5064 ip=255.255.255.255 cid=1 version=13 [0.107 ms]")


def test_a_message_without_a_pv_names_its_sid_or_subscription() -> None:
    record = built_record(update())
    head = ("    57    2.500000         10.0.0.2:5064 -> 10.0.0.1:40000        tcp#3  "
            "SERVER   EVENT_ADD ")
    tail = "DBR_TIME_DOUBLE[1] status=ECA_NORMAL subscriptionid=15 data=22.0 MINOR/HIHI"
    # Nothing known: no subject, and no double space where it would be.
    assert subject(record) == ""
    assert format_record(record, 10.0) == head + tail
    record.subscription = Subscription(15, None, DBRType.TIME_DOUBLE, 1, None)
    assert subject(record) == "<subscription 15>"
    assert format_record(record, 10.0) == head + "<subscription 15> " + tail
    # A channel without a SID does not name it; one with a SID does, before the
    # subscription.
    record.channel = Channel(None, cid=4)
    assert subject(record) == "<subscription 15>"
    record.channel = Channel(None, cid=None, sid=6)
    assert subject(record) == "<sid=6>"
    assert format_record(record, 10.0) == head + "<sid=6> " + tail
    # The PV, once known, goes first.
    record.pv = "DEMO:X"
    assert subject(record) == "DEMO:X"
    assert format_record(record, 10.0) == head + "DEMO:X " + tail


def test_a_reply_without_a_pv_keeps_its_latency() -> None:
    reply = built_record(m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=ECA_NORMAL, ioid=2,
                                       data=[1.0]))
    reply.channel = Channel(None, None, sid=9)
    reply.latency = 0.0025
    assert format_record(reply) == (
        "    57   12.500000         10.0.0.2:5064 -> 10.0.0.1:40000        tcp#3  SERVER   "
        "READ_NOTIFY <sid=9> DBR_DOUBLE[1] status=ECA_NORMAL ioid=2 data=1.0 [2.500 ms]")


def test_a_message_with_no_fields_ends_with_its_name() -> None:
    assert format_record(built_record(m.EchoResponse())) == (
        "    57   12.500000         10.0.0.2:5064 -> 10.0.0.1:40000        tcp#3  SERVER   "
        "ECHO")


def test_open_and_close(records: list[Record]) -> None:
    start = records[0].time
    marks = [format_record(r, start) for r in records if r.kind in (OPEN, CLOSE)]
    assert marks == [
        "     9    0.951680       127.0.0.1:33700 -> 127.0.0.1:5064        tcp#1  ?        "
        "OPEN (syn)",
        "    78    3.502180       127.0.0.1:33700 -> 127.0.0.1:5064        tcp#1  CLIENT   "
        "CLOSE (fin)",
        "    81    3.509896        127.0.0.1:5064 -> 127.0.0.1:33700       tcp#1  SERVER   "
        "CLOSE (fin)",
    ]
    assert format_record(built_record(None, CLOSE, reason="rst")).endswith("SERVER   CLOSE (rst)")


def test_gap_and_undecoded() -> None:
    gap = built_record(None, GAP, 40, "40 bytes missing from the capture")
    assert format_record(gap) == (
        "    57   12.500000         10.0.0.2:5064 -> 10.0.0.1:40000        tcp#3  SERVER   "
        "GAP 40 bytes: 40 bytes missing from the capture")
    undecoded = built_record(None, ERROR, 12, "no CA header")
    assert format_record(undecoded, 12.5) == (
        "    57    0.000000         10.0.0.2:5064 -> 10.0.0.1:40000        tcp#3  SERVER   "
        "UNDECODED 12 bytes: no CA header")
    datagram = Record(ERROR, 3, 1.0, "10.0.0.1:1", "10.0.0.2:2", "udp", None, None, None, 5,
                      "short datagram")
    assert format_record(datagram) == (
        "     3    1.000000            10.0.0.1:1 -> 10.0.0.2:2            udp    ?        "
        "UNDECODED 5 bytes: short datagram")


# -- details -------------------------------------------------------------------------


def test_details() -> None:
    reply = built_record(m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=ECA_NORMAL, ioid=2,
                                       data=[1.0]))
    assert details(reply) == "DBR_DOUBLE[1] status=ECA_NORMAL ioid=2 data=1.0"
    reply.latency = 0.000136
    assert details(reply) == "DBR_DOUBLE[1] status=ECA_NORMAL ioid=2 data=1.0 [0.136 ms]"
    assert details(built_record(None, OPEN, reason="syn")) == "(syn)"
    assert details(built_record(None, CLOSE, reason="end of capture")) == "(end of capture)"
    assert details(built_record(None, GAP, 40, "lost")) == "40 bytes: lost"
    assert details(built_record(None, ERROR, 12, "bad size")) == "12 bytes: bad size"


def test_details_with_a_fields_callable() -> None:
    reply = built_record(m.ReadNotifyResponse(data_type=DBRType.DOUBLE, status=ECA_NORMAL, ioid=2,
                                       data=[1.0]))
    seen: list[Message] = []

    def ioid_only(message: Message) -> str:
        seen.append(message)
        return f"#{message.ioid}"

    assert details(reply, ioid_only) == "#2"
    assert seen == [reply.message]
    reply.latency = 1.5
    assert details(reply, ioid_only) == "#2 [1500.000 ms]"
    # Nothing to say but the latency: no leading space.
    assert details(reply, lambda message: "") == "[1500.000 ms]"
    # Records that are not messages do not use it.
    assert details(built_record(None, GAP, 40, "lost"), ioid_only) == "40 bytes: lost"
    assert len(seen) == 2


# -- describe ------------------------------------------------------------------------


def test_describe_names_numbers() -> None:
    error = m.ErrorResponse(cid=1, status=0x72, error_message="bad thing",
                            original_request=m.ReadNotifyRequest(sid=1, ioid=2, data_type=6))
    assert describe(error) == ("cid=1 status=ECA_BADTYPE original_request=READ_NOTIFY "
                               "original_payload_size=0 error_message='bad thing'")
    assert describe(m.AccessRightsResponse(cid=3, access_rights=0)) == (
        "cid=3 access_rights=NONE")
    assert describe(m.AccessRightsResponse(cid=3, access_rights=1)) == (
        "cid=3 access_rights=READ")
    # The deadbands of EVENT_ADD are not shown; the mask is spelled out.
    subscribe = m.EventAddRequest(data_type=6, data_count=1, sid=1, subscriptionid=2, mask=0)
    assert describe(subscribe) == "DBR_DOUBLE[1] sid=1 subscriptionid=2 mask=NONE"
    assert describe(m.RepeaterConfirmResponse(repeater_address=0x7F000001)) == (
        "repeater_address=127.0.0.1")
    assert describe(m.CreateChanRequest(cid=1, version=13, name="A:B")) == (
        "cid=1 version=13 name='A:B'")


def test_describe_an_undecodable_payload() -> None:
    # Ten doubles announced, one sent: the type is still shown, and the message says why.
    # (The header fields, status and ioid, are not shown either.)
    short = m.ReadNotifyResponse.from_wire(DBRType.DOUBLE, 10, ECA_NORMAL, 2, b"\0" * 8)
    assert describe(short) == (
        "DBR_DOUBLE[10] <undecodable payload: DBR_DOUBLE x 10 needs 80 bytes, payload has 8>")
    assert format_record(built_record(short)).endswith(
        "SERVER   READ_NOTIFY DBR_DOUBLE[10] <undecodable payload: DBR_DOUBLE x 10 needs 80 "
        "bytes, payload has 8>")


# -- format_value --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (DBRValue(DBRType.DOUBLE, [85.5]), "85.5"),
    (DBRValue(DBRType.LONG, [3]), "3"),
    (DBRValue(DBRType.STRING, ["hello shark"]), "hello shark"),
    (DBRValue(DBRType.DOUBLE, [math.nan]), "nan"),
    (DBRValue(DBRType.DOUBLE, [math.inf, -math.inf]), "[inf, -inf] (2)"),
    (DBRValue(DBRType.DOUBLE, []), "[] (0)"),
    # Four elements are all shown; from five on, the first four and the count.
    (DBRValue(DBRType.DOUBLE, [1.0, 2.0, 3.0, 4.0]), "[1.0, 2.0, 3.0, 4.0] (4)"),
    (DBRValue(DBRType.DOUBLE, [0.0, 0.5, 1.0, 1.5, 2.0]), "[0.0, 0.5, 1.0, 1.5, ...] (5)"),
    (DBRValue(DBRType.LONG, list(range(10))), "[0, 1, 2, 3, ...] (10)"),
    (DBRValue(DBRType.STRING, ["a", "b", "c", "d", "e"]), "[a, b, c, d, ...] (5)"),
    # The alarm, when there is one: severity/status.
    (DBRValue(DBRType.STS_DOUBLE, [85.5], status=3, severity=1), "85.5 MINOR/HIHI"),
    (DBRValue(DBRType.STS_DOUBLE, [85.5], status=0, severity=0), "85.5"),
    (DBRValue(DBRType.TIME_DOUBLE, [1.0, 2.0, 3.0, 4.0, 5.0], status=7, severity=2,
              seconds=1, nanoseconds=0), "[1.0, 2.0, 3.0, 4.0, ...] (5) MAJOR/STATE"),
    (DBRValue(DBRType.STS_LONG, [7], status=17, severity=3), "7 INVALID/UDF"),
])
def test_format_value(value: DBRValue, text: str) -> None:
    assert format_value(value) == text


def test_format_value_with_what_the_channel_knows() -> None:
    """A channel's PREC and enum strings (learned from its GR/CTRL replies) show in its
    values; the alarm stays after the value."""
    channel = Channel("DEMO:X", 1, 2)
    value = DBRValue(DBRType.STS_DOUBLE, [61.225299458304725], status=3, severity=1)
    assert format_value(value, channel) == "61.225299458304725 MINOR/HIHI"
    channel.precision = 2
    assert format_value(value, channel) == "61.23 MINOR/HIHI"
    assert format_value(DBRValue(DBRType.LONG, [61]), channel) == "61"
    assert format_value(DBRValue(DBRType.DOUBLE, [1.0, 2.5, 3.0]), channel) == (
        "[1.00, 2.50, 3.00] (3)")
    channel.enum_strings = ("Idle", "Running")
    assert format_value(DBRValue(DBRType.TIME_ENUM, [1], status=0, severity=0, seconds=1,
                                 nanoseconds=0), channel) == "Running"
    assert format_value(DBRValue(DBRType.ENUM, [7]), channel) == "7"


def test_the_state_strings_of_the_capture(records: list[Record]) -> None:
    """softioc_pyepics_basic reads DEMO:BASIC:STATE as DBR_ENUM, then as DBR_CTRL_ENUM:
    the first read came before its channel knew the states (the index, as every view
    shows it, whatever came later), the second carries them."""
    first, second = (r for r in records if r.pv == "DEMO:BASIC:STATE" and r.message.payload
                     and r.message.data_type in (DBRType.ENUM, DBRType.CTRL_ENUM))
    assert first.time < second.time and first.reading is None
    assert details(first).split(" data=")[1].split(" ")[0] == "1"
    assert details(second).split(" data=")[1].split(" ")[0] == "Running"
    assert second.reading.enum_strings[1] == "Running"
    assert describe(second.message).endswith("data=Running")  # its own strings


def test_format_value_of_decoded_payloads() -> None:
    """Decoded arrays may be numpy arrays: their elements are shown as plain numbers."""
    five = dbr.decode(DBRType.DOUBLE, 5, dbr.encode(DBRType.DOUBLE, [1.0, 2.0, 3.0, 4.0, 5.0], 5))
    assert format_value(five) == "[1.0, 2.0, 3.0, 4.0, ...] (5)"
    longs = dbr.decode(DBRType.LONG, 6, dbr.encode(DBRType.LONG, [-1, 2, 3, 4, 5, 6], 6))
    assert format_value(longs) == "[-1, 2, 3, 4, ...] (6)"
    alarm = DBRValue(DBRType.TIME_DOUBLE, [85.5], status=4, severity=1, seconds=1,
                     nanoseconds=2)
    one = dbr.decode(DBRType.TIME_DOUBLE, 1, dbr.encode(DBRType.TIME_DOUBLE, alarm, 1))
    assert format_value(one) == "85.5 MINOR/HIGH"
