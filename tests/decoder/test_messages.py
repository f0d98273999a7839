"""Message classes: names of fields, round trips through bytes, command resolution."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import build_message, framing_sender, message_args

from decoder import DecodeError, Role, StreamFramer, split_datagram
from decoder import messages as m
from decoder.dbr import DBRType, DBRValue
from decoder.protocol import Command

ROUND_TRIP = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- the specification, written out ------------------------------------------------------

#: (client's form, server's form) of every command 0-27.
SPEC_FORMS: dict[int, tuple[type[m.Message], type[m.Message]]] = {
    0: (m.VersionRequest, m.VersionResponse),
    1: (m.EventAddRequest, m.EventAddResponse),
    2: (m.EventCancelRequest, m.EventCancelRequest),
    3: (m.ReadRequest, m.ReadResponse),
    4: (m.WriteRequest, m.WriteRequest),
    5: (m.SnapshotRequest, m.SnapshotRequest),
    6: (m.SearchRequest, m.SearchResponse),
    7: (m.BuildRequest, m.BuildRequest),
    8: (m.EventsOffRequest, m.EventsOffRequest),
    9: (m.EventsOnRequest, m.EventsOnRequest),
    10: (m.ReadSyncRequest, m.ReadSyncRequest),
    11: (m.ErrorResponse, m.ErrorResponse),
    12: (m.ClearChannelRequest, m.ClearChannelResponse),
    13: (m.Beacon, m.Beacon),
    14: (m.NotFoundResponse, m.NotFoundResponse),
    15: (m.ReadNotifyRequest, m.ReadNotifyResponse),
    16: (m.ReadBuildRequest, m.ReadBuildRequest),
    17: (m.RepeaterConfirmResponse, m.RepeaterConfirmResponse),
    18: (m.CreateChanRequest, m.CreateChanResponse),
    19: (m.WriteNotifyRequest, m.WriteNotifyResponse),
    20: (m.ClientNameRequest, m.ClientNameRequest),
    21: (m.HostNameRequest, m.HostNameRequest),
    22: (m.AccessRightsResponse, m.AccessRightsResponse),
    23: (m.EchoRequest, m.EchoResponse),
    24: (m.RepeaterRegisterRequest, m.RepeaterRegisterRequest),
    25: (m.SignalRequest, m.SignalRequest),
    26: (m.CreateChFailResponse, m.CreateChFailResponse),
    27: (m.ServerDisconnResponse, m.ServerDisconnResponse),
}

_DATA = {"data_type": "data_type", "data_count": "data_count"}
_RAW = {**_DATA, "parameter1": "parameter1", "parameter2": "parameter2"}
_SID_IOID = {**_DATA, "sid": "parameter1", "ioid": "parameter2"}
_STATUS_IOID = {**_DATA, "status": "parameter1", "ioid": "parameter2"}
_SUBSCRIPTION = {**_DATA, "sid": "parameter1", "subscriptionid": "parameter2"}

#: The specification's name of each header field, and which header slot carries it.
SPEC_FIELDS: dict[type[m.Message], dict[str, str]] = {
    m.VersionRequest: {"priority": "data_type", "version": "data_count",
                       "sequence_number": "parameter1"},
    m.VersionResponse: {"priority": "data_type", "version": "data_count",
                        "sequence_number": "parameter1"},
    m.EventAddRequest: _SUBSCRIPTION,
    m.EventAddResponse: {**_DATA, "status": "parameter1", "subscriptionid": "parameter2"},
    m.EventCancelResponse: _SUBSCRIPTION,
    m.EventCancelRequest: _SUBSCRIPTION,
    m.ReadRequest: _SID_IOID,
    m.ReadResponse: _SID_IOID,
    m.WriteRequest: _SID_IOID,
    m.SnapshotRequest: _RAW,
    m.SearchRequest: {"reply": "data_type", "version": "data_count", "cid": "parameter1"},
    m.SearchResponse: {"port": "data_type", "data_count": "data_count", "ip": "parameter1",
                       "cid": "parameter2"},
    m.BuildRequest: _RAW,
    m.EventsOffRequest: {},
    m.EventsOnRequest: {},
    m.ReadSyncRequest: {},
    m.ErrorResponse: {"cid": "parameter1", "status": "parameter2"},
    m.ClearChannelRequest: {"sid": "parameter1", "cid": "parameter2"},
    m.ClearChannelResponse: {"sid": "parameter1", "cid": "parameter2"},
    m.Beacon: {"version": "data_type", "server_port": "data_count", "beaconid": "parameter1",
               "address": "parameter2"},
    m.NotFoundResponse: {"reply": "data_type", "version": "data_count", "cid": "parameter1"},
    m.ReadNotifyRequest: _SID_IOID,
    m.ReadNotifyResponse: _STATUS_IOID,
    m.ReadBuildRequest: _RAW,
    m.RepeaterConfirmResponse: {"repeater_address": "parameter2"},
    m.CreateChanRequest: {"cid": "parameter1", "version": "parameter2"},
    m.CreateChanResponse: {**_DATA, "cid": "parameter1", "sid": "parameter2"},
    m.WriteNotifyRequest: _SID_IOID,
    m.WriteNotifyResponse: _STATUS_IOID,
    m.ClientNameRequest: {},
    m.HostNameRequest: {},
    m.AccessRightsResponse: {"cid": "parameter1", "access_rights": "parameter2"},
    m.EchoRequest: {},
    m.EchoResponse: {},
    m.RepeaterRegisterRequest: {"client_address": "parameter2"},
    m.SignalRequest: _RAW,
    m.CreateChFailResponse: {"cid": "parameter1"},
    m.ServerDisconnResponse: {"cid": "parameter1"},
    m.UnknownCommand: _RAW,
}

SPEC_PAYLOAD_FIELDS: dict[type[m.Message], tuple[str, ...]] = {
    m.EventAddRequest: ("low", "high", "to", "mask"),
    m.EventAddResponse: ("data",),
    m.ReadResponse: ("data",),
    m.WriteRequest: ("data",),
    m.ReadNotifyResponse: ("data",),
    m.WriteNotifyRequest: ("data",),
    m.SearchRequest: ("name",),
    m.CreateChanRequest: ("name",),
    m.ClientNameRequest: ("name",),
    m.HostNameRequest: ("name",),
    m.SearchResponse: ("version",),
    m.ErrorResponse: ("original_request", "original_payload_size", "error_message"),
}

CLASSES = [*m.ALL_MESSAGE_CLASSES, m.UnknownCommand]


def _same(a: Any, b: Any) -> bool:
    """Equality of field values, NaN equal to NaN, request headers by their fields."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, m.Message) and isinstance(b, m.Message):
        return _header(a) == _header(b) and type(a) is type(b)
    return a == b


