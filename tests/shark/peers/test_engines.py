"""The asyncio engines (shark.peers.server, shark.peers.client) against each other and real peers.

* In process, on free loopback ports: our client against our server (reads in every
  DBR type, writes, subscriptions, errors, reconnection), and clients sending garbage.
* Our client against softioc (EPICS base's rsrv), run by ``peers.run_scenario``: the
  same exercise (``engine_peers.exercise``) run against softioc and against our server
  serving the same PVs must see the same values, metadata and statuses. That is what
  checks that the server converts between DBR types as an IOC does.
* pyepics (libca) against our server, in the private network namespace: the scripts run
  there are ``tests/helpers/engine_peers.py``'s modes (``run_scenario`` can only start
  softioc). Everything is pinned to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
from collections.abc import Callable
from typing import Any

import engine_peers
import peers
import pyepics_sessions
import pytest
from engine_peers import (
    LOOPBACK,
    NAMES,
    READABLE_TYPES,
    RECORDS,
    STATES,
    comparable,
    engine_pvs,
    exercise,
    run,
)
from raw_circuits import RawCircuit

from decoder import ECA, EventMask, Role
from decoder import messages as m
from decoder.dbr import DBRType, decode, encode
from decoder.framing import split_datagram
from decoder.protocol import SearchReply
from shark.peers.client import CAError, Client
from shark.peers.server import PV, Server

# ---------------------------------------------------------------- in process


async def _with_engines(body: Callable[[Server, Client], Any]) -> Any:
    """Run ``body`` with our server serving ``engine_pvs()`` and our client."""
    async with Server(engine_pvs(), port=0, beacon_address=None) as server:
        async with Client([(LOOPBACK, server.udp_port)], timeout=3) as client:
            return await body(server, client)


def test_read_every_type_matches_the_pv() -> None:
    async def body(server: Server, client: Client) -> None:
        for name in NAMES:
            pv = server.pvs[name]
            for data_type in READABLE_TYPES:
                try:  # what the PV gives, through the wire format
                    value = pv.read(data_type)
                    expected = comparable(decode(data_type, value.count, encode(data_type, value)))
                except ValueError:
                    expected = None
                try:
                    got = comparable(await client.read(name, data_type))
                except CAError as error:
                    assert expected is None and error.status == ECA.ECA_GETFAIL
                    continue
                assert got == expected, (name, data_type)
        ao = await client.read("ENG:AO", DBRType.CTRL_DOUBLE)
        assert (ao.value, ao.units, ao.precision) == (3.14159, "mm", 3)
        assert (ao.upper_ctrl_limit, ao.lower_alarm_limit) == (9.5, -9.0)
        assert (await client.read("ENG:AO", DBRType.STRING)).value == "3.142"
        assert (await client.read("ENG:MBBO", DBRType.STRING)).value == "One"
        assert (await client.read("ENG:MBBO", DBRType.GR_ENUM)).enum_strings == STATES
        assert list((await client.read("ENG:WF")).values) == [1.5, 2.5, -3.5]
        assert (await client.read("ENG:WF", count=5)).count == 5
        with pytest.raises(CAError) as error:
            await client.read("ENG:WF", count=6)
        assert error.value.status == ECA.ECA_BADCOUNT
        channel = await client.connect("ENG:WF")
        assert (channel.native_type, channel.native_count) == (DBRType.DOUBLE, 5)
        assert channel.server == (LOOPBACK, server.tcp_port)

    run(_with_engines(body))


def test_write_and_write_notify() -> None:
    async def body(server: Server, client: Client) -> None:
        await client.write("ENG:AO", 1.25)
        assert server.pvs["ENG:AO"].value == 1.25
        await client.write("ENG:MBBO", "Two")
        assert server.pvs["ENG:MBBO"].value == 2
        await client.write("ENG:LO", 8, notify=False)
        assert (await client.read("ENG:LO")).value == 8  # same circuit: in order
        await client.write("ENG:WF", [9, 8, 7, 6, 5])
        assert server.pvs["ENG:WF"].value == [9.0, 8.0, 7.0, 6.0, 5.0]
        for name, value, status in [("ENG:AO", "abc", ECA.ECA_PUTFAIL),
                                    ("ENG:RO", 1, ECA.ECA_NOWTACCESS)]:
            with pytest.raises(CAError) as error:
                await client.write(name, value)
            assert error.value.status == status
        assert (await client.connect("ENG:RO")).access_rights == 1
        await client.write("ENG:RO", 2, notify=False)  # refused by an ERROR message only
        assert (await client.read("ENG:RO")).value == 5

    run(_with_engines(body))


def test_large_arrays_use_extended_headers() -> None:
    async def body(server: Server, client: Client) -> None:
        server.add(PV("ENG:HUGE", DBRType.DOUBLE, list(range(100_000))))
        value = await client.read("ENG:HUGE")
        assert value.count == 100_000 and value.values[-1] == 99_999
        await client.write("ENG:HUGE", [0.5] * 70_000)
        assert len(server.pvs["ENG:HUGE"].values) == 70_000
        assert (await client.read("ENG:HUGE", DBRType.SHORT)).count == 70_000

    run(_with_engines(body))


def test_subscriptions_follow_their_masks_and_cancel() -> None:
    async def body(server: Server, client: Client) -> None:
        values = client.subscribe("ENG:AO", DBRType.TIME_DOUBLE, mask=EventMask.VALUE)
        alarms = client.subscribe("ENG:AO", DBRType.STS_DOUBLE, mask=EventMask.ALARM)
        seen: list[Any] = []
        client.subscribe("ENG:AO", DBRType.CTRL_DOUBLE, mask=EventMask.PROPERTY,
                         callback=lambda v: seen.append(v.units))
        assert (await anext(values)).value == 3.14159
        assert (await anext(alarms)).severity == 0
        server.set("ENG:AO", 4.0)
        server.set("ENG:AO", severity=2, status=3)
        server.set("ENG:AO", units="cm")
        server.set("ENG:AO", 4.0, force=True)
        assert [(await anext(values)).value for _ in range(2)] == [4.0, 4.0]
        got = [await anext(alarms) for _ in range(2)]
        assert [(v.severity, v.status) for v in got] == [(2, 3), (2, 3)]
        await client.echo()
        assert seen == ["mm", "cm"]
        await values.cancel()
        server.set("ENG:AO", 5.0, force=True)
        assert (await anext(alarms)).value == 5.0
        assert [v.value async for v in values] == []  # ended by the cancel, nothing after

    run(_with_engines(body))


def test_unknown_names() -> None:
    async def body(server: Server, client: Client) -> None:
        with pytest.raises(TimeoutError):
            await client.read("ENG:NOPE", timeout=0.3)
        raw = await RawCircuit.open(server.tcp_port)
        raw.send(m.VersionRequest(), m.CreateChanRequest(name="ENG:NOPE", cid=7))
        assert (await raw.expect(m.CreateChFailResponse)).cid == 7
        raw.close()
        replies = await _udp_exchange(server.udp_port, [
            m.SearchRequest(name="ENG:NOPE", cid=1, reply=SearchReply.DONT_REPLY),
            m.SearchRequest(name="ENG:NOPE", cid=2, reply=SearchReply.DO_REPLY),
            m.SearchRequest(name="ENG:AO", cid=3),
        ])
        # An unknown name gets no answer over UDP, even when one is asked for.
        kinds = [(type(r).__name__, getattr(r, "cid", None)) for r in replies]
        assert kinds == [("VersionResponse", None), ("SearchResponse", 3)]
        assert replies[1].port == server.tcp_port and replies[1].ip == 0xFFFFFFFF

    run(_with_engines(body))


async def _udp_exchange(port: int, requests: list[m.Message], wait: float = 1.0
                        ) -> list[m.Message]:
    """Send one datagram of ``requests`` to ``port``; return the messages of the reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, b"".join(r.to_bytes() for r in requests), (LOOPBACK, port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), wait)
    return split_datagram(data, Role.SERVER)


