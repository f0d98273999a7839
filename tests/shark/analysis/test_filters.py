"""The filter language (:mod:`shark.analysis.filters`): every key its docstring lists, every
operator, ``and``/``or``/``not`` and parentheses, what it refuses and why; over batches of
the ``messages`` table and over records, which must agree."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from builders import OWN_CAPTURES, capture_paths

import shark
from decoder import Role
from decoder import messages as m
from shark.analysis.batch import records_batch
from shark.analysis.filters import Filter, FilterError, compile_filter, parse_filter
from shark.extract.record import ERROR, GAP, MESSAGE, Record

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    """The demo capture, with its circuit's OPEN and CLOSE records (121 records)."""
    return list(shark.read(BASIC, lifecycle=True))


def frames(records: list[Record], expression: str) -> list[int]:
    """The frames of the records ``expression`` keeps, one per record, in order."""
    keep = compile_filter([expression]).select(records)
    return [r.frame for r, k in zip(records, keep, strict=True) if k]


def record(src: str, dst: str, *, transport: str = "tcp", circuit: int | None = 1,
           sender: Role | None = Role.CLIENT, pv: str | None = None) -> Record:
    """A message record between two endpoints (an ECHO: about no channel)."""
    out = Record(MESSAGE, 1, 0.0, src, dst, transport, circuit, sender, m.EchoRequest())
    out.pv = pv
    return out


# -- pv ------------------------------------------------------------------------------


def test_pv_glob_and_bare_word(records: list[Record]) -> None:
    temp = [r.frame for r in records if r.pv == "DEMO:BASIC:TEMP"]
    assert len(temp) == 13
    assert frames(records, "pv=DEMO:BASIC:TEMP") == temp
    assert frames(records, "pv=DEMO:BASIC:T*") == temp
    # A term without "=" is part of a PV name, or a PV pattern when it has one.
    assert frames(records, "DEMO:BASIC:T*") == temp
    assert frames(records, "DEMO:BASIC:TEMP") == temp
    assert frames(records, "TEMP") == temp
    assert frames(records, "BASIC:TE") == temp
    assert frames(records, "TEMP,MODE") == [
        r.frame for r in records if r.pv in ("DEMO:BASIC:TEMP", "DEMO:BASIC:MODE")]
    assert frames(records, "temp") == temp  # a word, in any case
    assert frames(records, "BASIC:T?") == []  # a pattern matches the whole name
    # ? is one character, [..] a set; the whole name must match.
    assert frames(records, "pv=DEMO:BASIC:?ODE") == [
        r.frame for r in records if r.pv == "DEMO:BASIC:MODE"]
    assert frames(records, "pv=DEMO:BASIC:[LM]*") == [
        r.frame for r in records if r.pv in ("DEMO:BASIC:LABEL", "DEMO:BASIC:MODE")]
    assert frames(records, "pv=DEMO:BASIC") == []
    assert frames(records, "pv=BASIC:TEMP") == []


def test_pv_values_are_alternatives_and_case_sensitive(records: list[Record]) -> None:
    assert frames(records, "pv=*:WAVE,*:LABEL") == [
        r.frame for r in records if r.pv in ("DEMO:BASIC:WAVE", "DEMO:BASIC:LABEL")]
    assert len(frames(records, "pv=*:WAVE,*:LABEL")) == 20
    # EPICS names are case-sensitive; the key is not.
    assert frames(records, "pv=demo:basic:temp") == []
    assert frames(records, "PV=DEMO:BASIC:TEMP") == frames(records, "pv=DEMO:BASIC:TEMP")


def test_pv_never_matches_records_without_a_pv(records: list[Record]) -> None:
    assert not parse_filter("pv=*")(record("10.0.0.1:40000", "10.0.0.2:5064"))
    assert all(r.pv is not None for r in records if parse_filter("*")(r))
    assert len(frames(records, "*")) == sum(r.pv is not None for r in records)


# -- command -------------------------------------------------------------------------


