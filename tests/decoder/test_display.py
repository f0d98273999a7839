"""How values read: the judge (decoder.display) and what a channel learns for it."""

import math

import numpy as np
import pytest

from decoder import Circuit, DBRType, DBRValue, Role, dbr
from decoder import messages as m
from decoder.display import (
    enum_strings_of,
    precision_of,
    shown_data,
    shown_value,
    usable_precision,
)

CLIENT, SERVER = Role.CLIENT, Role.SERVER


def connect(circuit: Circuit, name: str = "PV:A", cid: int = 1, sid: int = 100,
            native: int = DBRType.DOUBLE):
    circuit.handle(m.CreateChanRequest(name=name, cid=cid), CLIENT)
    circuit.handle(m.AccessRightsResponse(cid=cid, access_rights=3), SERVER)
    return circuit.handle(
        m.CreateChanResponse(data_type=native, data_count=1, cid=cid, sid=sid), SERVER
    ).channel


def read(circuit: Circuit, data: DBRValue, sid: int = 100, ioid: int = 1):
    circuit.handle(m.ReadNotifyRequest(data_type=data.dbr_type, data_count=1, sid=sid,
                                       ioid=ioid), CLIENT)
    return circuit.handle(m.ReadNotifyResponse(data_type=data.dbr_type, status=1, ioid=ioid,
                                               data=data), SERVER)


# -- the judge ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "native", "precision", "strings", "text"), [
    (61.225299458304725, DBRType.DOUBLE, None, None, "61.225299458304725"),
    (61.225299458304725, DBRType.DOUBLE, 2, None, "61.23"),
    (61.225299458304725, DBRType.FLOAT, 0, None, "61"),
    (2.5, DBRType.DOUBLE, 0, None, "2"),  # as Python rounds: half to even
    (-0.0, DBRType.DOUBLE, 2, None, "-0.00"),
    (1.0, DBRType.DOUBLE, 17, None, "1.00000000000000000"),
    (math.nan, DBRType.DOUBLE, 3, None, "nan"),
    (-math.inf, DBRType.DOUBLE, 3, None, "-inf"),
    # An absurd precision is none.
    (1.5, DBRType.DOUBLE, -1, None, "1.5"),
    (1.5, DBRType.DOUBLE, 18, None, "1.5"),
    # A precision is for floating-point values: integers stay integers.
    (85, DBRType.LONG, 2, None, "85"),
    (1, DBRType.ENUM, 2, None, "1"),
    # Enum state strings, when known and the index names one.
    (1, DBRType.ENUM, None, ("Idle", "Running"), "Running"),
    (2, DBRType.ENUM, None, ("Idle", "Running"), "2"),
    (0, DBRType.ENUM, None, (), "0"),
    (1, DBRType.ENUM, None, ("Idle", "\udcffbad"), "\\xffbad"),
    (1, DBRType.LONG, None, ("Idle", "Running"), "1"),
    # Strings in their text form, unquoted.
    ("hello shark", DBRType.STRING, 3, None, "hello shark"),
    ("\udcfe\udcffAB", DBRType.STRING, None, None, "\\xfe\\xffAB"),
])
def test_shown_value(value, native, precision, strings, text):
    assert shown_value(value, native, precision, strings) == text


def test_shown_data_arrays_format_each_element():
    data = dbr.decode(DBRType.DOUBLE, 6, dbr.encode(DBRType.DOUBLE, [0.5, 1.25, 2, 3, 4, 5]))
    assert shown_data(data) == "[0.5, 1.25, 2.0, 3.0, ...] (6)"
    assert shown_data(data, 1) == "[0.5, 1.2, 2.0, 3.0, ...] (6)"
    enums = DBRValue(DBRType.TIME_ENUM, np.array([0, 1, 5], dtype=">u2"))
    assert shown_data(enums, None, ("Off", "On")) == "[Off, On, 5] (3)"
    assert shown_data(DBRValue(DBRType.STRING, ["a", "b"])) == "[a, b] (2)"
    assert shown_data(DBRValue(DBRType.DOUBLE, [])) == "[] (0)"
    assert shown_data(DBRValue(DBRType.CTRL_DOUBLE, [3.14159], precision=9), 2) == "3.14"


def test_usable_precision():
    assert [usable_precision(p) for p in (None, -3, 0, 17, 18, 32767)] == [
        None, None, 0, 17, None, None]