def _header(msg: m.Message) -> tuple[int, ...]:
    return (msg.command, msg.data_type, msg.data_count, msg.parameter1, msg.parameter2,
            msg.extended)


def _expected_fields(args: dict[str, Any], built: m.Message) -> dict[str, Any]:
    out = {k: v for k, v in args.items() if k not in ("payload", "command")}
    if out.get("original_payload_size", 0) is None:  # then the request's own payload size
        out["original_payload_size"] = args["original_request"].payload_size
    if "data" in out:
        dbr_type, values, metadata = out["data"]
        out["data"] = DBRValue(dbr_type, values, **metadata)
        out["data_type"] = dbr_type
        out["data_count"] = len(values)
    return out


# --- the tables -----------------------------------------------------------------------


def test_every_command_resolves_to_the_specified_forms() -> None:
    for command, (client_form, server_form) in SPEC_FORMS.items():
        assert m.message_class(command, Role.CLIENT) is client_form, command
        assert m.message_class(command, Role.SERVER) is server_form, command
        # the repeater speaks as a server (beacons, REPEATER_CONFIRM)
        assert m.message_class(command, Role.REPEATER) is server_form, command
        assert client_form.command == command == server_form.command
    for role in Role:
        assert m.message_class(28, role) is m.UnknownCommand
        assert m.message_class(0xFFFF, role) is m.UnknownCommand


def test_two_form_commands_have_one_class_per_sender() -> None:
    for command, (client_form, server_form) in SPEC_FORMS.items():
        if client_form is server_form:
            continue
        assert command in m.TWO_FORM_COMMANDS
        assert client_form.sender == Role.CLIENT
        assert server_form.sender == Role.SERVER
    assert m.TWO_FORM_COMMANDS == {
        c for c, (client, server) in SPEC_FORMS.items() if client is not server
    }


def test_empty_event_add_from_a_server_is_the_cancel_response() -> None:
    assert m.message_class(Command.EVENT_ADD, Role.SERVER, 0) is m.EventCancelResponse
    assert m.message_class(Command.EVENT_ADD, Role.SERVER, 16) is m.EventAddResponse
    assert m.message_class(Command.EVENT_ADD, Role.CLIENT, 0) is m.EventAddRequest