def test_raw_circuit_requests() -> None:
    """What libca sends less often: READ, ECHO, EVENTS_OFF/ON, CLEAR_CHANNEL."""
    async def body(server: Server, client: Client) -> None:
        raw = await RawCircuit.open(server.tcp_port)
        assert (await raw.expect(m.VersionResponse)).version == 13
        raw.send(m.VersionRequest())
        sid = await raw.connect("ENG:LO")
        raw.send(m.ReadRequest(data_type=DBRType.STRING, data_count=1, sid=sid, ioid=4))
        assert (await raw.expect(m.ReadResponse)).value == "70000"
        raw.send(m.EchoRequest())
        await raw.expect(m.EchoResponse)
        raw.send(m.EventAddRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                   subscriptionid=9, mask=EventMask.VALUE))
        assert (await raw.expect(m.EventAddResponse)).value == 70000
        raw.send(m.EventsOffRequest(), m.EchoRequest())
        await raw.expect(m.EchoResponse)
        for value in (1, 2, 3):
            server.set("ENG:LO", value)
        raw.send(m.EchoRequest())
        await raw.expect(m.EchoResponse)
        assert not any(isinstance(x, m.EventAddResponse) for x in raw.received)
        raw.send(m.EventsOnRequest())
        assert (await raw.expect(m.EventAddResponse)).value == 3  # the latest only
        raw.send(m.EventCancelRequest(data_type=DBRType.LONG, data_count=1, sid=sid,
                                      subscriptionid=9))
        assert (await raw.expect(m.EventCancelResponse)).subscriptionid == 9
        raw.send(m.ClearChannelRequest(sid=sid, cid=1))
        assert (await raw.expect(m.ClearChannelResponse)).sid == sid
        raw.send(m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=sid, ioid=5))
        error = await raw.expect(m.ErrorResponse)  # the channel is gone: refused
        assert error.original_request.ioid == 5 and error.status == ECA.ECA_BADCHID
        raw.send(m.EchoRequest())
        await raw.expect(m.EchoResponse)  # the circuit goes on
        raw.close()

    run(_with_engines(body))