def test_command_names_commas_prefix_and_case(records: list[Record]) -> None:
    reads = [r.frame for r in records if r.command_name == "READ_NOTIFY"]
    assert len(reads) == 24
    assert frames(records, "command=READ_NOTIFY") == reads
    assert frames(records, "command=read_notify") == reads
    assert frames(records, "command=CA_PROTO_READ_NOTIFY") == reads
    assert frames(records, "command=ca_proto_read_notify") == reads
    assert frames(records, "command=CA_PROTO_WRITE_NOTIFY,event_cancel") == [46, 48, 49, 50, 77]
    # Records that are not messages go by their names too.
    assert frames(records, "command=OPEN,CLOSE") == [9, 78, 81]
    assert frames(records, "command=READ") == []  # a name, not a prefix
    with pytest.raises(FilterError, match="no command is called 'READ_NOTFY'; did you mean "
                                          "READ_NOTIFY"):
        parse_filter("command=READ_NOTFY")


def test_command_gap_and_undecoded_are_not_the_error_message() -> None:
    gap = Record(GAP, 1, 0.0, "a:1", "b:2", "tcp", 1, Role.SERVER, None, 40, "lost")
    undecoded = Record(ERROR, 2, 0.0, "a:1", "b:2", "tcp", 1, Role.SERVER, None, 12, "bad")
    assert parse_filter("command=gap")(gap) and not parse_filter("command=gap")(undecoded)
    assert parse_filter("command=UNDECODED")(undecoded)
    assert not parse_filter("command=ERROR")(undecoded)  # ERROR is a CA command


# -- host and port -------------------------------------------------------------------


V4 = record("10.0.0.1:40000", "10.0.0.2:5064")
V6 = record("[fe80::1]:40000", "[::1]:5064")


@pytest.mark.parametrize(("expression", "v4", "v6"), [
    ("host=10.0.0.1", True, False),          # source
    ("host=10.0.0.2", True, False),          # destination
    ("host=10.0.0.3", False, False),
    ("host=10.0.0", False, False),           # an address, not a prefix
    ("host=10.0.0.2:5064", True, False),     # with its port: that endpoint only
    ("host=10.0.0.2:40000", False, False),
    ("host=10.0.0.1:40000", True, False),
    ("host=10.0.0.3,10.0.0.1", True, False),
    ("host=::1", False, True),               # IPv6 without brackets has no port
    ("host=[::1]", False, True),
    ("host=fe80::1", False, True),
    ("host=[::1]:5064", False, True),
    ("host=[::1]:40000", False, False),
    ("host=[fe80::1]:40000", False, True),
    ("port=5064", True, True),
    ("port=40000", True, True),
    ("port=05064", True, True),              # a number, not a text
    ("port=5065", False, False),
    ("port=5065,40000", True, True),
    ("port=64", False, False),
])
def test_host_and_port(expression: str, v4: bool, v6: bool) -> None:
    wanted = parse_filter(expression)
    assert (wanted(V4), wanted(V6)) == (v4, v6)


def test_host_and_port_on_the_capture(records: list[Record]) -> None:
    assert len(frames(records, "host=127.0.0.1")) == len(records) == 121
    beacons = [1, 2, 3, 4, 5, 6, 19, 55]
    assert frames(records, "host=127.0.0.1:5065") == beacons
    assert frames(records, "port=5065") == beacons
    circuit = [r.frame for r in records if r.circuit == 1]
    assert frames(records, "host=127.0.0.1:33700") == circuit
    assert frames(records, "port=33700") == circuit


def test_host_ipv6_in_capitals() -> None:
    """Any spelling of an address matches: the records spell it as inet_ntop does."""
    assert parse_filter("host=FE80::1")(V6)
    assert parse_filter("host=fe80:0:0::0001")(V6)
    assert parse_filter("host=[FE80::1]:40000")(V6)
    assert not parse_filter("host=[FE80::1]:5064")(V6)


# -- circuit, transport, sender ------------------------------------------------------


def test_circuit_and_transport(records: list[Record]) -> None:
    tcp = [r.frame for r in records if r.transport == "tcp"]
    udp = [r.frame for r in records if r.transport == "udp"]
    assert (len(tcp), len(udp)) == (85, 36)
    assert frames(records, "circuit=1") == tcp
    assert frames(records, "circuit=01") == tcp
    assert frames(records, "circuit=2") == []
    assert frames(records, "circuit=2,1") == tcp
    assert frames(records, "transport=tcp") == tcp
    assert frames(records, "transport=TCP") == tcp
    assert frames(records, "transport=udp") == udp
    assert frames(records, "transport=udp,tcp") == [r.frame for r in records]
    # Not a transport: an error, not a filter that shows nothing.
    with pytest.raises(FilterError, match="transport=sctp: transport is one of tcp, udp"):
        parse_filter("transport=sctp")


