"""What a CA server must answer to bare requests, checked over raw sockets.

The behaviours are those a server conformance suite checks (name searches over UDP
and TCP, channels, reads, writes, subscriptions, and requests a server must refuse),
written here as checks of our own, each a function of a :class:`Target`: where the
server listens and the names of its two PVs, ``ival`` (a LONG scalar holding 42, as
a ``longout`` record) and ``aval`` (a SHORT array of 5 elements, none of them
written yet, as a ``waveform`` record). A check raises AssertionError when the server
answers otherwise.

The same checks run against our server (``tests/shark/peers/test_conformance.py``)
and against EPICS base's own server, RSRV, in softioc: run as
``ca_conformance.py softioc-client PARAMS`` this module is the client of a
``peers.run_scenario`` and reports each check's outcome, so that the expectations
are proven to be RSRV's. Where RSRV and ours may differ (RSRV drops the circuit
where ours answers with an ERROR and keeps it), a check accepts both, and the shark
test asserts ours.

Everything goes to 127.0.0.1.
"""

from __future__ import annotations

import socket
import struct
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peers

from decoder import ECA, Role, StreamFramer
from decoder import messages as m
from decoder.dbr import DBRType
from decoder.framing import split_datagram
from decoder.protocol import SearchReply

LOOPBACK = peers.LOOPBACK
#: How long silence must last to count as no answer.
QUIET = 0.5
#: The DBR type no server has: what the bad-type checks send.
BAD_TYPE = 0xEFEF
#: The records RSRV serves for the checks, one pair per check (see :func:`records`).
IVAL, AVAL = "ival", "aval"
SEARCH_ID = 0x12345678
CID = 156
#: A subscription's mask and deadbands as the payload of an EVENT_ADD (DBE_VALUE).
VALUE_MASK = struct.pack(">fffH2x", 0.0, 0.0, 0.0, 1)


@dataclass(frozen=True)
class Target:
    """A server under test: its UDP (search) and TCP ports, and its PV names."""

    udp_port: int
    tcp_port: int
    ival: str = IVAL
    aval: str = AVAL


class Closed(Exception):
    """The server closed the circuit."""