def test_payload_readers_read_what_decode_reads():
    ctrl = dbr.encode(DBRType.CTRL_DOUBLE, [1.0], precision=4, units="mm")
    assert precision_of(ctrl) == dbr.decode(DBRType.CTRL_DOUBLE, 1, ctrl).precision == 4
    assert precision_of(ctrl[:5]) is None
    strings = ["Closed", "Opening", "Open", "Error"]
    enum = dbr.encode(DBRType.GR_ENUM, [2], enum_strings=strings)
    assert enum_strings_of(enum) == tuple(dbr.decode(DBRType.GR_ENUM, 1, enum).enum_strings)
    assert enum_strings_of(memoryview(enum)) == tuple(strings)
    assert enum_strings_of(enum[:100]) is None


# -- what a channel learns -------------------------------------------------------------------


def test_channel_learns_precision_from_a_read_reply():
    circuit = Circuit()
    channel = connect(circuit)
    assert channel.precision is None and channel.enum_strings is None
    read(circuit, DBRValue(DBRType.TIME_DOUBLE, [1.0]))
    assert channel.precision is None  # a TIME reply carries none
    read(circuit, DBRValue(DBRType.CTRL_DOUBLE, [1.0], precision=3), ioid=2)
    assert channel.precision == 3
    read(circuit, DBRValue(DBRType.GR_FLOAT, [1.0], precision=1), ioid=3)
    assert channel.precision == 1  # the latest reply's
    read(circuit, DBRValue(DBRType.DOUBLE, [1.0]), ioid=4)
    assert channel.precision == 1


def test_channel_learns_enum_strings_from_a_read_reply():
    circuit = Circuit()
    channel = connect(circuit, native=DBRType.ENUM)
    read(circuit, DBRValue(DBRType.CTRL_ENUM, [1], enum_strings=["Idle", "Running", "Fault"]))
    assert channel.enum_strings == ("Idle", "Running", "Fault")
    assert channel.precision is None


def test_channel_learns_from_monitor_updates():
    circuit = Circuit()
    channel = connect(circuit)
    circuit.handle(m.EventAddRequest(data_type=DBRType.CTRL_DOUBLE, data_count=1, sid=100,
                                     subscriptionid=5, mask=1), CLIENT)
    for update, precision in enumerate((2, 2, 5)):
        circuit.handle(m.EventAddResponse(
            data_type=DBRType.CTRL_DOUBLE, status=1, subscriptionid=5,
            data=DBRValue(DBRType.CTRL_DOUBLE, [float(update)], precision=precision)), SERVER)
    assert channel.precision == 5


def test_other_channels_and_unanswered_replies_teach_nothing():
    circuit = Circuit()
    a = connect(circuit)
    b = connect(circuit, "PV:B", cid=2, sid=200)
    read(circuit, DBRValue(DBRType.CTRL_DOUBLE, [1.0], precision=6), sid=200)
    assert (a.precision, b.precision) == (None, 6)
    # A reply to a request never seen: no channel to teach, and no error.
    circuit.handle(m.ReadNotifyResponse(data_type=DBRType.CTRL_DOUBLE, status=1, ioid=99,
                                        data=DBRValue(DBRType.CTRL_DOUBLE, [1.0], precision=2)),
                   SERVER)
    assert (a.precision, b.precision) == (None, 6)


def test_a_short_payload_teaches_nothing():
    circuit = Circuit()
    channel = connect(circuit)
    circuit.handle(m.ReadNotifyRequest(data_type=DBRType.CTRL_ENUM, data_count=1, sid=100,
                                       ioid=1), CLIENT)
    reply = m.ReadNotifyResponse(data_type=DBRType.CTRL_ENUM, status=1, ioid=1,
                                 data=DBRValue(DBRType.CTRL_ENUM, [0], enum_strings=["A"]))
    reply.payload = reply.payload[:40]
    circuit.handle(reply, SERVER)
    assert channel.enum_strings is None


def test_a_string_cannot_break_a_line_or_steer_the_terminal() -> None:
    """Control characters of a value or a name read as ``\\xNN`` (a newline would make
    a text line two, an escape sequence would recolour the terminal)."""
    from decoder.text import shown_text

    assert shown_value("line\nbreak\x1b[31m", DBRType.STRING) == "line\\x0abreak\\x1b[31m"
    assert shown_value(1, DBRType.ENUM, enum_strings=("a", "b\tc")) == "b\\x09c"
    assert shown_text("µs and ☃ stay") == "µs and ☃ stay"
    assert shown_text("\x7f") == "\\x7f"