def test_sender(records: list[Record]) -> None:
    clients = [r.frame for r in records if r.sender is Role.CLIENT]
    servers = [r.frame for r in records if r.sender is Role.SERVER]
    assert (len(clients), len(servers)) == (55, 65)
    assert frames(records, "sender=client") == clients
    assert frames(records, "sender=Server") == servers
    # The OPEN record has no sender: no sender term keeps it.
    assert 9 not in frames(records, "sender=client,server,repeater")
    assert frames(records, "sender=repeater") == []
    repeater = record("127.0.0.1:5065", "127.0.0.1:40000", transport="udp", circuit=None,
                      sender=Role.REPEATER)
    assert parse_filter("sender=REPEATER")(repeater)
    assert not parse_filter("sender=client,server")(repeater)
    # Not a role: an error, not a filter that shows nothing.
    with pytest.raises(FilterError,
                       match="sender=nobody: sender is one of client, repeater, server"):
        parse_filter("sender=nobody")


# -- terms together ------------------------------------------------------------------


def test_terms_are_anded(records: list[Record]) -> None:
    assert frames(records, "") == frames(records, "   ") == [r.frame for r in records]
    assert frames(records, "command=READ_NOTIFY pv=DEMO:BASIC:TEMP") == [
        22, 23, 37, 38, 41, 42]
    assert frames(records, "command=READ_NOTIFY sender=server pv=DEMO:BASIC:TEMP") == [
        23, 38, 42]
    assert frames(records, "PV=DEMO:BASIC:LABEL  COMMAND=READ_NOTIFY") == [29, 30]
    # Two terms of one key must both match.
    assert frames(records, "port=5065 port=33700") == []
    assert frames(records, "transport=udp circuit=1") == []


def test_several_expressions_are_anded(records: list[Record]) -> None:
    both = compile_filter(["command=READ_NOTIFY", "sender=server", "DEMO:BASIC:TEMP"])
    assert [r.frame for r, k in zip(records, both.select(records), strict=True) if k] == [
        23, 38, 42]
    assert both.text == "(command=READ_NOTIFY) (sender=server) (DEMO:BASIC:TEMP)"
    assert both.columns == {"command", "sender", "pv"}
    for everything in (compile_filter([]), compile_filter(["", "  "])):
        assert everything.matches_all and everything.columns == frozenset()
        assert everything.select(records) == [True] * len(records)
    assert not compile_filter(["pv=X"]).matches_all


# -- what it refuses -----------------------------------------------------------------


KNOWN = ("pv, command, host, port, circuit, transport, sender, data_type, count, status, "
         "severity, alarm, latency, value, frame, time")


