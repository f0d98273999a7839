"""The CA tools' formatting rules, value by value (no server): what the reference's
samples cannot all show (negative and odd values, escapes, every time key)."""

from __future__ import annotations

import time

import pytest

from decoder.dbr import DBRType, DBRValue
from shark.catools.format import (
    Base,
    Format,
    TimeKeys,
    Times,
    block,
    epics_time_text,
    escape,
    parse_dbr_type,
    plain_line,
    unix_time_text,
    wide_line,
)
from shark.catools.wire import frames_of
from shark.peers.client import WireEvent, WireKind


def test_a_scalar_name_is_padded_to_30_only_with_a_space_separator():
    value = DBRValue(DBRType.DOUBLE, [1.25])
    assert plain_line("X", value, Format()) == "X" + " " * 30 + "1.25"
    assert plain_line("X", value, Format(ofs=",")) == "X,1.25"
    assert plain_line("X", value, Format(), terse=True) == "1.25"


def test_arrays_print_their_count_and_chars_as_text_with_S():
    wave = DBRValue(DBRType.SHORT, [1, -2, 3])
    assert plain_line("W", wave, Format()) == "W 3 1 -2 3"
    assert plain_line("W", DBRValue(DBRType.SHORT, [5]), Format(count=1)) == "W" + " " * 30 + "1 5"
    chars = DBRValue(DBRType.CHAR, [104, 105, 10, 0, 0])
    assert plain_line("C", chars, Format(char_as_string=True)) == "C hi\\n"


@pytest.mark.parametrize(("base", "value", "text"), [
    (Base.HEX, 42, "0x2A"), (Base.OCT, 42, "0o52"), (Base.BIN, 42, "101010"),
    (Base.HEX, -1, "0xFFFFFFFF"), (Base.BIN, 0, "0"), (Base.DEC, -7, "-7"),
])
def test_integer_bases(base: Base, value: int, text: str):
    line = plain_line("L", DBRValue(DBRType.LONG, [value]), Format(int_base=base))
    assert line.split()[-1] == text


def test_floats_rounded_to_an_integer_halves_away_from_zero():
    fmt = Format(float_base=Base.DEC)
    assert [plain_line("F", DBRValue(DBRType.DOUBLE, [v]), fmt, terse=True)
            for v in (1.5, -1.5, 2.4)] == ["2", "-2", "2"]


def test_the_wide_line_ends_with_the_alarm_or_two_separators():
    value = DBRValue(DBRType.TIME_DOUBLE, [95.0], status=3, severity=2, seconds=0,
                     nanoseconds=999_999)
    line = wide_line("AI", value, Format())
    assert line.endswith(" 95 HIHI MAJOR")
    assert line[31:57] == epics_time_text(value)
    assert line[31:57].endswith(".000999")
    quiet = DBRValue(DBRType.TIME_STRING, ["a b"], status=0, severity=0, seconds=0,
                     nanoseconds=0)
    assert wide_line("S", quiet, Format(ofs=",")).endswith(",a b,,")


def test_strings_are_escaped_as_c_writes_them():
    assert escape('a\tb"c\\') == 'a\\tb\\"c\\\\'
    assert escape("caf\u00e9") == "caf\\xc3\\xa9"


def test_dbr_types_by_number_or_name():
    assert parse_dbr_type("34") == DBRType.CTRL_DOUBLE
    assert parse_dbr_type("CTRL_LONG") == DBRType.CTRL_LONG
    assert parse_dbr_type("dbr_time_int") == DBRType.TIME_SHORT
    assert parse_dbr_type("BOGUS") is None and parse_dbr_type("99") is None


def test_the_block_of_an_enum_lists_its_states():
    value = DBRValue(DBRType.CTRL_ENUM, [2], status=0, severity=0,
                     enum_strings=["Off", "On", "Fault"])
    assert block("E", DBRType.ENUM, value, Format()).splitlines()[4:] == [
        "    Value:            Fault", "    Status:           NO_ALARM",
        "    Severity:         NO_ALARM", "    Enums:            ( 3)",
        "                      [ 0] Off", "                      [ 1] On",
        "                      [ 2] Fault"]


def test_time_keys_relative_incremental_and_per_channel():
    start = time.time()
    times = Times(TimeKeys.parse("sI"), start=start)
    assert times.text("A", start + 1, start + 1) == unix_time_text(start + 1)
    assert times.text("B", start + 2, start + 2) == unix_time_text(start + 2)
    assert times.text("A", start + 1.5, start + 3) == "+0.500000".rjust(26)
    client = Times(TimeKeys.parse("ci"), start=start)
    client.text("A", None, start)
    assert client.text("B", None, start + 0.25).startswith("(2")  # B's first: absolute
    assert client.text("A", None, start + 1.0) == "(   +0.750000)".rjust(28)
    with pytest.raises(ValueError):
        TimeKeys.parse("x")


def test_the_wire_events_become_frames_of_a_tcp_stream():
    client, server = ("127.0.0.1", 40000), ("127.0.0.1", 5064)
    events = [WireEvent(WireKind.OPEN, "tcp", client, server, b"", 1.0),
              WireEvent(WireKind.DATA, "tcp", client, server, b"x" * 70000, 1.1),
              WireEvent(WireKind.CLOSE, "tcp", client, server, b"", 1.2)]
    frames = frames_of(events)
    assert [f.number for f in frames] == list(range(1, 9))  # 3 + 2 segments + 3
    assert sum(len(f.data) - 40 for f in frames[3:5]) == 70000