def test_beacons_go_where_told() -> None:
    async def body() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.setblocking(False)
            address = sock.getsockname()
            async with Server(engine_pvs(), port=0, beacon_address=address,
                              beacon_period=0.05) as server:
                loop = asyncio.get_running_loop()
                beacons = []
                for _ in range(3):
                    data = await asyncio.wait_for(loop.sock_recv(sock, 1024), 2)
                    beacons += split_datagram(data, Role.SERVER)
        assert [b.beaconid for b in beacons] == [0, 1, 2]
        assert {b.server_port for b in beacons} == {server.tcp_port}
        assert {b.address for b in beacons} == {0x7F000001}

    run(body())


def test_client_reconnects_after_server_restart() -> None:
    async def body() -> None:
        first = Server(engine_pvs(), port=0, beacon_address=None)
        await first.start()
        async with Client([(LOOPBACK, first.udp_port)], timeout=3,
                          max_search_interval=0.2) as client:
            sub = client.subscribe("ENG:COUNTER")
            assert (await anext(sub)).value == 0
            await first.stop()
            second = Server(engine_pvs(), port=first.udp_port, tcp_port=0,
                            beacon_address=None)
            second.pvs["ENG:COUNTER"].update(41)
            async with second:
                assert (await asyncio.wait_for(anext(sub), 5)).value == 41
                assert (await client.read("ENG:COUNTER")).value == 41
                second.set("ENG:COUNTER", 42)
                assert (await asyncio.wait_for(anext(sub), 5)).value == 42

    run(body())


def test_a_client_that_does_not_read_gets_the_latest_update() -> None:
    """Updates to a client that does not keep up are coalesced, not queued forever."""
    async def body(server: Server, client: Client) -> None:
        server.add(PV("ENG:HUGE", DBRType.DOUBLE, [0.0] * 100_000))
        raw = await RawCircuit.open(server.tcp_port)
        raw.send(m.VersionRequest())
        sid = await raw.connect("ENG:HUGE")
        raw.send(m.EventAddRequest(data_type=DBRType.DOUBLE, data_count=0, sid=sid,
                                   subscriptionid=1, mask=EventMask.VALUE))
        await asyncio.sleep(0.1)
        for n in range(1, 41):  # 32 MB of updates while the client reads nothing
            server.set("ENG:HUGE", [float(n)] * 100_000)
            await asyncio.sleep(0)
        assert (await client.read("ENG:AO")).value == 3.14159  # others are served
        updates: list[float] = []
        while not updates or updates[-1] != 40.0:
            updates.append((await raw.expect(m.EventAddResponse, timeout=10)).data.values[0])
        assert updates == sorted(updates) and len(updates) < 30
        raw.close()

    run(_with_engines(body))