def test_empty_subscription_update_reads_as_the_cancel_confirmation() -> None:
    """A plain-type update of 0 elements has no payload (dbr_size_n(T, 0) is 0), so
    it cannot be told from the EVENT_CANCEL confirmation; libca's eventRespAction
    also drops every EVENT_ADD response without payload."""
    update = m.EventAddResponse(data_type=DBRType.DOUBLE, status=1, subscriptionid=4, data=[])
    assert update.payload_size == 0
    (out,) = StreamFramer(Role.SERVER).feed(update.to_bytes())
    assert type(out) is m.EventCancelResponse and out.subscriptionid == 4
    timed = m.EventAddResponse(data_type=DBRType.TIME_DOUBLE, status=1, subscriptionid=4,
                               data=[])
    (out,) = StreamFramer(Role.SERVER).feed(timed.to_bytes())
    assert type(out) is m.EventAddResponse and out.data.count == 0


def test_all_message_classes_is_exactly_the_specified_forms() -> None:
    specified = {cls for pair in SPEC_FORMS.values() for cls in pair} | {m.EventCancelResponse}
    assert set(m.ALL_MESSAGE_CLASSES) == specified
    assert len(m.ALL_MESSAGE_CLASSES) == len(specified)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_field_names_are_the_specifications(cls: type[m.Message]) -> None:
    assert cls.FIELDS == SPEC_FIELDS[cls]
    assert cls.PAYLOAD_FIELDS == SPEC_PAYLOAD_FIELDS.get(cls, ())
    if cls.FIELDS and set(cls.FIELDS) != set(_RAW):
        sample = m.UnknownCommand(99) if cls is m.UnknownCommand else cls()
        for name, slot in cls.FIELDS.items():
            setattr(sample, name, 12345)
            assert getattr(sample, slot) == 12345, name
            setattr(sample, slot, 0)


# --- round trips through bytes -----------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@ROUND_TRIP
@given(data=st.data())
def test_round_trip_every_class(cls: type[m.Message], data: st.DataObject) -> None:
    """Build from named fields, to_bytes(), frame back: same class, fields, bytes."""
    args = data.draw(message_args(cls))
    msg = build_message(cls, args)
    expected = _expected_fields(args, msg)
    fields = msg.fields()
    for name, value in expected.items():
        assert _same(fields[name], value), name
    wire = msg.to_bytes()
    assert len(wire) == msg.size and len(wire) % 8 == 0

    # the header slots carry the named fields where the specification says
    command, size, data_type, count, p1, p2 = m.HEADER.unpack_from(wire)
    header = {"data_type": data_type, "data_count": count, "parameter1": p1, "parameter2": p2}
    if msg.extended:
        assert (size, count) == (0xFFFF, 0)
        size, header["data_count"] = m.EXTENSION.unpack_from(wire, 16)
    assert command == msg.command
    assert size == len(wire) - msg.header_size
    for name, slot in SPEC_FIELDS[cls].items():
        assert header[slot] == expected.get(name, getattr(msg, name)), name

    sender = framing_sender(cls)
    framer = StreamFramer(sender)
    (streamed,) = framer.feed(wire)
    assert framer.pending == 0 and framer.bytes_consumed == len(wire)
    (datagram,) = split_datagram(wire, sender)
    for out in (streamed, datagram):
        assert type(out) is cls
        assert out.to_bytes() == wire
        assert out.extended == msg.extended
        assert out.role_guessed is False
        assert out.command == msg.command
        out_fields = out.fields()
        assert out_fields.keys() == fields.keys()
        for name, value in fields.items():
            assert _same(out_fields[name], value), name


def test_error_response_round_trip_keeps_the_original_payload_size() -> None:
    original = m.WriteNotifyRequest(data_type=DBRType.DOUBLE, sid=4, ioid=5, data=[1.0, 2.0])
    err = m.ErrorResponse(cid=4, status=160, original_request=original, error_message="no")
    (out,) = split_datagram(err.to_bytes(), Role.SERVER)
    assert out.original_payload_size == 16
    assert out.original_request.payload_size == 0  # the copy is of the header only
    assert _header(out.original_request) == _header(original)