@pytest.mark.parametrize(("expression", "message"), [
    ("colour=red", f"unknown filter key 'colour' in 'colour=red'; known: {KNOWN}"),
    ("PVS=X", f"unknown filter key 'pvs' in 'PVS=X'; did you mean pv? known: {KNOWN}"),
    ("=X", f"unknown filter key '' in '=X'; known: {KNOWN}"),
    ("pv=", "no value in 'pv='"),
    ("command=,", "no value in 'command=,'"),
    ("=", "no value in '='"),
    ("colour=", "no value in 'colour='"),  # the missing value is seen before the key
    ("port=http", "not a port number in ['http']"),
    ("port=5064,x", "not a port number in ['5064', 'x']"),
    ("port=1.5", "not a port number in ['1.5']"),
    ("port=70000", "not a port number in ['70000']"),
    ("circuit=first", "not a circuit number in ['first']"),
    ("circuit=1,2,c", "not a circuit number in ['1', '2', 'c']"),
    ("pv=A port=x", "not a port number in ['x']"),  # a bad term among good ones
    ("command=READ_NOTFY", "command=READ_NOTFY: no command is called 'READ_NOTFY'; did you "
                           "mean READ_NOTIFY, WRITE_NOTIFY, READ_SYNC?"),
    ("command=FOO*", "command=FOO*: no command matches 'FOO*'; commands are VERSION, "
                     "EVENT_ADD, EVENT_CANCEL, READ, WRITE, SNAPSHOT, SEARCH, BUILD, "
                     "EVENTS_OFF, EVENTS_ON, READ_SYNC, ERROR, CLEAR_CHANNEL, RSRV_IS_UP, "
                     "NOT_FOUND, READ_NOTIFY, READ_BUILD, REPEATER_CONFIRM, CREATE_CHAN, "
                     "WRITE_NOTIFY, CLIENT_NAME, HOST_NAME, ACCESS_RIGHTS, ECHO, "
                     "REPEATER_REGISTER, SIGNAL, CREATE_CH_FAIL, SERVER_DISCONN, GAP, "
                     "UNDECODED, OPEN, CLOSE"),
    ("status=PUTFAILED", "status=PUTFAILED: no status is called 'ECA_PUTFAILED'; did you "
                        "mean ECA_PUTFAIL, ECA_GETFAIL, ECA_UKNFIELD?"),
    ("status=failed,ECA_NORMAL", "status=failed,ECA_NORMAL: failed stands alone"),
    ("severity=MINR", "severity=MINR: no severity is called 'MINR'; did you mean MINOR? "
                      "severity is one of NO_ALARM, MINOR, MAJOR, INVALID"),
    ("severity>=bad", "severity>=bad: no severity is called 'BAD'; severity is one of "
                      "NO_ALARM, MINOR, MAJOR, INVALID"),
    ("alarm=HIHIHI", "alarm=HIHIHI: no alarm status is called 'HIHIHI'; did you mean HIHI, "
                     "HIGH? "
                     "alarm status is one of NO_ALARM, READ, WRITE, HIHI, HIGH, LOLO, LOW, "
                     "STATE, COS, COMM, TIMEOUT, HWLIMIT, CALC, SCAN, LINK, SOFT, BAD_SUB, "
                     "UDF, DISABLE, SIMM, READ_ACCESS, WRITE_ACCESS"),
    ("alarm>HIHI", "alarm>HIHI: alarm takes =, != or ~, not >"),
    ("data_type=DUBLE", "data_type=DUBLE: no data type is called 'DBR_DUBLE'; did you mean "
                        "DBR_DOUBLE, DBR_GR_DOUBLE, DBR_STS_DOUBLE?"),
    ("latency>10xs", "latency>10xs: unknown unit 'xs'; units are s, ms, us (µs), ns"),
    ("latency>fast", "latency>fast: 'fast' is not a number"),
    ("time>1h", "time>1h: unknown unit 'h'; units are s, ms, us (µs), ns"),
    ("time>=2026-13-06T10:00:00", "time>=2026-13-06T10:00:00: '2026-13-06T10:00:00' is not "
                                  "a date and time (YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM])"),
    ("frame=abc", "frame=abc: 'abc' is not a whole number"),
    ("frame>1.5", "frame>1.5: '1.5' is not a whole number"),
    ("count=1ms", "count=1ms: '1ms' is not a whole number"),
    ("frame<1,2", "frame<1,2: a list of values takes = or != only"),
    ("frame>1..2", "frame>1..2: a range takes = or !=, not >"),
    ("frame=1..", "frame=1..: a range is low..high, not '1..'"),
    ("frame~1", "frame~1: ~ is for text; frame takes =, !=, <, <=, >, >="),
    ("pv<A", "pv<A: pv takes =, != or ~, not <"),
    ("value<high", "value<high: value< takes a number, not 'high'"),
    ("pv~/[/", "pv~/[/: not a regular expression: unterminated character set at position 0"),
    ("pv~/abc", "a regex ~/.../ is not closed in 'pv~/abc'"),
    ('pv="abc', "unclosed quote \" in 'pv=\"abc'"),
    ("transport=sctp", "transport=sctp: transport is one of tcp, udp"),
    ("(pv=A", "unbalanced parentheses in '(pv=A': '(' is never closed"),
    ("pv=A)", "unbalanced parentheses in 'pv=A)': ')' without '('"),
    ("(pv=A or (pv=B)", "unbalanced parentheses in '(pv=A or (pv=B)': '(' is never closed"),
    ("()", "empty parentheses in '()'"),
    ("(", "unbalanced parentheses in '(': '(' is never closed"),
    ("pv=A or", "'or' needs a term after it in 'pv=A or'"),
    ("or pv=A", "'or' needs a term before it in 'or pv=A'"),
    ("pv=A and", "'and' needs a term after it in 'pv=A and'"),
    ("pv=A or and pv=B", "'or' needs a term after it in 'pv=A or and pv=B'"),
    ("not", "'not' needs a term after it in 'not'"),
    ("pv=A not", "'not' needs a term after it in 'pv=A not'"),
    ("(not)", "'not' needs a term after it in '(not)'"),
])
def test_errors(expression: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        compile_filter([expression])
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)
    assert "\n" not in message


