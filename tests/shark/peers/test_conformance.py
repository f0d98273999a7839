"""Our server answers bare requests as a CA server must, and as RSRV does or better.

The behaviours are those of a server conformance suite, written as our own checks in
``tests/helpers/ca_conformance.py``: each runs over raw sockets against a fresh
:class:`shark.peers.server.Server` serving ``ival`` and ``aval``, and all of them once
against softioc (EPICS base's RSRV), to prove that what they expect is what RSRV does.
Beyond the suite: where RSRV drops the circuit for a request that alone was bad, ours
answers with an ERROR naming it and goes on; the four special DBR types (35-38); and a
lying client never disturbs another's circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ca_conformance as conformance
import peers
import pytest
from ca_conformance import CID, Target, Wire, clear_channel, expect, open_channel

from decoder import ECA, EventMask
from decoder import messages as m
from decoder.dbr import DBRType, DBRValue
from decoder.protocol import SearchReply
from shark.ioc.pv import IocPV
from shark.peers.convert import ConversionError
from shark.peers.misbehaviour import Kind
from shark.peers.server import PV, Server, record_type_of


def conformance_pvs(kind: type[PV] = PV) -> list[PV]:
    """The suite's two PVs: a longout holding 42, a SHORT waveform of 5 never written."""
    return [kind(conformance.IVAL, DBRType.LONG, 42),
            kind(conformance.AVAL, DBRType.SHORT, [], count=5)]


@contextmanager
def serving(pvs: list[PV] | None = None) -> Iterator[tuple[Server, Target]]:
    """A server of ours on free loopback ports, in a thread of its own, so that the
    checks can use blocking sockets."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Server(conformance_pvs() if pvs is None else pvs, port=0, beacon_address=None)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    try:
        yield server, Target(server.udp_port, server.tcp_port)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def on_loop(server: Server, call: Callable[[], Any]) -> Any:
    """Run ``call`` in the server's event loop (where its PVs may be changed)."""
    loop = server._udp.get_protocol().closed.get_loop()  # type: ignore[union-attr]
    done = asyncio.run_coroutine_threadsafe(_call(call), loop)
    return done.result(5)


async def _call(call: Callable[[], Any]) -> Any:
    return call()


@pytest.mark.parametrize("kind", [PV, IocPV], ids=["PV", "IocPV"])
@pytest.mark.parametrize("name", list(conformance.SUITE))
def test_suite_behaviour(name: str, kind: type[PV]) -> None:
    """Against our server's PVs, and the record-like ones ``shark serve`` serves."""
    with serving(conformance_pvs(kind)) as (_, target):
        conformance.SUITE[name](target)


@pytest.mark.parametrize("name", list(conformance.EXTRA))
def test_beyond_the_suite(name: str) -> None:
    with serving() as (_, target):
        conformance.EXTRA[name](target)


# ------------------------------------------------------------------ ``shark serve``

#: The suite's PVs as an IOC file.
IOC_FILE = f"""
[[pv]]
name = "{conformance.IVAL}"
type = "long"
value = 42

[[pv]]
name = "{conformance.AVAL}"
type = "short"
count = 5
value = []
"""