class Wire:
    """A bare TCP circuit: messages sent as given, replies framed one by one."""

    def __init__(self, target: Target, timeout: float = 3.0) -> None:
        self.target = target
        self.sock = socket.create_connection((LOOPBACK, target.tcp_port), timeout=timeout)
        self.timeout = timeout
        self.framer = StreamFramer(Role.SERVER)
        self.queue: list[m.Message] = []
        self.closed = False

    def send(self, *messages: m.Message | bytes) -> None:
        self.sock.sendall(b"".join(x if isinstance(x, bytes) else x.to_bytes()
                                   for x in messages))

    def _fill(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            raise Closed
        self.queue += self.framer.feed(data)

    def recv(self, timeout: float | None = None) -> m.Message:
        """The next message; Closed when the server closed, TimeoutError on silence."""
        while not self.queue:
            if self.closed:
                raise Closed
            self._fill(self.timeout if timeout is None else timeout)
        return self.queue.pop(0)

    def silent(self, quiet: float = QUIET) -> bool:
        """Nothing came within ``quiet`` seconds and the circuit is still open."""
        try:
            message = self.recv(quiet)
        except TimeoutError:
            return True
        except Closed:
            return False
        self.queue.insert(0, message)
        return False

    def closed_silently(self) -> bool:
        """The server closed the circuit without saying anything first."""
        try:
            message = self.recv()
        except Closed:
            return True
        raise AssertionError(f"expected the circuit closed, got {message!r}")

    def close(self) -> None:
        self.sock.close()


def expect(message: m.Message, kind: type[m.Message], **fields: int) -> m.Message:
    """Assert ``message`` is a ``kind`` with these header or named fields."""
    assert type(message) is kind, f"expected {kind.__name__}, got {message!r}"
    for name, value in fields.items():
        got = getattr(message, name)
        assert got == value, f"{kind.__name__}.{name} is {got!r}, expected {value!r}"
    return message


def udp_exchange(target: Target, *messages: m.Message, quiet: float = QUIET
                 ) -> list[m.Message] | None:
    """One datagram of ``messages`` to the search port; the reply's messages, or None
    when none came within ``quiet`` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(quiet)
        sock.sendto(b"".join(x.to_bytes() for x in messages), (LOOPBACK, target.udp_port))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return None
    return split_datagram(data, Role.SERVER)


def open_circuit(target: Target, version: int = 13, names: bool = True) -> tuple[Wire, int]:
    """A circuit that has said its version (and client and host names); the server's
    minor version."""
    wire = Wire(target)
    wire.send(m.VersionRequest(version=version))
    if names:
        wire.send(m.ClientNameRequest(name="foo"), m.HostNameRequest(name="localhost"))
    reply = expect(wire.recv(), m.VersionResponse)
    assert reply.version > 6, f"server version {reply.version} predates EPICS 3.12"
    return wire, reply.version


def open_channel(target: Target, name: str, native: int, count: int, version: int = 13
                 ) -> tuple[Wire, int]:
    """A circuit with one channel to ``name``, of CID :data:`CID`: its SID."""
    wire, _ = open_circuit(target, version)
    wire.send(m.CreateChanRequest(name=name, cid=CID, version=version))
    expect(wire.recv(), m.AccessRightsResponse, cid=CID, access_rights=3)
    created = expect(wire.recv(), m.CreateChanResponse, data_type=native, data_count=count,
                     cid=CID)
    return wire, created.sid


def clear_channel(wire: Wire, sid: int) -> None:
    """Clear the channel: the next message must be the reply (nothing left over)."""
    wire.send(m.ClearChannelRequest(sid=sid, cid=CID))
    expect(wire.recv(), m.ClearChannelResponse, sid=sid, cid=CID)
    wire.close()


def clear_or_closed(wire: Wire, sid: int) -> None:
    """:func:`clear_channel`, where RSRV may have closed the circuit after its answer
    (ours keeps it: its tests clear the channel themselves)."""
    try:
        clear_channel(wire, sid)
    except (Closed, ConnectionError):
        pass


def be32(value: int) -> bytes:
    return struct.pack(">i", value)


def be16(*values: int) -> bytes:
    return struct.pack(f">{len(values)}h", *values)


# ------------------------------------------------------------------------------ search


def check_udp_echo_ignored(t: Target) -> None:
    """An ECHO sent to the search port gets no answer."""
    reply = udp_exchange(t, m.EchoRequest(data_type=12, data_count=23, parameter1=5678,
                                          parameter2=9101112))
    assert reply is None, f"answered a UDP ECHO with {reply!r}"


def check_udp_search_known(t: Target) -> None:
    """A v13 search for a known name: VERSION, then the reply naming the TCP port."""
    reply = udp_exchange(t, m.VersionRequest(version=13),
                         m.SearchRequest(name=t.ival, reply=SearchReply.DONT_REPLY,
                                         version=13, cid=SEARCH_ID))
    assert reply is not None, "no reply to a search for a known name"
    version = expect(reply[0], m.VersionResponse)
    assert version.version > 6
    found = expect(reply[1], m.SearchResponse, port=t.tcp_port, data_count=0, cid=SEARCH_ID)
    assert len(found.payload) >= 2 and found.version is not None
    assert found.ip in (0xFFFFFFFF, 0x7F000001), hex(found.ip)


def check_udp_search_unknown(t: Target) -> None:
    """A search for an unknown name, no reply asked for: silence."""
    reply = udp_exchange(t, m.VersionRequest(version=13),
                         m.SearchRequest(name="invalid", reply=SearchReply.DONT_REPLY,
                                         version=13, cid=SEARCH_ID))
    assert reply is None, f"answered {reply!r}"


def check_udp_search_unknown_reply_requested(t: Target) -> None:
    """Over UDP an unknown name gets no answer even when one is asked for."""
    reply = udp_exchange(t, m.VersionRequest(version=13),
                         m.SearchRequest(name="invalid", reply=SearchReply.DO_REPLY,
                                         version=13, cid=SEARCH_ID))
    assert reply is None, f"answered {reply!r}"


def _tcp_search_circuit(t: Target) -> Wire:
    wire, version = open_circuit(t, names=False)
    assert version >= 12, f"server of minor version {version} has no TCP search"
    return wire


def check_tcp_search_known(t: Target) -> None:
    """A search over TCP for a known name: the reply, without a payload needed."""
    wire = _tcp_search_circuit(t)
    wire.send(m.SearchRequest(name=t.ival, reply=SearchReply.DONT_REPLY, version=13,
                              cid=SEARCH_ID))
    found = expect(wire.recv(), m.SearchResponse, port=t.tcp_port, data_count=0,
                   cid=SEARCH_ID)
    assert found.ip in (0xFFFFFFFF, 0x7F000001), hex(found.ip)
    wire.close()


def check_tcp_search_unknown(t: Target) -> None:
    """A search over TCP for an unknown name, no reply asked for: silence, circuit open."""
    wire = _tcp_search_circuit(t)
    wire.send(m.SearchRequest(name="invalid", reply=SearchReply.DONT_REPLY, version=13,
                              cid=SEARCH_ID))
    assert wire.silent()
    wire.close()


def check_tcp_search_unknown_reply_requested(t: Target) -> None:
    """Over TCP an unknown name asked to be answered gets NOT_FOUND echoing the header."""
    wire = _tcp_search_circuit(t)
    wire.send(m.SearchRequest(name="invalid", reply=SearchReply.DO_REPLY, version=13,
                              cid=SEARCH_ID))
    expect(wire.recv(), m.NotFoundResponse, data_type=SearchReply.DO_REPLY, data_count=13,
           parameter1=SEARCH_ID, parameter2=SEARCH_ID)
    wire.close()


def check_tcp_search_old_client(t: Target) -> None:
    """A client of minor version 11 searching over TCP is served too."""
    wire = Wire(t)
    wire.send(m.VersionRequest(version=11),
              m.SearchRequest(name=t.ival, reply=SearchReply.DONT_REPLY, version=11,
                              cid=SEARCH_ID))
    version = expect(wire.recv(), m.VersionResponse)
    assert version.version >= 12
    wire.send(m.SearchRequest(name=t.ival, reply=SearchReply.DONT_REPLY, version=13,
                              cid=SEARCH_ID))
    found = expect(wire.recv(), m.SearchResponse, port=t.tcp_port, data_count=0,
                   cid=SEARCH_ID)
    assert found.ip in (0xFFFFFFFF, 0x7F000001), hex(found.ip)
    wire.close()


# ---------------------------------------------------------------------------- channels


def check_tcp_echo(t: Target) -> None:
    """ECHO on a circuit is answered."""
    wire, _ = open_circuit(t)
    wire.send(m.EchoRequest(data_type=12, data_count=23, parameter1=5678, parameter2=9101112))
    expect(wire.recv(), m.EchoResponse)
    wire.close()


def check_channel_create_and_clear(t: Target) -> None:
    """CREATE_CHAN: ACCESS_RIGHTS (read and write), then the native type and count;
    CLEAR_CHANNEL is answered with both ids."""
    wire, _ = open_circuit(t)
    wire.send(m.CreateChanRequest(name=t.ival, cid=CID, version=13))
    expect(wire.recv(), m.AccessRightsResponse, cid=CID, access_rights=3)
    created = expect(wire.recv(), m.CreateChanResponse, data_type=DBRType.LONG,
                     data_count=1, cid=CID)
    clear_channel(wire, created.sid)


def check_channel_unknown_name(t: Target) -> None:
    """CREATE_CHAN of a name the server has not: CREATE_CH_FAIL with the CID."""
    wire, _ = open_circuit(t)
    wire.send(m.CreateChanRequest(name="invalid", cid=CID, version=13))
    expect(wire.recv(), m.CreateChFailResponse, cid=CID)
    wire.close()


# ------------------------------------------------------------------------------ scalar


def _ival(t: Target) -> tuple[Wire, int]:
    return open_channel(t, t.ival, DBRType.LONG, 1)


def check_scalar_get(t: Target) -> None:
    wire, sid = _ival(t)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1102))
    reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.LONG, data_count=1,
                   status=ECA.ECA_NORMAL, ioid=1102)
    assert bytes(reply.payload[:4]) == be32(42)
    clear_channel(wire, sid)


def check_scalar_get_converted(t: Target) -> None:
    """A LONG read as FLOAT."""
    wire, sid = _ival(t)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.FLOAT, data_count=1, sid=sid, ioid=1102))
    reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.FLOAT, data_count=1,
                   status=ECA.ECA_NORMAL, ioid=1102)
    assert struct.unpack(">f", bytes(reply.payload[:4]))[0] == 42.0
    clear_channel(wire, sid)


def check_scalar_get_bad_type(t: Target) -> None:
    """A read of a DBR type no server has: the circuit is closed, nothing said."""
    wire, sid = _ival(t)
    wire.send(m.ReadNotifyRequest(data_type=BAD_TYPE, data_count=1, sid=sid, ioid=1102))
    assert wire.closed_silently()


def check_scalar_put(t: Target) -> None:
    """WRITE (no reply), then a read sees the new value."""
    wire, sid = _ival(t)
    wire.send(m.WriteRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1101,
                             payload=be32(43)),
              m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1102))
    reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.LONG, data_count=1,
                   status=ECA.ECA_NORMAL, ioid=1102)
    assert bytes(reply.payload[:4]) == be32(43)
    clear_channel(wire, sid)


def check_scalar_put_bad_type(t: Target) -> None:
    """WRITE of a bad DBR type: an ERROR (CID, ECA_BADTYPE) and the circuit goes on,
    or (RSRV) the circuit closed."""
    wire, sid = _ival(t)
    wire.send(m.WriteRequest(data_type=BAD_TYPE, data_count=1, sid=sid, ioid=1101,
                             payload=be32(43)))
    try:
        reply = wire.recv()
    except Closed:
        return
    expect(reply, m.ErrorResponse, data_type=0, data_count=0, cid=CID,
           status=ECA.ECA_BADTYPE)
    clear_or_closed(wire, sid)


def check_scalar_put_callback(t: Target) -> None:
    wire, sid = _ival(t)
    wire.send(m.WriteNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1101,
                                   payload=be32(44)))
    expect(wire.recv(), m.WriteNotifyResponse, data_type=DBRType.LONG, data_count=1,
           status=ECA.ECA_NORMAL, ioid=1101)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1102))
    reply = expect(wire.recv(), m.ReadNotifyResponse, status=ECA.ECA_NORMAL, ioid=1102)
    assert bytes(reply.payload[:4]) == be32(44)
    clear_channel(wire, sid)


def check_scalar_put_callback_bad_type(t: Target) -> None:
    """WRITE_NOTIFY of a bad DBR type: its reply with ECA_BADTYPE and no payload, or
    (RSRV) the circuit closed."""
    wire, sid = _ival(t)
    wire.send(m.WriteNotifyRequest(data_type=BAD_TYPE, data_count=1, sid=sid, ioid=1101,
                                   payload=be32(44)))
    try:
        reply = wire.recv()
    except Closed:
        return
    expect(reply, m.WriteNotifyResponse, data_type=BAD_TYPE, data_count=1,
           status=ECA.ECA_BADTYPE, ioid=1101)
    assert not reply.payload
    clear_or_closed(wire, sid)


def expect_update(message: m.Message, **fields: int) -> m.Message:
    """Assert ``message`` is a subscription update (status in parameter 1, the id in
    parameter 2) with these header fields. An update of no elements has no payload, and
    so the form of an EVENT_CANCEL reply: the framer cannot tell them apart."""
    kinds = (m.EventAddResponse, m.EventCancelResponse)
    assert type(message) in kinds, f"expected an update, got {message!r}"
    for name, value in fields.items():
        got = getattr(message, name)
        assert got == value, f"update {name} is {got!r}, expected {value!r}"
    return message


def _subscribe(wire: Wire, sid: int, count: int, subid: int = 1102) -> m.Message:
    wire.send(m.EventAddRequest(data_type=DBRType.LONG, data_count=count, sid=sid,
                                subscriptionid=subid, payload=VALUE_MASK))
    return expect_update(wire.recv(), data_type=DBRType.LONG, parameter1=ECA.ECA_NORMAL,
                         parameter2=subid)


def _cancel(wire: Wire, sid: int, count: int, subid: int = 1102) -> None:
    wire.send(m.EventCancelRequest(data_type=DBRType.LONG, data_count=count, sid=sid,
                                   subscriptionid=subid))
    reply = expect(wire.recv(), m.EventCancelResponse, data_type=DBRType.LONG,
                   data_count=count, sid=sid, subscriptionid=subid)
    assert not reply.payload


def check_scalar_monitor(t: Target) -> None:
    """EVENT_ADD: the current value, an update after a WRITE, EVENT_CANCEL answered."""
    wire, sid = _ival(t)
    first = _subscribe(wire, sid, 1)
    assert first.data_count == 1 and bytes(first.payload[:4]) == be32(42)
    wire.send(m.WriteRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=1101,
                             payload=be32(45)))
    update = expect(wire.recv(), m.EventAddResponse, data_count=1, status=ECA.ECA_NORMAL,
                    subscriptionid=1102)
    assert bytes(update.payload[:4]) == be32(45)
    _cancel(wire, sid, 1)
    clear_channel(wire, sid)


# ------------------------------------------------------------------------------- array


def _aval(t: Target, version: int = 13) -> tuple[Wire, int]:
    return open_channel(t, t.aval, DBRType.SHORT, 5, version)


def _read(wire: Wire, sid: int, count: int, ioid: int = 1102) -> m.Message:
    wire.send(m.ReadNotifyRequest(data_type=DBRType.SHORT, data_count=count, sid=sid,
                                  ioid=ioid))
    return expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.SHORT, ioid=ioid)


def check_array_get_all(t: Target) -> None:
    """All 5 elements of an array never written: zeros (the first may be anything)."""
    wire, sid = _aval(t)
    reply = _read(wire, sid, 5)
    assert (reply.data_count, reply.status, len(reply.payload)) == (5, ECA.ECA_NORMAL, 16)
    assert bytes(reply.payload[2:]) == bytes(14)
    clear_channel(wire, sid)


def check_array_get_some(t: Target) -> None:
    wire, sid = _aval(t)
    reply = _read(wire, sid, 2)
    assert (reply.data_count, reply.status, len(reply.payload)) == (2, ECA.ECA_NORMAL, 8)
    clear_channel(wire, sid)


def check_array_get_one(t: Target) -> None:
    wire, sid = _aval(t)
    reply = _read(wire, sid, 1)
    assert (reply.data_count, reply.status, len(reply.payload)) == (1, ECA.ECA_NORMAL, 8)
    clear_channel(wire, sid)


def check_array_get_zero_old_client(t: Target) -> None:
    """A count of 0 from a v11 client: 0 elements, or ECA_BADCOUNT."""
    wire, sid = _aval(t, version=11)
    reply = _read(wire, sid, 0)
    assert (reply.status, reply.data_count) == (ECA.ECA_NORMAL, 0) or (
        reply.status == ECA.ECA_BADCOUNT), repr(reply)
    clear_channel(wire, sid)


def check_array_get_zero_dynamic(t: Target) -> None:
    """A count of 0 from a v13 client: the current elements (none yet), or all 5."""
    wire, sid = _aval(t)
    reply = _read(wire, sid, 0)
    assert reply.status == ECA.ECA_NORMAL and reply.data_count in (0, 5), repr(reply)
    clear_channel(wire, sid)


def check_array_put(t: Target) -> None:
    """Two elements written; read back as 5 (zero-padded) and as 2."""
    wire, sid = _aval(t)
    wire.send(m.WriteRequest(data_type=DBRType.SHORT, data_count=2, sid=sid, ioid=1101,
                             payload=be16(0x2B, 0x2C)))
    reply = _read(wire, sid, 5)
    assert (reply.data_count, reply.status) == (5, ECA.ECA_NORMAL)
    assert bytes(reply.payload) == be16(0x2B, 0x2C, 0, 0, 0) + bytes(6)
    reply = _read(wire, sid, 2, ioid=1103)
    assert (reply.data_count, reply.status) == (2, ECA.ECA_NORMAL)
    assert bytes(reply.payload) == be16(0x2B, 0x2C) + bytes(4)
    clear_channel(wire, sid)


def _write_and_update(wire: Wire, sid: int, data_type: int, payload: bytes, count: int
                      ) -> m.Message:
    wire.send(m.WriteRequest(data_type=data_type, data_count=count, sid=sid, ioid=1101,
                             payload=payload))
    return expect(wire.recv(), m.EventAddResponse, data_type=DBRType.LONG,
                  status=ECA.ECA_NORMAL, subscriptionid=1102)


def check_array_monitor_one(t: Target) -> None:
    """A subscription of 1 element (as LONG) follows writes of 2, 4 and 1 elements."""
    wire, sid = _aval(t)
    first = _subscribe(wire, sid, 1)
    assert first.data_count == 1 and bytes(first.payload[2:4]) == bytes(2)
    steps = [(DBRType.LONG, be32(0x2A) + be32(0x2D), 2, be32(0x2A)),
             (DBRType.SHORT, be16(0x2B, 0x2C, 0x2D, 0x2E), 4, be32(0x2B)),
             (DBRType.SHORT, be16(0x2C), 1, be32(0x2C))]
    for data_type, payload, count, seen in steps:
        update = _write_and_update(wire, sid, data_type, payload, count)
        assert update.data_count == 1 and bytes(update.payload[:4]) == seen
    _cancel(wire, sid, 1)
    clear_channel(wire, sid)


def check_array_monitor_three(t: Target) -> None:
    """A subscription of 3 elements: always 3, zero-padded."""
    wire, sid = _aval(t)
    first = _subscribe(wire, sid, 3)
    assert first.data_count == 3 and bytes(first.payload[2:12]) == bytes(10)
    steps = [(DBRType.LONG, be32(0x2A) + be32(0x2D), 2, be32(0x2A) + be32(0x2D) + be32(0)),
             (DBRType.SHORT, be16(0x2B, 0x2C, 0x2D, 0x2E), 4,
              be32(0x2B) + be32(0x2C) + be32(0x2D)),
             (DBRType.SHORT, be16(0x2C), 1, be32(0x2C) + bytes(8))]
    for data_type, payload, count, seen in steps:
        update = _write_and_update(wire, sid, data_type, payload, count)
        assert update.data_count == 3 and bytes(update.payload[:12]) == seen
    _cancel(wire, sid, 3)
    clear_channel(wire, sid)


def check_array_monitor_dynamic(t: Target) -> None:
    """A subscription of count 0 (v13): each update has as many elements as written."""
    wire, sid = _aval(t)
    first = _subscribe(wire, sid, 0)
    assert first.data_count == 0
    steps = [(DBRType.LONG, be32(0x2A) + be32(0x2D), 2, be32(0x2A) + be32(0x2D)),
             (DBRType.SHORT, be16(0x2B, 0x2C, 0x2D, 0x2E), 4,
              be32(0x2B) + be32(0x2C) + be32(0x2D) + be32(0x2E)),
             (DBRType.SHORT, be16(0x2C), 1, be32(0x2C))]
    for data_type, payload, count, seen in steps:
        update = _write_and_update(wire, sid, data_type, payload, count)
        assert update.data_count == count and bytes(update.payload[:4 * count]) == seen
    _cancel(wire, sid, 0)
    clear_channel(wire, sid)


#: The behaviours a server conformance suite checks, one check each.
SUITE: dict[str, Callable[[Target], None]] = {
    name.removeprefix("check_"): fn for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn)
}


# ----------------------------------------------------------- beyond the suite: DBR 35-38


def check_read_put_ackt_fails_and_keeps_the_circuit(t: Target) -> None:
    """DBR_PUT_ACKT and DBR_PUT_ACKS are written, not read: a read gets ECA_GETFAIL
    (with a zeroed value) and the circuit goes on."""
    wire, sid = _ival(t)
    for ioid, data_type in enumerate((DBRType.PUT_ACKT, DBRType.PUT_ACKS), 1):
        wire.send(m.ReadNotifyRequest(data_type=data_type, data_count=1, sid=sid, ioid=ioid))
        reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=data_type, data_count=1,
                       status=ECA.ECA_GETFAIL, ioid=ioid)
        assert bytes(reply.payload).strip(b"\0") == b""
    wire.send(m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=9))
    expect(wire.recv(), m.ReadNotifyResponse, status=ECA.ECA_NORMAL, ioid=9)
    clear_channel(wire, sid)


def check_read_stsack_string(t: Target) -> None:
    """DBR_STSACK_STRING: status, severity, the acknowledge fields and the value as text."""
    wire, sid = _ival(t)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.STSACK_STRING, data_count=1, sid=sid,
                                  ioid=1))
    reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.STSACK_STRING,
                   status=ECA.ECA_NORMAL, ioid=1)
    data = reply.data
    assert data.value == "42"
    assert (data.ackt, data.acks) == (1, 0), data
    clear_channel(wire, sid)


def check_read_class_name(t: Target) -> None:
    """DBR_CLASS_NAME: the record type."""
    wire, sid = _ival(t)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.CLASS_NAME, data_count=1, sid=sid,
                                  ioid=1))
    reply = expect(wire.recv(), m.ReadNotifyResponse, data_type=DBRType.CLASS_NAME,
                   status=ECA.ECA_NORMAL, ioid=1)
    assert reply.value == "longout"
    clear_channel(wire, sid)


def check_write_put_ackt_and_acks(t: Target) -> None:
    """Writes of DBR_PUT_ACKT and DBR_PUT_ACKS succeed; ACKT reads back changed."""
    wire, sid = _ival(t)
    wire.send(m.WriteNotifyRequest(data_type=DBRType.PUT_ACKT, data_count=1, sid=sid,
                                   ioid=1, payload=be16(0)),
              m.WriteNotifyRequest(data_type=DBRType.PUT_ACKS, data_count=1, sid=sid,
                                   ioid=2, payload=be16(3)))
    expect(wire.recv(), m.WriteNotifyResponse, status=ECA.ECA_NORMAL, ioid=1)
    expect(wire.recv(), m.WriteNotifyResponse, status=ECA.ECA_NORMAL, ioid=2)
    wire.send(m.ReadNotifyRequest(data_type=DBRType.STSACK_STRING, data_count=1, sid=sid,
                                  ioid=3))
    reply = expect(wire.recv(), m.ReadNotifyResponse, status=ECA.ECA_NORMAL, ioid=3)
    assert (reply.data.ackt, reply.data.acks) == (0, 0), reply.data
    clear_channel(wire, sid)


def check_tcp_search_then_channel(t: Target) -> None:
    """A name found over TCP is then created on the same circuit."""
    wire = _tcp_search_circuit(t)
    wire.send(m.SearchRequest(name=t.ival, reply=SearchReply.DO_REPLY, version=13, cid=7))
    expect(wire.recv(), m.SearchResponse, cid=7)
    wire.send(m.CreateChanRequest(name=t.ival, cid=CID, version=13))
    expect(wire.recv(), m.AccessRightsResponse, cid=CID)
    created = expect(wire.recv(), m.CreateChanResponse, cid=CID)
    clear_channel(wire, created.sid)


#: Behaviours beyond the suite that RSRV has too.
EXTRA: dict[str, Callable[[Target], None]] = {
    name.removeprefix("check_"): fn for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn)
    and name.removeprefix("check_") not in SUITE
}
ALL = {**SUITE, **EXTRA}


# --------------------------------------------------------------------- the RSRV side


def records() -> list[dict[str, Any]]:
    """softioc records for every check: a fresh ``ival``/``aval`` pair each, as the
    checks change values (plain database records, as a conformance suite's IOC has)."""
    out: list[dict[str, Any]] = []
    for name in ALL:
        out.append({"name": f"{name}:{IVAL}", "type": "longout", "db": True,
                    "fields": {"VAL": 42}})
        out.append({"name": f"{name}:{AVAL}", "type": "waveform", "db": True,
                    "fields": {"FTVL": "SHORT", "NELM": 5}})
    return out


def run_checks(checks: dict[str, Callable[[Target], None]], port: int,
               prefixed: bool = True) -> dict[str, str]:
    """Each check's outcome: "ok", or what went wrong."""
    outcome = {}
    for name, check in checks.items():
        names = {"ival": f"{name}:{IVAL}", "aval": f"{name}:{AVAL}"} if prefixed else {}
        try:
            check(Target(port, port, **names))
            outcome[name] = "ok"
        except Exception as error:  # noqa: BLE001 - reported per check
            outcome[name] = "".join(traceback.format_exception_only(error)).strip()
    return outcome


def _softioc_client_main(params_path: str) -> int:
    params = peers.load_client_params([params_path])
    peers.save_client_result(params, run_checks(ALL, params["port"]))
    return 0


#: What the capture client reads of ``ival`` (beside its value): the metadata of two
#: types, the last of them an integer one (RSRV gives its NaN limits as 0 there), and
#: the record type.
CAPTURED_READS = (DBRType.CTRL_DOUBLE, DBRType.GR_LONG, DBRType.CLASS_NAME)


def _capture_client_main(params_path: str) -> int:
    """Read ``ival`` and ``aval`` as a client does before a capture is replayed: their
    values (all of ``aval``'s current elements: none), and :data:`CAPTURED_READS`."""
    params = peers.load_client_params([params_path])
    target = Target(params["port"], params["port"])
    seen: dict[str, Any] = {}
    wire, sid = open_channel(target, target.ival, DBRType.LONG, 1)
    for ioid, data_type in enumerate((DBRType.LONG, *CAPTURED_READS), 1):
        wire.send(m.ReadNotifyRequest(data_type=data_type, data_count=1, sid=sid, ioid=ioid))
        seen[DBRType(data_type).name] = repr(expect(wire.recv(), m.ReadNotifyResponse).data)
    clear_channel(wire, sid)
    wire, sid = open_channel(target, target.aval, DBRType.SHORT, 5)
    seen["aval"] = _read(wire, sid, 0).data_count
    clear_channel(wire, sid)
    peers.save_client_result(params, seen)
    return 0


if __name__ == "__main__":
    modes = {"softioc-client": _softioc_client_main, "capture-client": _capture_client_main}
    if sys.argv[1:2] and sys.argv[1] in modes:
        sys.exit(modes[sys.argv[1]](sys.argv[2]))
    raise SystemExit(f"usage: {sys.argv[0]} softioc-client|capture-client PARAMS")