def test_empty_values_between_commas_are_ignored(records: list[Record]) -> None:
    assert frames(records, "command=,READ_NOTIFY,") == frames(records, "command=READ_NOTIFY")


# -- the whole language over a capture's messages table ------------------------------

PUT_ERRORS = "ca_put_callback_and_errors.pcapng"


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """The demo capture's messages table (118 rows: no OPEN or CLOSE)."""
    return shark.open(BASIC, tables=["messages"]).arrow("messages")


def rows(table: pa.Table, expression: str, **options: object) -> list[int]:
    """The frames of the rows ``expression`` keeps."""
    mask = compile_filter([expression]).mask(table, **options)
    assert mask.dtype == bool and mask.shape == (table.num_rows,)
    return table.column("frame").filter(pa.array(mask)).to_pylist()


def where(table: pa.Table, test) -> list[int]:
    """The frames of the rows of which ``test(row as a dict)`` holds."""
    return [r["frame"] for r in table.to_pylist() if test(r)]


def test_string_keys(table: pa.Table) -> None:
    assert rows(table, "pv=DEMO:BASIC:TEMP") == where(table, lambda r: r["pv"] == "DEMO:BASIC:TEMP")
    assert rows(table, "pv!=DEMO:BASIC:TEMP") == where(
        table, lambda r: r["pv"] is not None and r["pv"] != "DEMO:BASIC:TEMP")
    # not: also the rows without a PV
    assert rows(table, "not pv=DEMO:BASIC:TEMP") == where(
        table, lambda r: r["pv"] != "DEMO:BASIC:TEMP")
    assert rows(table, "pv~basic:t") == rows(table, "pv=DEMO:BASIC:TEMP")
    assert rows(table, "pv~/:(TEMP|MODE)$/") == rows(table, "pv=*:TEMP,*:MODE")
    assert rows(table, "pv~/temp$/") == rows(table, "pv=DEMO:BASIC:TEMP")  # in any case
    assert rows(table, "pv~/(?-i:temp)$/") == []
    assert rows(table, "command=READ*") == where(
        table, lambda r: r["command"].startswith("READ"))
    assert rows(table, "command!=READ*,EVENT_ADD") == where(
        table, lambda r: not r["command"].startswith("READ") and r["command"] != "EVENT_ADD")
    assert rows(table, "command~notify") == where(table, lambda r: "NOTIFY" in r["command"])
    assert rows(table, "command=READ") == []  # obsolete, but a command
    assert rows(table, "host=127.0.0.*") == [r["frame"] for r in table.to_pylist()]
    assert rows(table, "host~:5065") == rows(table, "port=5065")
    assert rows(table, "host!=127.0.0.1:5065") == where(
        table, lambda r: "127.0.0.1:5065" not in (r["src"], r["dst"]))
    assert rows(table, "sender=serv*") == rows(table, "sender=server")
    assert rows(table, "transport!=udp") == rows(table, "transport=tcp")


def test_data_type_and_count(table: pa.Table) -> None:
    doubles = where(table, lambda r: r["data_type"] == "DBR_TIME_DOUBLE")
    assert len(doubles) == 16
    assert rows(table, "data_type=DBR_TIME_DOUBLE") == doubles
    assert rows(table, "data_type=time_double") == doubles
    assert rows(table, "type=TIME_DOUBLE") == doubles  # the short alias
    assert rows(table, "data_type=20") == doubles  # its number
    assert rows(table, "data_type=TIME_*") == where(
        table, lambda r: (r["data_type"] or "").startswith("DBR_TIME_"))
    assert rows(table, "data_type~double") == where(
        table, lambda r: "DOUBLE" in (r["data_type"] or ""))
    assert rows(table, "count>1") == where(table, lambda r: (r["data_count"] or 0) > 1)
    assert rows(table, "count=10") == rows(table, "data_count=10") == where(
        table, lambda r: r["data_count"] == 10)
    assert rows(table, "count=2..10") == where(
        table, lambda r: r["data_count"] is not None and 2 <= r["data_count"] <= 10)