# --- extended headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "count", "extended"),
    [(DBRType.CHAR, 0xFFF0, False), (DBRType.DOUBLE, 8191, False), (DBRType.DOUBLE, 8192, True)],
)
def test_extended_header_from_payload_size(data_type: int, count: int, extended: bool) -> None:
    """A payload of 0xFFFF bytes or more needs the extended header even when the
    count fits in 16 bits (8192 doubles are 0x10000 bytes)."""
    msg = m.ReadNotifyResponse(data_type=data_type, status=1, ioid=2, data=[0] * count)
    payload_size = msg.payload_size
    assert msg.extended is extended
    wire = msg.to_bytes()
    if extended:
        assert wire[:8] == bytes.fromhex("000f ffff 0006 0000")
        assert m.EXTENSION.unpack_from(wire, 16) == (0x10000, count)
    else:
        assert struct.unpack_from(">HHH", wire, 2) == (payload_size, data_type, count)
    (out,) = StreamFramer(Role.SERVER).feed(wire)
    assert out.extended is extended
    assert out.data_count == count
    assert out.data.count == count


@pytest.mark.parametrize(("count", "extended"), [(0xFFFE, False), (0xFFFF, True),
                                                  (0xFFFFFFFF, True)])
def test_extended_header_from_count(count: int, extended: bool) -> None:
    msg = m.ReadNotifyRequest(data_type=DBRType.DOUBLE, data_count=count, sid=1, ioid=2)
    assert msg.extended is extended
    wire = msg.to_bytes()
    assert len(wire) == (24 if extended else 16)
    if extended:
        assert m.HEADER.unpack_from(wire) == (15, 0xFFFF, 6, 0, 1, 2)
        assert m.EXTENSION.unpack_from(wire, 16) == (0, count)
    (out,) = split_datagram(wire, Role.CLIENT)
    assert (type(out), out.data_count, out.extended) == (m.ReadNotifyRequest, count, extended)


def test_extended_header_may_be_used_for_small_messages() -> None:
    msg = m.EchoRequest(extended=True)
    wire = msg.to_bytes()
    assert wire == bytes.fromhex("0017 ffff 0000 0000 00000000 00000000 00000000 00000000")
    (out,) = split_datagram(wire, Role.CLIENT)
    assert type(out) is m.EchoRequest and out.extended and out.size == 24


def test_big_array_message_round_trips() -> None:
    values = [float(i) for i in range(100_000)]
    msg = m.ReadNotifyResponse(data_type=DBRType.TIME_DOUBLE, status=1, ioid=9,
                               data=DBRValue(DBRType.TIME_DOUBLE, values, status=0,
                                             severity=0, seconds=1, nanoseconds=2))
    assert msg.extended and msg.data_count == 100_000
    wire = msg.to_bytes()
    assert wire[:24] == bytes.fromhex("000f ffff 0014 0000 00000001 00000009 000c3510 000186a0")
    (out,) = StreamFramer(Role.SERVER).feed(wire)
    assert out.data == msg.data
    assert list(out.data.values[-2:]) == [99_998.0, 99_999.0]


# --- byte-exact encodings written from the specification ---------------------------------


def _check_known(wire: bytes, sender: Role, cls: type[m.Message], **fields: Any) -> None:
    """``wire`` decodes to ``cls`` with ``fields``, and ``cls(**fields)`` encodes to ``wire``."""
    (out,) = split_datagram(wire, sender)
    assert type(out) is cls
    for name, value in fields.items():
        got = getattr(out, name)
        if name == "data":
            got = list(got.values)
        assert _same(got, value), (name, got, value)
    assert cls(**fields).to_bytes() == wire


def test_known_create_chan_request() -> None:
    wire = bytes.fromhex("0012 0008 0000 0000 00000001 0000000d") + b"XXX:YYY\0"
    _check_known(wire, Role.CLIENT, m.CreateChanRequest, cid=1, version=13, name="XXX:YYY")


def test_known_create_chan_response() -> None:
    wire = bytes.fromhex("0012 0000 0006 0001 00000001 00000011")
    _check_known(wire, Role.SERVER, m.CreateChanResponse, data_type=DBRType.DOUBLE,
                 data_count=1, cid=1, sid=17)


def test_known_search_request_and_reply() -> None:
    request = bytes.fromhex("0006 0008 000a 000d 00000005 00000005") + b"XXX:YYY\0"
    _check_known(request, Role.CLIENT, m.SearchRequest, reply=10, version=13, cid=5,
                 name="XXX:YYY")
    reply = bytes.fromhex("0006 0008 13c8 0000 ffffffff 00000005 000d 000000000000")
    _check_known(reply, Role.SERVER, m.SearchResponse, port=5064, data_count=0,
                 ip=0xFFFFFFFF, cid=5, version=13)
    tcp_reply = bytes.fromhex("0006 0000 13c8 0000 7f000001 00000005")
    _check_known(tcp_reply, Role.SERVER, m.SearchResponse, port=5064, ip=0x7F000001, cid=5,
                 version=None)


