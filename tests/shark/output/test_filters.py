"""The ``--filter`` language of ``shark read`` (:mod:`shark.output.filters`): every key
its docstring lists, the AND of terms, the OR of a term's values, and what it refuses."""

from __future__ import annotations

import pytest
from builders import OWN_CAPTURES

import shark
from decoder import Role
from decoder import messages as m
from shark.extract.record import ERROR, GAP, MESSAGE, Record
from shark.output.filters import FilterError, combine, parse_filter

BASIC = OWN_CAPTURES / "softioc_pyepics_basic.pcap"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    """The demo capture, with its circuit's OPEN and CLOSE records (121 records)."""
    return list(shark.read(BASIC, lifecycle=True))


def frames(records: list[Record], expression: str) -> list[int]:
    """The frames of the records ``expression`` keeps, one per record, in order."""
    wanted = parse_filter(expression)
    return [r.frame for r in records if wanted(r)]


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


def test_combine_ands_several_filters(records: list[Record]) -> None:
    both = combine([parse_filter("command=READ_NOTIFY"), parse_filter("sender=server"),
                    parse_filter("DEMO:BASIC:TEMP")])
    assert [r.frame for r in records if both(r)] == [23, 38, 42]
    everything = combine([])
    assert all(everything(r) for r in records)


# -- what it refuses -----------------------------------------------------------------


@pytest.mark.parametrize(("expression", "message"), [
    ("colour=red", "unknown filter key 'colour' in 'colour=red'; known: pv, command, host, "
                   "port, circuit, transport, sender"),
    ("PVS=X", "unknown filter key 'pvs' in 'PVS=X'; known: pv, command, host, port, "
              "circuit, transport, sender"),
    ("=X", "unknown filter key '' in '=X'; known: pv, command, host, port, circuit, "
           "transport, sender"),
    ("pv=", "no value in 'pv='"),
    ("command=,", "no value in 'command=,'"),
    ("=", "no value in '='"),
    ("colour=", "no value in 'colour='"),  # the missing value is seen before the key
    ("port=http", "not a port number in ['http']"),
    ("port=5064,x", "not a port number in ['5064', 'x']"),
    ("port=1.5", "not a port number in ['1.5']"),
    ("circuit=first", "not a circuit number in ['first']"),
    ("circuit=1,2,c", "not a circuit number in ['1', '2', 'c']"),
    ("pv=A port=x", "not a port number in ['x']"),  # a bad term among good ones
])
def test_errors(expression: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filter(expression)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_empty_values_between_commas_are_ignored(records: list[Record]) -> None:
    assert frames(records, "command=,READ_NOTIFY,") == frames(records, "command=READ_NOTIFY")