def test_status_severity_alarm(table: pa.Table) -> None:
    normal = where(table, lambda r: r["status"] == "ECA_NORMAL")
    assert len(normal) == 25
    for spelling in ("ECA_NORMAL", "normal", "eca_normal", "1", "ECA_NOR*"):
        assert rows(table, f"status={spelling}") == normal
    assert rows(table, "status=failed") == []
    assert rows(table, "status!=failed") == normal
    assert rows(table, "status~norm") == normal
    minor = where(table, lambda r: r["severity"] == "MINOR")
    assert len(minor) == 2
    assert rows(table, "severity>=MINOR") == rows(table, "severity>NO_ALARM") == minor
    assert rows(table, "severity=minor") == rows(table, "severity=1") == minor
    assert rows(table, "severity<MINOR") == rows(table, "severity=NO_ALARM") == where(
        table, lambda r: r["severity"] == "NO_ALARM")
    assert rows(table, "severity>=MAJOR") == []
    assert rows(table, "alarm=HIGH") == rows(table, "alarm_status=HIGH") == minor
    assert rows(table, "alarm=HI*") == rows(table, "alarm=4") == minor
    assert rows(table, "alarm!=NO_ALARM") == minor


def test_failed_status_and_error_on_a_capture_with_failures() -> None:
    path = next((p for p in capture_paths() if p.name == PUT_ERRORS), None)
    if path is None:
        pytest.skip("shared capture corpus not found")
    table = shark.open(path, tables=["messages"]).arrow("messages")
    assert rows(table, "status=failed") == rows(table, "status=PUTFAIL") == [54, 56, 58, 60, 62]
    assert rows(table, "status=failed command=WRITE_NOTIFY") == [54, 58]
    assert rows(table, "error") == [54, 56, 58, 60, 62]
    assert rows(table, "status=160") == [54, 56, 58, 60, 62]
    assert rows(table, "value=Open") == where(table, lambda r: r["value_text"] == "Open")
    assert rows(table, 'value~"beam off"') == where(
        table, lambda r: "beam off" in (r["value_text"] or ""))
    assert rows(table, "value=*14:05") == rows(table, 'value~"beam off"')


def test_latency_units(table: pa.Table) -> None:
    slow = where(table, lambda r: r["latency"] is not None and r["latency"] > 0.001)
    assert len(slow) == 19
    for spelling in ("1ms", "0.001", "0.001s", "1000us", "1000µs", "1e6ns", ".001s"):
        assert rows(table, f"latency>{spelling}") == slow
    assert rows(table, "latency<=1ms") == where(
        table, lambda r: r["latency"] is not None and r["latency"] <= 0.001)
    assert rows(table, "latency=100us..1ms") == rows(table, "latency=0.1..1ms") == where(
        table, lambda r: r["latency"] is not None and 1e-4 <= r["latency"] <= 1e-3)
    assert rows(table, "latency!=100us..1ms") == where(
        table, lambda r: r["latency"] is not None and not 1e-4 <= r["latency"] <= 1e-3)


def test_value(table: pa.Table) -> None:
    assert rows(table, "value>3") == where(
        table, lambda r: r["value"] is not None and r["value"] > 3)
    assert rows(table, "value=0..1.5") == where(
        table, lambda r: r["value"] is not None and 0 <= r["value"] <= 1.5)
    assert rows(table, "value=hello*") == where(
        table, lambda r: (r["value_text"] or "").startswith("hello"))
    assert rows(table, "value~SHARK") == rows(table, "value=hello*")
    assert rows(table, "value=1,hello*") == where(
        table, lambda r: r["value"] == 1 or (r["value_text"] or "").startswith("hello"))
    assert rows(table, "value!=1,hello*") == where(
        table, lambda r: (r["value"] is not None or r["value_text"] is not None)
        and r["value"] != 1 and not (r["value_text"] or "").startswith("hello"))