def test_known_version_beacon_and_access_rights() -> None:
    _check_known(bytes.fromhex("0000 0000 0001 000d 00000000 00000000"), Role.CLIENT,
                 m.VersionRequest, priority=1, version=13)
    _check_known(bytes.fromhex("000d 0000 000d 13c8 0000002a 7f000001"), Role.SERVER,
                 m.Beacon, version=13, server_port=5064, beaconid=42, address=0x7F000001)
    _check_known(bytes.fromhex("0016 0000 0000 0000 00000001 00000003"), Role.SERVER,
                 m.AccessRightsResponse, cid=1, access_rights=3)


def test_known_event_add_request() -> None:
    wire = (bytes.fromhex("0001 0010 0014 0001 00000003 00000009")
            + bytes(12) + bytes.fromhex("0005 0000"))
    _check_known(wire, Role.CLIENT, m.EventAddRequest, data_type=DBRType.TIME_DOUBLE,
                 data_count=1, sid=3, subscriptionid=9, low=0.0, high=0.0, to=0.0, mask=5)


def test_known_read_notify_response() -> None:
    wire = bytes.fromhex("000f 0008 0006 0001 00000001 00000007 400c000000000000")
    _check_known(wire, Role.SERVER, m.ReadNotifyResponse, data_type=DBRType.DOUBLE,
                 data_count=1, status=1, ioid=7, data=[3.5])
    (out,) = split_datagram(wire, Role.SERVER)
    assert out.value == 3.5 and out.status_name == "ECA_NORMAL"


def test_known_error_with_a_16_byte_request_copy() -> None:
    """rsrv's answer to a WRITE of 'not-a-number' to a DBR_DOUBLE field
    (taken from ca_put_callback_and_errors)."""
    wire = (bytes.fromhex("000b 0020 0000 0000 00000001 000000a0")
            + bytes.fromhex("0004 0010 0000 0001 00000000 00000001")
            + b"DEMO:PUT:SP\0\0\0\0\0")
    (err,) = split_datagram(wire, Role.SERVER)
    assert type(err) is m.ErrorResponse
    assert (err.cid, err.status, err.status_name) == (1, 160, "ECA_PUTFAIL")
    assert err.error_message == "DEMO:PUT:SP"
    original = err.original_request
    assert type(original) is m.WriteRequest and not original.extended
    assert (original.data_type, original.data_count, original.sid, original.ioid) == (0, 1, 0, 1)
    assert err.original_payload_size == 16
    rebuilt = m.ErrorResponse(cid=1, status=160, original_request=original,
                              original_payload_size=16, error_message="DEMO:PUT:SP")
    assert rebuilt.to_bytes() == wire


def test_known_error_with_a_24_byte_request_copy() -> None:
    wire = (bytes.fromhex("000b 0020 0000 0000 00000003 00000048")
            + bytes.fromhex("0013 ffff 0002 0000 00000004 00000005 000445c0 00011170")
            + b"too big\0")
    (err,) = StreamFramer(Role.SERVER).feed(wire)
    assert (err.cid, err.status, err.status_name) == (3, 72, "ECA_TOLARGE")
    original = err.original_request
    assert type(original) is m.WriteNotifyRequest and original.extended
    assert (original.data_type, original.data_count, original.sid, original.ioid) == (
        2, 70000, 4, 5)
    assert err.original_payload_size == 280_000
    assert err.error_message == "too big"
    rebuilt = m.ErrorResponse(cid=3, status=72, original_request=original,
                              original_payload_size=280_000, error_message="too big")
    assert rebuilt.to_bytes() == wire


@pytest.mark.parametrize("size", [0xFFFF, 0x10000, 0xFFFFFFFF])
def test_error_quoting_a_big_payload_size_uses_the_extended_copy(size: int) -> None:
    """A 16-byte header cannot announce 0xFFFF bytes or more (0xFFFF with count 0 is
    the extended marker): the copy must switch to the 24-byte form."""
    original = m.WriteRequest(data_type=DBRType.CHAR, data_count=0, sid=1, ioid=2)
    err = m.ErrorResponse(cid=1, status=72, original_request=original,
                          original_payload_size=size, error_message="big")
    (out,) = split_datagram(err.to_bytes(), Role.SERVER)
    assert out.original_payload_size == size
    assert out.original_request.extended
    assert (out.original_request.sid, out.original_request.ioid) == (1, 2)
    assert out.error_message == "big"