@pytest.fixture(scope="module")
def shark_serve(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The suite's checks against ``shark serve`` (a process of its own): each outcome.
    One process for all: the checks that write restore nothing, so they come last."""
    work = tmp_path_factory.mktemp("serve")
    (work / "suite.toml").write_text(IOC_FILE)
    port = peers.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shark", "serve", str(work / "suite.toml"), "--host",
         peers.LOOPBACK, "--port", str(port), "--no-beacons"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "serving" in proc.stdout.readline()
        outcome = {}
        for name in sorted(conformance.SUITE, key=_writes_last):
            outcome.update(conformance.run_checks({name: conformance.SUITE[name]}, port,
                                                  prefixed=False))
            if name in _WRITES:  # the next check expects the values as declared
                proc.terminate()
                proc.wait(10)
                proc = subprocess.Popen(proc.args, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                assert proc.stdout is not None and "serving" in proc.stdout.readline()
        return outcome
    finally:
        proc.terminate()
        proc.wait(10)


_WRITES = {name for name in conformance.SUITE if "put" in name or "monitor" in name}


def _writes_last(name: str) -> tuple[bool, str]:
    return name in _WRITES, name


@pytest.mark.parametrize("name", list(conformance.SUITE))
def test_shark_serve_behaves(shark_serve: dict[str, str], name: str) -> None:
    assert shark_serve[name] == "ok"


# ---------------------------------------------------------- the same checks against RSRV


@pytest.fixture(scope="module")
def rsrv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every check run against softioc once: each one's outcome."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result = peers.run_scenario(
        conformance.records(), [sys.executable, conformance.__file__, "softioc-client"],
        tmp_path_factory.mktemp("rsrv"), client_timeout=90, timeout=150)
    assert not result["errors"], result
    return result["client_result"]


@pytest.mark.parametrize("name", list(conformance.ALL))
def test_rsrv_does_what_the_check_expects(rsrv: dict[str, str], name: str) -> None:
    assert rsrv[name] == "ok"


# ------------------------------------------------------------- where ours does better


def _still_serves(wire: Wire, sid: int, ioid: int = 77) -> None:
    """The circuit goes on: a read on it is answered."""
    wire.send(m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=ioid))
    expect(wire.recv(), m.ReadNotifyResponse, status=ECA.ECA_NORMAL, ioid=ioid)


def _ival(target: Target) -> tuple[Wire, int]:
    return open_channel(target, conformance.IVAL, DBRType.LONG, 1)


def test_bad_type_writes_are_answered_and_the_circuit_goes_on() -> None:
    """RSRV answers, then drops the circuit; ours keeps it."""
    with serving() as (_, target):
        wire, sid = _ival(target)
        bad = conformance.BAD_TYPE
        wire.send(m.WriteRequest(data_type=bad, data_count=1, sid=sid, ioid=1,
                                 payload=conformance.be32(1)))
        error = expect(wire.recv(), m.ErrorResponse, cid=CID, status=ECA.ECA_BADTYPE)
        assert error.original_request.data_type == bad
        wire.send(m.WriteNotifyRequest(data_type=bad, data_count=1, sid=sid, ioid=2,
                                       payload=conformance.be32(1)))
        reply = expect(wire.recv(), m.WriteNotifyResponse, data_type=bad,
                       status=ECA.ECA_BADTYPE, ioid=2)
        assert not reply.payload
        wire.send(m.ReadRequest(data_type=bad, data_count=1, sid=sid, ioid=3))
        expect(wire.recv(), m.ErrorResponse, cid=CID, status=ECA.ECA_BADTYPE)
        wire.send(m.EventAddRequest(data_type=bad, data_count=1, sid=sid, subscriptionid=4,
                                    payload=conformance.VALUE_MASK))
        expect(wire.recv(), m.ErrorResponse, cid=CID, status=ECA.ECA_BADTYPE)
        wire.send(m.EventCancelRequest(data_type=bad, data_count=1, sid=sid,
                                       subscriptionid=4))
        expect(wire.recv(), m.EventCancelResponse, subscriptionid=4)
        _still_serves(wire, sid)
        clear_channel(wire, sid)


def test_requests_wrong_by_themselves_get_an_error_naming_them() -> None:
    """RSRV drops the circuit for each of these; ours answers with the ids it has and
    goes on, and another client never notices."""
    with serving() as (server, target):
        other, other_sid = _ival(target)
        other.send(m.EventAddRequest(data_type=DBRType.LONG, data_count=1, sid=other_sid,
                                     subscriptionid=1, payload=conformance.VALUE_MASK))
        expect(other.recv(), m.EventAddResponse, subscriptionid=1)
        wire, sid = _ival(target)
        cases: list[tuple[m.Message, int, int]] = [
            (m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid + 100,
                                 ioid=1), 0xFFFFFFFF, ECA.ECA_BADCHID),
            (m.WriteRequest(data_type=DBRType.LONG, data_count=1, sid=sid + 100, ioid=1,
                            payload=conformance.be32(5)), 0xFFFFFFFF, ECA.ECA_BADCHID),
            (m.ClearChannelRequest(sid=sid + 100, cid=9), 9, ECA.ECA_BADCHID),
            (m.EventCancelRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                  subscriptionid=77), CID, ECA.ECA_BADMONID),
            (m.EventAddRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                               subscriptionid=5), CID, ECA.ECA_INTERNAL),  # no mask
            (m.Beacon(server_port=1), 0xFFFFFFFF, ECA.ECA_INTERNAL),
            (m.UnknownCommand(77, parameter1=sid), 0xFFFFFFFF, ECA.ECA_INTERNAL),
            (m.CreateChanRequest(name=conformance.AVAL, cid=CID), CID, ECA.ECA_INTERNAL),
            (m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=2, sid=sid, ioid=2),
             CID, ECA.ECA_BADCOUNT),
        ]
        for request, cid, status in cases:
            wire.send(request)
            error = expect(wire.recv(), m.ErrorResponse, cid=cid, status=status)
            assert error.original_request.command == request.command
            assert error.error_message
            _still_serves(wire, sid)
        wire.send(m.WriteNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                       ioid=8, payload=conformance.be32(7)))
        expect(wire.recv(), m.WriteNotifyResponse, status=ECA.ECA_NORMAL, ioid=8)
        update = expect(other.recv(), m.EventAddResponse, subscriptionid=1)
        assert update.value == 7
        # A count beyond the PV's is a read that fails, not a breach.
        assert server.misbehaviour.count("client 127.0.0.1", Kind.REFUSED) == len(cases) - 1
        clear_channel(wire, sid)
        clear_channel(other, other_sid)


def test_a_bad_type_read_notify_drops_only_its_own_circuit() -> None:
    with serving() as (_, target):
        other, other_sid = _ival(target)
        wire, sid = _ival(target)
        wire.send(m.ReadNotifyRequest(data_type=39, data_count=1, sid=sid, ioid=1))
        assert wire.closed_silently()
        _still_serves(other, other_sid)
        clear_channel(other, other_sid)


def test_tcp_searches_are_answered_in_order_and_bounded() -> None:
    """Thousands of unanswered searches leave nothing outstanding behind."""
    with serving() as (server, target):
        wire, _ = conformance.open_circuit(target, names=False)
        wire.send(*(m.SearchRequest(name=f"none:{n}", reply=SearchReply.DONT_REPLY, cid=n)
                    for n in range(3000)),
                  m.SearchRequest(name=conformance.AVAL, cid=5000))
        expect(wire.recv(), m.SearchResponse, cid=5000, port=target.tcp_port)
        (served,) = server._circuits
        assert served.state._pending_search == {}


# --------------------------------------------------------------------- DBR 35 to 38


def test_special_types_of_a_pv() -> None:
    pv = PV("X", DBRType.DOUBLE, [1.5, 2.25], precision=2, writable=False)
    assert pv.record_type == "waveform" and record_type_of(DBRType.ENUM) == "mbbo"
    assert record_type_of(DBRType.STRING, writable=False) == "stringin"
    stsack = pv.read(DBRType.STSACK_STRING)
    assert stsack.values == ["1.50", "2.25"] and (stsack.ackt, stsack.acks) == (1, 0)
    assert pv.read(DBRType.CLASS_NAME, 2).values == ["waveform", ""]
    # Alarms to acknowledge: a MAJOR alarm stays unacknowledged after it clears.
    assert pv.update(severity=2, status=3) == EventMask.ALARM and pv.acks == 2
    pv.update(severity=0, status=0)
    assert pv.acks == 2
    assert pv.acknowledge(1) == EventMask.NONE and pv.acks == 2
    assert pv.acknowledge(2) == EventMask.ALARM and pv.acks == 0
    pv.update(severity=1, status=3)
    pv.update(severity=0, status=0)
    assert pv.acknowledge_transients(False) == EventMask.ALARM and pv.acks == 0
    pv.update(severity=2, status=3)
    pv.update(severity=1, status=3)
    assert pv.acks == 1  # without ACKT, what is unacknowledged follows the alarm down
    # Acknowledgements written to the PV directly, as the server takes them.
    assert pv.write(DBRValue(DBRType.PUT_ACKT, [1])) == EventMask.ALARM and pv.ackt
    assert pv.write(DBRValue(DBRType.PUT_ACKS, [2])) == EventMask.ALARM and pv.acks == 0
    with pytest.raises(ConversionError, match="DBR_CLASS_NAME cannot be written"):
        pv.write(DBRValue(DBRType.CLASS_NAME, ["ai"]))


def test_an_acknowledgement_posts_an_alarm_update() -> None:
    with serving([PV("alarmed", DBRType.DOUBLE, 1.0, severity=2, status=3)]) as (_, target):
        wire, sid = open_channel(target, "alarmed", DBRType.DOUBLE, 1)
        wire.send(m.EventAddRequest(data_type=DBRType.STSACK_STRING, data_count=1, sid=sid,
                                    subscriptionid=1, payload=_mask(EventMask.ALARM)))
        first = expect(wire.recv(), m.EventAddResponse, status=ECA.ECA_NORMAL)
        assert (first.data.severity, first.data.acks) == (2, 2)
        wire.send(m.WriteNotifyRequest(data_type=DBRType.PUT_ACKS, data_count=1, sid=sid,
                                       ioid=2, payload=conformance.be16(2)))
        replies = [wire.recv(), wire.recv()]
        update = next(r for r in replies if isinstance(r, m.EventAddResponse))
        assert (update.data.severity, update.data.acks) == (2, 0)
        expect(next(r for r in replies if not isinstance(r, m.EventAddResponse)),
               m.WriteNotifyResponse, status=ECA.ECA_NORMAL, ioid=2)
        for ioid, data_type in ((3, DBRType.STSACK_STRING), (4, DBRType.CLASS_NAME),
                                (5, DBRType.GR_DOUBLE)):
            wire.send(m.WriteNotifyRequest(data_type=data_type, data_count=1, sid=sid,
                                           ioid=ioid, payload=bytes(200)))
            expect(wire.recv(), m.WriteNotifyResponse, status=ECA.ECA_PUTFAIL, ioid=ioid)
        clear_channel(wire, sid)


def _mask(mask: int) -> bytes:
    return m.EventAddRequest(mask=mask).payload


def test_random_requests_never_cost_the_server_or_another_circuit(caplog) -> None:
    """Well-framed requests of any command with random fields and payloads, on circuits
    that have a channel: each is answered or refused, the circuit goes on or is closed,
    and another client's subscription and reads go on all along."""
    rng = random.Random(17)
    with serving() as (server, target):
        other, other_sid = _ival(target)
        other.send(m.EventAddRequest(data_type=DBRType.LONG, data_count=1, sid=other_sid,
                                     subscriptionid=1, payload=conformance.VALUE_MASK))
        expect(other.recv(), m.EventAddResponse, subscriptionid=1)
        for round_ in range(20):
            wire, sid = _ival(target)
            blob = b"".join(
                struct.pack(">HHHHII", rng.randrange(30), size, rng.choice(
                    [rng.randrange(40), rng.randrange(0x10000)]), rng.randrange(8),
                    rng.choice([sid, rng.randrange(1 << 32)]), rng.randrange(1 << 32))
                + bytes(rng.randrange(256) for _ in range(size))
                for size in (8 * rng.randrange(6) for _ in range(100)))
            wire.send(blob)
            wire.sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(conformance.Closed, ConnectionError):
                while True:
                    wire.recv()
            wire.close()
            on_loop(server, lambda n=round_: server.set(conformance.IVAL, n + 100))
            # Updates of the random writes that took come first, then the one of set().
            while expect(other.recv(), m.EventAddResponse, subscriptionid=1).value != (
                    round_ + 100):
                pass
        _still_serves(other, other_sid)
        clear_channel(other, other_sid)
        assert server.misbehaviour.count("client 127.0.0.1", Kind.REFUSED) > 100
    # Nothing the clients sent made this server break the protocol itself.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