def test_removed_pv_disconnects_its_channels() -> None:
    async def body(server: Server, client: Client) -> None:
        sub = client.subscribe("ENG:COUNTER")
        assert (await anext(sub)).value == 0
        channel = client.channel("ENG:COUNTER")
        server.remove("ENG:COUNTER")
        await client.echo()  # SERVER_DISCONN came before the echo reply
        assert not channel.connected
        server.add(PV("ENG:COUNTER", DBRType.LONG, 7))
        assert (await asyncio.wait_for(anext(sub), 3)).value == 7
        assert channel.connected

    run(_with_engines(body))


def test_client_drops_a_silent_circuit() -> None:
    """ECHO keeps a quiet circuit; a server that stops answering loses it, and the
    client starts over: its subscription gets a first update again."""
    async def body() -> None:
        async with Server(engine_pvs(), port=0, beacon_address=None) as server:
            async with Client([(LOOPBACK, server.udp_port)], echo_interval=0.2) as client:
                updates: list[Any] = []
                client.subscribe("ENG:COUNTER", callback=lambda v: updates.append(v.value))
                await client.connect("ENG:COUNTER")
                await asyncio.sleep(0.7)  # quiet, but the echoes are answered
                assert updates == [0]
                for circuit in server._circuits:  # the server stops answering ECHO
                    circuit._handlers[m.EchoRequest] = lambda *_: None
                for _ in range(40):
                    await asyncio.sleep(0.05)
                    if len(updates) == 2:
                        break
                assert updates == [0, 0]

    run(body())


def test_garbage_does_not_disturb_other_clients() -> None:
    async def body(server: Server, client: Client) -> None:
        sub = client.subscribe("ENG:COUNTER")
        assert (await anext(sub)).value == 0
        rng = random.Random(1234)
        # Random bytes: the server refuses what it cannot frame or may not accept.
        for _ in range(5):
            raw = await RawCircuit.open(server.tcp_port)
            raw.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
            raw.writer.write_eof()
            assert await raw.closed_by_server()
        # A header claiming 1 GiB (extended form): an ERROR first, then the end.
        raw = await RawCircuit.open(server.tcp_port)
        huge = m.WriteRequest(data_type=DBRType.DOUBLE, data_count=1, sid=1, extended=True)
        raw.send(m.VersionRequest(), huge.header_bytes(1 << 30))
        error = await raw.expect(m.ErrorResponse)
        assert error.status == ECA.ECA_TOLARGE and error.original_payload_size == 1 << 30
        assert await raw.closed_by_server()
        # Half a header, then gone; a half-sent write, then gone.
        raw = await RawCircuit.open(server.tcp_port)
        raw.send(m.VersionRequest().to_bytes()[:9])
        raw.close()
        raw = await RawCircuit.open(server.tcp_port)
        raw.send(m.VersionRequest())
        sid = await raw.connect("ENG:AO")
        write = m.WriteNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=sid,
                                     ioid=1, data=[7.0])
        raw.send(write.to_bytes()[:20])
        raw.close()
        # A server form sent by a client, and a request for a channel never created:
        # refused, and the circuit goes on until the client leaves.
        for bad in (m.Beacon(server_port=1), m.ReadNotifyRequest(sid=999, ioid=1)):
            raw = await RawCircuit.open(server.tcp_port)
            raw.send(m.VersionRequest(), bad)
            assert type((await raw.expect(m.ErrorResponse)).original_request) is type(bad)
            raw.writer.write_eof()
            assert await raw.closed_by_server()
        # Random datagrams to the search port.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(20):
                udp.sendto(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100))),
                           (LOOPBACK, server.udp_port))
        # Meanwhile the first client goes on, and a new one is served.
        server.set("ENG:COUNTER", 1)
        assert (await asyncio.wait_for(anext(sub), 3)).value == 1
        assert server.pvs["ENG:AO"].value == 3.14159
        async with Client([(LOOPBACK, server.udp_port)], timeout=3) as other:
            assert (await other.read("ENG:AO")).value == 3.14159
        for _ in range(50):
            if server.circuit_count == 1:
                break
            await asyncio.sleep(0.05)
        assert server.circuit_count == 1

    run(_with_engines(body))


# ------------------------------------------------------- our client against softioc