def test_error_copying_an_unknown_command_keeps_its_id() -> None:
    """Regression: the copy of an unknown command's header decoded to an
    UnknownCommand without a ``command``, so reading it raised AttributeError."""
    wire = (bytes.fromhex("000b 0018 0000 0000 00000001 00000072")
            + bytes.fromhex("0063 0000 0000 0000 00000000 00000000") + b"?\0" + bytes(6))
    (err,) = split_datagram(wire, Role.SERVER)
    original = err.original_request
    assert type(original) is m.UnknownCommand
    assert original.command == 99 and original.command_name == "UNKNOWN_99"
    assert original.to_bytes()[:2] == b"\x00\x63"
    assert err.fields()["original_request"] == original


def test_error_too_short_for_the_copy_raises_decode_error() -> None:
    (err,) = split_datagram(bytes.fromhex("000b 0008 0000 0000 00000001 00000072")
                            + b"abc\0" + bytes(4), Role.SERVER)
    with pytest.raises(DecodeError):
        _ = err.original_request
    with pytest.raises(DecodeError):
        _ = err.error_message


# --- guessing who sent a message ----------------------------------------------------------

TYPICAL = [
    m.VersionRequest(priority=0),
    m.SearchRequest(reply=5, cid=3, name="A:B"),
    m.SearchResponse(port=5064, ip=0xFFFFFFFF, cid=3, version=13),
    m.CreateChanRequest(cid=1, name="A:B"),
    m.CreateChanResponse(data_type=6, data_count=1, cid=1, sid=7),
    m.ReadNotifyRequest(data_type=20, data_count=1, sid=7, ioid=1),
    m.ReadNotifyResponse(data_type=20, status=1, ioid=1,
                         data=DBRValue(20, [1.5], status=0, severity=0, seconds=5,
                                       nanoseconds=6)),
    m.ReadRequest(data_type=6, data_count=1, sid=7, ioid=2),
    m.ReadResponse(data_type=6, sid=7, ioid=2, data=[2.5]),
    m.WriteNotifyRequest(data_type=5, sid=7, ioid=3, data=[42]),
    m.WriteNotifyResponse(data_type=5, data_count=1, status=1, ioid=3),
    m.EventAddRequest(data_type=20, data_count=1, sid=7, subscriptionid=4, mask=5),
    m.EventAddRequest(data_type=6, data_count=0, sid=7, subscriptionid=4, mask=1),
    m.EventAddResponse(data_type=6, status=1, subscriptionid=4, data=[1.0, 2.0]),
    m.EventAddResponse(data_type=20, status=1, subscriptionid=4,
                       data=DBRValue(20, [9.0], status=3, severity=2, seconds=7,
                                     nanoseconds=8)),
    m.EventCancelResponse(data_type=20, data_count=1, sid=7, subscriptionid=4),
    m.ClearChannelRequest(sid=7, cid=1),
    m.EchoRequest(),
]


@pytest.mark.parametrize("msg", TYPICAL, ids=lambda msg: type(msg).__name__)
def test_guess_sender_picks_the_right_form(msg: m.Message) -> None:
    wire = msg.to_bytes()
    (datagram,) = split_datagram(wire, None)
    (streamed,) = StreamFramer(None).feed(wire)
    for out in (datagram, streamed):
        assert type(out) is type(msg)
        assert out.role_guessed is True
        assert out.to_bytes() == wire


def test_guess_is_not_flagged_where_there_is_one_form() -> None:
    for msg in (m.AccessRightsResponse(cid=1, access_rights=3), m.Beacon(server_port=5064),
                m.HostNameRequest(name="host"), m.ErrorResponse(
                    cid=1, status=160, original_request=m.EchoRequest())):
        (out,) = split_datagram(msg.to_bytes(), None)
        assert type(out) is type(msg) and out.role_guessed is False


def test_known_sender_is_never_flagged_as_guessed() -> None:
    msg = m.ReadNotifyResponse(data_type=6, status=1, ioid=1, data=[1.0])
    (out,) = split_datagram(msg.to_bytes(), Role.SERVER)
    assert out.role_guessed is False