def test_frame_and_time(table: pa.Table) -> None:
    assert rows(table, "frame>=100") == where(table, lambda r: r["frame"] >= 100)
    assert rows(table, "frame=10..20") == where(table, lambda r: 10 <= r["frame"] <= 20)
    assert rows(table, "frame=1..3,100..110") == where(
        table, lambda r: r["frame"] <= 3 or 100 <= r["frame"] <= 110)
    assert rows(table, "frame!=2..117") == where(table, lambda r: not 2 <= r["frame"] <= 117)
    times = table.column("time").cast(pa.int64()).to_numpy()
    first = times[0]
    seconds = (times - first) / 1e9
    frames = table.column("frame").to_numpy()
    assert rows(table, "time=1.5..3s") == frames[(seconds >= 1.5) & (seconds <= 3)].tolist()
    assert rows(table, "time=1500..3000ms") == rows(table, "time=1.5..3")
    assert rows(table, "time<950ms") == frames[seconds < 0.95].tolist() == [1, 2, 3, 4, 5, 6]
    assert rows(table, "time>=0") == frames.tolist()
    # start: the capture's first time, when the batch is not its beginning
    tail = table.slice(50)
    start = first / 1e9
    assert rows(tail, "time<950ms", start=start) == []
    assert rows(tail, "time>=0s") == tail.column("frame").to_pylist()
    # absolute times: UTC unless an offset is given
    when = datetime.datetime.fromtimestamp(int(first // 10**9) + 2, datetime.timezone.utc)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S")
    later = frames[times >= (int(first // 10**9) + 2) * 10**9].tolist()
    assert later and rows(table, f"time>={iso}") == later
    assert rows(table, f"time>={iso}Z") == later
    east = (when + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert rows(table, f"time>={east}+02:00") == later
    assert rows(table, f"time>={when.strftime('%Y-%m-%d')}") == frames.tolist()
    assert rows(table, f"time={iso}..{east}+02:00") == frames[
        times == (int(first // 10**9) + 2) * 10**9].tolist()


def test_keywords_or_not_and_parentheses(table: pa.Table) -> None:
    def rows(table: pa.Table, expression: str) -> list[int]:  # row numbers: sets of rows
        return np.flatnonzero(compile_filter([expression]).mask(table)).tolist()

    assert rows(table, "error") == rows(table, "anomaly") == rows(table, "gap") == []
    assert rows(table, "not error") == list(range(table.num_rows))
    temp = rows(table, "pv=DEMO:BASIC:TEMP")
    mode = rows(table, "pv=DEMO:BASIC:MODE")
    reads = rows(table, "command=READ_NOTIFY")
    both = sorted(set(temp) | set(mode))
    assert rows(table, "pv=DEMO:BASIC:TEMP or pv=DEMO:BASIC:MODE") == both
    assert rows(table, "TEMP OR MODE") == both
    # not > and > or
    assert rows(table, "TEMP or MODE command=READ_NOTIFY") == sorted(
        set(temp) | (set(mode) & set(reads)))
    assert rows(table, "(TEMP or MODE) command=READ_NOTIFY") == sorted(
        set(both) & set(reads))
    assert rows(table, "(TEMP or MODE) and command=READ_NOTIFY") == rows(
        table, "(TEMP or MODE) command=READ_NOTIFY")
    assert rows(table, "not TEMP command=READ_NOTIFY") == sorted(set(reads) - set(temp))
    assert rows(table, "not (TEMP or command=READ_NOTIFY)") == sorted(
        set(range(table.num_rows)) - set(temp) - set(reads))
    assert rows(table, "not not TEMP") == temp
    assert rows(table, "((TEMP))") == temp
    assert rows(table, "(TEMP)(MODE)") == []
    assert rows(table, "error or TEMP") == temp


def test_mask_takes_batches_and_tables(table: pa.Table) -> None:
    wanted = compile_filter(["command=READ_NOTIFY latency>100us or severity>=MINOR"])
    whole = wanted.mask(table)
    start = table.column("time")[0].value / 1e9
    parts = np.concatenate([wanted.mask(b, start=start) for b in table.to_batches(20)])
    assert (parts == whole).all()
    assert wanted.columns == {"command", "latency", "severity"}
    assert wanted.text == "command=READ_NOTIFY latency>100us or severity>=MINOR"
    # only the columns it reads are needed
    assert (wanted.mask(table.select(sorted(wanted.columns))) == whole).all()
    assert compile_filter(["TEMP"]).mask(table.slice(0, 0)).shape == (0,)


# -- small synthetic batches ------------------------------------------------------------


def synthetic() -> pa.RecordBatch:
    """Five rows with what the demo capture lacks: failures, alarms, anomalies, gaps."""
    def category(values: list) -> pa.Array:
        return pa.array(values, pa.string()).dictionary_encode()

    return pa.RecordBatch.from_pydict({
        "frame": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "time": pa.array([0, 10**9, 2 * 10**9, 3 * 10**9, None], pa.timestamp("ns", "UTC")),
        "command": category(["WRITE_NOTIFY", "EVENT_ADD", "GAP", "UNDECODED", "ECHO"]),
        "status": category(["ECA_PUTFAIL", "ECA_NORMAL", None, None, None]),
        "severity": category([None, "INVALID", None, None, "UNKNOWN_SEVERITY_7"]),
        "alarm_status": category([None, "UDF", None, None, None]),
        "anomaly": pa.array([None, None, None, None, "unexpected: ECHO"], pa.large_string()),
        "reason": pa.array([None, None, "lost", "bad header", None], pa.large_string()),
        "circuit": pa.array([1, 1, 1, 1, 1], pa.uint32()),
    })


def test_synthetic_batch() -> None:
    batch = synthetic()

    def kept(expression: str) -> list[int]:
        return np.flatnonzero(compile_filter([expression]).mask(batch)).tolist()

    assert kept("status=failed") == [0]
    assert kept("status=ECA_NORMAL") == [1]
    assert kept("severity>=MAJOR") == [1, 4]  # an unknown severity by its number
    assert kept("severity=7") == [4]
    assert kept("alarm=UDF") == [1]
    assert kept("gap") == [2, 3]
    assert kept("command=GAP") == [2]
    assert kept("anomaly") == [4]
    assert kept("error") == [0, 2, 3, 4]
    assert kept("time>=2s") == [2, 3]  # a null time matches no time term
    assert kept("not time>=2s") == [0, 1, 4]
    assert kept("time=1..2") == [1, 2]
    assert kept("pv=*") == []  # no pv column: no PV
    # time as float seconds (a batch made from records) works the same
    seconds = batch.set_column(1, "time", pa.array([5.0, 6.0, 7.0, 8.0, None]))
    assert np.flatnonzero(compile_filter(["time>=2s"]).mask(seconds)).tolist() == [2, 3]
    assert np.flatnonzero(compile_filter(["time>=2s"]).mask(seconds, start=6.0)).tolist() == [3]


# -- records: one language, the same answers -------------------------------------------

EXPRESSIONS = [
    "TEMP", "pv=*:WAVE,*:LABEL", "command=READ_NOTIFY sender=server", "latency>100us",
    "status=failed", "severity>=MINOR", "alarm!=NO_ALARM", "value>0.5", "value~a",
    "data_type=TIME_*", "count>1", "frame=10..60", "time=1..2.5s", "error", "anomaly",
    "gap", "not (TEMP or MODE) and transport=tcp", "host=127.0.0.1:5064 or port=5065",
    "circuit=1 command!=EVENT_ADD", "status=NORMAL,PUTFAIL",
]


def capture_records(path: Path) -> tuple[pa.Table, list[Record]]:
    table = shark.open(path, tables=["messages"]).arrow("messages")
    records = [r for r in shark.read(path) if r.command_name not in ("OPEN", "CLOSE")]
    return table, records


@pytest.mark.parametrize("path", [*sorted(OWN_CAPTURES.glob("*.pcap")), *capture_paths()],
                         ids=lambda p: p.name)
def test_mask_over_the_table_is_select_over_the_records(path: Path) -> None:
    table, records = capture_records(path)
    assert len(records) == table.num_rows
    start = records[0].time
    for expression in EXPRESSIONS:
        wanted = compile_filter([expression])
        mask = wanted.mask(table)
        assert mask.tolist() == wanted.select(records, start=start), expression
        assert mask.tolist() == wanted.select(records), expression  # start: the first's


def test_records_batch_has_the_messages_columns(table: pa.Table) -> None:
    records = [r for r in shark.read(BASIC, lifecycle=True)]
    batch = records_batch(records)
    assert batch.num_rows == 121
    messages = table.schema
    for field in batch.schema:
        assert field.name in messages.names
        if field.name != "time":
            assert field.type == messages.field(field.name).type, field.name
    assert batch.schema.field("time").type == pa.float64()
    only = records_batch(records, ["pv", "nonsense"])
    assert only.schema.names == ["pv"] and only.num_rows == 121
    assert records_batch(records, []).num_rows == 121
    # OPEN and CLOSE are rows too, with how they came
    opened = batch.filter(pa.compute.equal(batch.column("command"), "OPEN"))
    assert opened.column("reason").to_pylist() == ["syn"]


def test_per_record_predicate_counts_time_from_the_first_record(records: list[Record]) -> None:
    wanted = parse_filter("time<950ms")
    assert [r.frame for r in records if wanted(r)] == [1, 2, 3, 4, 5, 6]
    later = compile_filter(["time<950ms"]).predicate(start=records[0].time - 10)
    assert not any(later(r) for r in records)
    assert isinstance(compile_filter(["x"]), Filter)
    assert repr(compile_filter(["x"])) == "Filter('x')"