@pytest.fixture(scope="module")
def softioc_exercise(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:func:`exercise` run by our client against softioc, once for the module."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result = peers.run_scenario(
        RECORDS, [sys.executable, str(engine_peers.SCRIPT), "softioc-client"],
        tmp_path_factory.mktemp("softioc"), client_timeout=40, timeout=60)
    assert result["ok"], result["errors"]
    return result


def test_our_client_against_softioc(softioc_exercise: dict[str, Any]) -> None:
    seen = softioc_exercise["client_result"]
    assert seen["reads"]["ENG:AO"]["6"]["values"] == [3.14159]
    assert seen["reads"]["ENG:AO"]["34"]["units"] == "mm"
    assert seen["reads"]["ENG:MBBO"]["31"]["enum_strings"] == STATES
    assert seen["writes"]["ao"] == seen["writes"]["wf"] == "ok"
    assert seen["after"]["ENG:MBBO"][0]["values"] == ["Two"]
    assert seen["after"]["ENG:LO"][1]["values"] == [42.0]
    assert seen["updates"] == [2.5, 3.0] and seen["after cancel"] == []
    assert seen["bad name"] == "timeout"
    writes = [w["value"] for w in softioc_exercise["ioc_log"]["writes_seen"]]
    assert 1.25 in writes and 3.0 in writes


def test_our_server_answers_as_softioc_does(softioc_exercise: dict[str, Any]) -> None:
    """The same exercise against our server: every read in every DBR type, every write
    status and every update must be what softioc gave."""
    theirs = softioc_exercise["client_result"]
    ours = json.loads(json.dumps(peers.jsonable(run(_with_engines(
        lambda server, client: exercise(client)), timeout=40))))
    for name in NAMES:
        for data_type in map(str, READABLE_TYPES):
            assert ours["reads"][name][data_type] == theirs["reads"][name][data_type], (
                name, DBRType(int(data_type)).dbr_name)
    del ours["reads"], theirs["reads"]
    assert ours == theirs


# ------------------------------------------------------- pyepics against our server


@pytest.fixture(scope="module")
def pyepics_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pyepics (libca) against our server, in the private namespace when there is one."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    result, done = pyepics_sessions.run_session(
        engine_peers.SCRIPT, tmp_path_factory.mktemp("pyepics"), client_timeout=30, timeout=45)
    assert result is not None, done
    assert not result["errors"], (result, done["stderr"])
    return result


def test_pyepics_reads_our_values_and_metadata(pyepics_session: dict[str, Any]) -> None:
    seen = pyepics_session["client_result"]
    assert all(seen["connected"].values())
    assert seen["plain"]["ENG:AO"] == 3.14159 and seen["plain"]["ENG:SO"] == "12.5"
    assert seen["plain"]["ENG:WF"] == [1.5, 2.5, -3.5]
    assert seen["string"]["ENG:MBBO"] == "One" and seen["string"]["ENG:AO"] == "3.142"
    time_ao = seen["time"]["ENG:AO"]
    assert time_ao["value"] == 3.14159 and time_ao["severity"] == 0
    assert abs(time_ao["timestamp"] - pyepics_session["started"]) < 60
    ctrl_ao = seen["ctrl"]["ENG:AO"]
    assert (ctrl_ao["units"], ctrl_ao["precision"]) == ("mm", 3)
    assert (ctrl_ao["upper_ctrl_limit"], ctrl_ao["upper_alarm_limit"]) == (9.5, 9.0)
    assert seen["ctrl"]["ENG:MBBO"]["enum_strs"] == STATES
    assert seen["write_access"] == {**{n: True for n in seen["write_access"]}, "ENG:RO": False}


def test_pyepics_put_with_wait_and_monitors(pyepics_session: dict[str, Any]) -> None:
    seen = pyepics_session["client_result"]
    assert seen["put"] == seen["put_enum"] == seen["put_string"] == 1
    assert seen["after_put"] == {"ENG:AO": "1.250", "ENG:MBBO": "Two", "ENG:SO": "hello"}
    assert pyepics_session["server_values"]["ENG:AO"] == 1.25
    assert seen["ao_updates"][:2] == [3.14159, 1.25]
    counter = seen["counter"]
    assert len(counter) >= 3 and counter == sorted(counter)
