"""The asyncio engines (shark.peers.server, shark.peers.client) against each other and real peers.

* In process, on free loopback ports: our client against our server (reads in every
  DBR type, writes, subscriptions, errors, reconnection), and clients sending garbage.
* Our client against softioc (EPICS base's rsrv), run by ``peers.run_scenario``: the
  same exercise (:func:`exercise`) run against softioc and against our server serving
  the same PVs must see the same values, metadata and statuses. That is what checks
  that the server converts between DBR types as an IOC does.
* pyepics (libca) against our server: this module is also the script run inside the
  private network namespace (``python test_engines.py serve SPEC``), since
  ``run_scenario`` can only start softioc. Everything is pinned to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peers
import pytest

from decoder import ECA, EventMask, Role, StreamFramer
from decoder import messages as m
from decoder.dbr import DBRType, DBRValue, decode, encode
from decoder.framing import split_datagram
from decoder.protocol import SearchReply
from shark.peers.client import CAError, Client
from shark.peers.server import PV, Server

HERE = Path(__file__).resolve()
LOOPBACK = peers.LOOPBACK
READABLE_TYPES = range(DBRType.CTRL_DOUBLE + 1)
STATES = ["Zero", "One", "Two"]

#: softioc records and, in :func:`engine_pvs`, the PVs our server serves in their place.
RECORDS: list[dict[str, Any]] = [
    {"name": "ENG:AO", "type": "ao", "value": 3.14159,
     "fields": {"EGU": "mm", "PREC": 3, "HOPR": 10, "LOPR": -10, "HIHI": 9, "HIGH": 8,
                "LOW": -8, "LOLO": -9, "HHSV": "MAJOR", "HSV": "MINOR", "LSV": "MINOR",
                "LLSV": "MAJOR", "DRVH": 9.5, "DRVL": -9.5}},
    {"name": "ENG:HALF", "type": "ao", "value": 0.125, "fields": {"PREC": 2}},
    {"name": "ENG:BIG", "type": "ao", "value": 123456789.5, "fields": {"PREC": 2}},
    {"name": "ENG:MBBO", "type": "mbbo", "value": 1, "options": STATES},
    {"name": "ENG:LO", "type": "longout", "value": 70000,
     "fields": {"EGU": "cts", "HOPR": 100, "LOPR": 1, "DRVH": 80000, "DRVL": -5}},
    {"name": "ENG:SO", "type": "stringout", "value": "12.5"},
    {"name": "ENG:WF", "type": "waveform_out", "value": [1.5, 2.5, -3.5], "nelm": 5,
     "ftvl": "DOUBLE"},
    {"name": "ENG:WFC", "type": "waveform", "value": [65, 66, 120], "nelm": 4, "ftvl": "CHAR"},
    {"name": "ENG:WFF", "type": "waveform", "value": [0.125, 2.5, 1e9], "nelm": 3,
     "ftvl": "FLOAT"},
]
NAMES = [r["name"] for r in RECORDS]


def engine_pvs() -> list[PV]:
    """Our server's stand-ins for :data:`RECORDS`, plus a read-only PV and a counter."""
    return [
        PV("ENG:AO", DBRType.DOUBLE, 3.14159, units="mm", precision=3, upper_disp_limit=10,
           lower_disp_limit=-10, upper_alarm_limit=9, upper_warning_limit=8,
           lower_warning_limit=-8, lower_alarm_limit=-9, upper_ctrl_limit=9.5,
           lower_ctrl_limit=-9.5),
        PV("ENG:HALF", DBRType.DOUBLE, 0.125, precision=2),
        PV("ENG:BIG", DBRType.DOUBLE, 123456789.5, precision=2),
        PV("ENG:MBBO", DBRType.ENUM, 1, enum_strings=STATES),
        PV("ENG:LO", DBRType.LONG, 70000, units="cts", upper_disp_limit=100,
           lower_disp_limit=1, upper_ctrl_limit=80000, lower_ctrl_limit=-5),
        PV("ENG:SO", DBRType.STRING, "12.5"),
        PV("ENG:WF", DBRType.DOUBLE, [1.5, 2.5, -3.5], count=5),
        PV("ENG:WFC", DBRType.CHAR, [65, 66, 120], count=4),
        PV("ENG:WFF", DBRType.FLOAT, [0.125, 2.5, 1e9], count=3),
        PV("ENG:RO", DBRType.LONG, 5, writable=False),
        PV("ENG:COUNTER", DBRType.LONG, 0),
    ]


def run(coro: Any, timeout: float = 20.0) -> Any:
    """Run a coroutine on a fresh event loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def comparable(value: DBRValue) -> dict[str, Any]:
    """A DBR value as JSON, without what differs between two servers by nature
    (the timestamp, the struct padding rsrv leaves uninitialised)."""
    meta = {k: v for k, v in value.metadata().items()
            if k not in ("seconds", "nanoseconds", "RISC_pad")}
    return peers.jsonable({"type": int(value.dbr_type), "values": list(value.values), **meta})


async def _outcome(action: Any) -> Any:
    try:
        result = await action
    except CAError as error:
        return f"error {ECA(error.status).name}"
    return comparable(result) if isinstance(result, DBRValue) else "ok"


async def exercise(client: Client) -> dict[str, Any]:
    """Everything our client does against a server with :data:`RECORDS`; the result
    must not depend on which server it is."""
    out: dict[str, Any] = {"reads": {}}
    for name in NAMES:
        out["reads"][name] = {t: await _outcome(client.read(name, t)) for t in READABLE_TYPES}
    out["padded"] = await _outcome(client.read("ENG:WF", DBRType.DOUBLE, count=5))
    writes = {
        "ao": ("ENG:AO", 1.25), "ao text": ("ENG:AO", "2.5"), "ao garbage": ("ENG:AO", "abc"),
        "mbbo state": ("ENG:MBBO", "Two"), "mbbo bad state": ("ENG:MBBO", "Nine"),
        "lo text": ("ENG:LO", "12.7"), "so number": ("ENG:SO", 7),
        "wf": ("ENG:WF", [4.0, 5.0, 6.0, 7.0]),
    }
    out["writes"] = {label: await _outcome(client.write(name, value))
                     for label, (name, value) in writes.items()}
    await client.write("ENG:LO", 42, notify=False)
    out["after"] = {name: [await _outcome(client.read(name, t)) for t in (0, 6)]
                    for name in ("ENG:AO", "ENG:MBBO", "ENG:LO", "ENG:SO", "ENG:WF")}
    sub = client.subscribe("ENG:AO", DBRType.TIME_DOUBLE)
    updates = [(await asyncio.wait_for(anext(sub), 5)).value]
    await client.write("ENG:AO", 3.0)
    updates.append((await asyncio.wait_for(anext(sub), 5)).value)
    await sub.cancel()
    out["updates"] = updates
    out["after cancel"] = [v.value async for v in sub]
    try:
        await client.read("ENG:NO-SUCH-PV", timeout=0.5)
        out["bad name"] = "found"
    except TimeoutError:
        out["bad name"] = "timeout"
    return out


# ---------------------------------------------------------------- in process


async def _with_engines(body: Callable[[Server, Client], Any]) -> Any:
    """Run ``body`` with our server serving :func:`engine_pvs` and our client."""
    async with Server(engine_pvs(), port=0, beacon_address=None) as server:
        async with Client([(LOOPBACK, server.udp_port)], timeout=3) as client:
            return await body(server, client)


class Raw:
    """A hand-driven client circuit, for what our client would never send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = StreamFramer(Role.SERVER)
        self.received: list[m.Message] = []

    @classmethod
    async def open(cls, port: int) -> Raw:
        return cls(*await asyncio.open_connection(LOOPBACK, port))

    def send(self, *messages: m.Message | bytes) -> None:
        self.writer.write(b"".join(x if isinstance(x, bytes) else x.to_bytes()
                                   for x in messages))

    async def expect(self, kind: type[m.Message], timeout: float = 3.0) -> m.Message:
        """The next message of ``kind`` (others are kept in :attr:`received`)."""
        async def wait() -> m.Message:
            while True:
                for i, msg in enumerate(self.received):
                    if type(msg) is kind:
                        return self.received.pop(i)
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError(f"closed before a {kind.__name__}")
                self.received += self.framer.feed(data)
        return await asyncio.wait_for(wait(), timeout)

    async def closed_by_server(self, timeout: float = 3.0) -> bool:
        """Read until the server closes; True if it did within ``timeout``."""
        async def drain() -> None:
            while data := await self.reader.read(65536):
                self.received += self.framer.feed(data)
        try:
            await asyncio.wait_for(drain(), timeout)
        except (asyncio.TimeoutError, ConnectionError):
            return False
        return True

    async def connect(self, name: str, cid: int = 1) -> m.CreateChanResponse:
        self.send(m.VersionRequest(), m.CreateChanRequest(name=name, cid=cid))
        return await self.expect(m.CreateChanResponse)

    def close(self) -> None:
        self.writer.transport.abort()


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
        raw = await Raw.open(server.tcp_port)
        raw.send(m.VersionRequest(), m.CreateChanRequest(name="ENG:NOPE", cid=7))
        assert (await raw.expect(m.CreateChFailResponse)).cid == 7
        raw.close()
        replies = await _udp_exchange(server.udp_port, [
            m.SearchRequest(name="ENG:NOPE", cid=1, reply=SearchReply.DONT_REPLY),
            m.SearchRequest(name="ENG:NOPE", cid=2, reply=SearchReply.DO_REPLY),
            m.SearchRequest(name="ENG:AO", cid=3),
        ])
        kinds = [(type(r).__name__, getattr(r, "cid", None)) for r in replies]
        assert kinds == [("VersionResponse", None), ("NotFoundResponse", 2),
                         ("SearchResponse", 3)]
        assert replies[2].port == server.tcp_port and replies[2].ip == 0xFFFFFFFF

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
        raw = await Raw.open(server.tcp_port)
        assert (await raw.expect(m.VersionResponse)).version == 13
        created = await raw.connect("ENG:LO")
        sid = created.sid
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
        error = await raw.expect(m.ErrorResponse)  # the channel is gone: the circuit ends
        assert error.original_request.ioid == 5
        assert await raw.closed_by_server()

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
        raw = await Raw.open(server.tcp_port)
        created = await raw.connect("ENG:HUGE")
        raw.send(m.EventAddRequest(data_type=DBRType.DOUBLE, data_count=0, sid=created.sid,
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
            raw = await Raw.open(server.tcp_port)
            raw.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
            raw.writer.write_eof()
            assert await raw.closed_by_server()
        # A header claiming 1 GiB (extended form): an ERROR first, then the end.
        raw = await Raw.open(server.tcp_port)
        huge = m.WriteRequest(data_type=DBRType.DOUBLE, data_count=1, sid=1, extended=True)
        raw.send(m.VersionRequest(), huge.header_bytes(1 << 30))
        error = await raw.expect(m.ErrorResponse)
        assert error.status == ECA.ECA_TOLARGE and error.original_payload_size == 1 << 30
        assert await raw.closed_by_server()
        # Half a header, then gone; a half-sent write, then gone.
        raw = await Raw.open(server.tcp_port)
        raw.send(m.VersionRequest().to_bytes()[:9])
        raw.close()
        raw = await Raw.open(server.tcp_port)
        created = await raw.connect("ENG:AO")
        write = m.WriteNotifyRequest(data_type=DBRType.DOUBLE, data_count=1, sid=created.sid,
                                     ioid=1, data=[7.0])
        raw.send(write.to_bytes()[:20])
        raw.close()
        # A server form sent by a client, and a request for a channel never created.
        for bad in (m.Beacon(server_port=1), m.ReadNotifyRequest(sid=999, ioid=1)):
            raw = await Raw.open(server.tcp_port)
            raw.send(m.VersionRequest(), bad)
            assert type((await raw.expect(m.ErrorResponse)).original_request) is type(bad)
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
        RECORDS, [sys.executable, str(HERE), "softioc-client"],
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
    work = tmp_path_factory.mktemp("pyepics")
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps({"workdir": str(work), "client_timeout": 30}))
    argv = [sys.executable, str(HERE), "serve", str(spec_path)]
    prefix = peers.namespace_command()
    if prefix:
        argv = [*prefix, *argv, "--netns"]
    done = peers.run_bounded(argv, timeout=45)
    result_path = work / "result.json"
    assert result_path.exists(), done
    result = json.loads(result_path.read_text())
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


# ------------------------------------------------------- scripts run inside the namespace


def _softioc_client_main(params_path: str) -> int:
    params = peers.load_client_params([params_path])
    port = params["port"]

    async def main() -> dict[str, Any]:
        async with Client([(LOOPBACK, port)], timeout=5) as client:
            return await exercise(client)

    peers.save_client_result(params, run(main(), timeout=35))
    return 0


async def _tick(server: Server) -> None:
    for n in range(1, 10_000):
        await asyncio.sleep(0.1)
        server.set("ENG:COUNTER", n)


async def _serve_pyepics(spec: dict[str, Any]) -> dict[str, Any]:
    """Serve :func:`engine_pvs` while the pyepics client script runs against them."""
    work = Path(spec["workdir"])
    port = peers.free_port()
    repeater = peers.free_port(avoid=[port])
    env = {**os.environ, **peers.epics_env(port, repeater),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    params_path = work / "client_params.json"
    result_path = work / "client_result.json"
    params_path.write_text(json.dumps({"result_path": str(result_path)}))
    out: dict[str, Any] = {"errors": [], "started": time.time()}
    async with Server(engine_pvs(), port=port, beacon_address=(LOOPBACK, repeater)) as server:
        ticker = asyncio.create_task(_tick(server))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE), "pyepics-client", str(params_path), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), spec["client_timeout"])
        except asyncio.TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
            out["errors"].append("pyepics client timed out")
        ticker.cancel()
        out["server_values"] = {name: pv.value for name, pv in server.pvs.items()}
    if proc.returncode:
        out["errors"].append(f"pyepics client exit {proc.returncode}: {err.decode()[-3000:]}")
    if result_path.exists():
        out["client_result"] = json.loads(result_path.read_text())
    else:
        out["errors"].append("pyepics client wrote no result")
    return out


def _serve_main(spec_path: str, netns: bool) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if netns:
        peers.bring_up_loopback()
    peers.become_subreaper()  # caRepeater, spawned by libca, must not outlive us
    try:
        result = run(_serve_pyepics(spec), timeout=spec["client_timeout"] + 10)
    except Exception as exc:  # reported in the result
        result = {"errors": [f"{type(exc).__name__}: {exc}"]}
    finally:
        strays = peers.stop_strays()
    result["strays_stopped"] = strays
    (Path(spec["workdir"]) / "result.json").write_text(json.dumps(peers.jsonable(result)))
    return 0


def _pyepics_client_main(params_path: str) -> int:
    """pyepics against our server: caget in three forms, caput with wait, camonitor."""
    from epics import ca, dbr

    params = peers.load_client_params([params_path])
    names = [*NAMES, "ENG:RO", "ENG:COUNTER"]
    chids = {n: ca.create_channel(n, connect=False, auto_cb=False) for n in names}
    seen: dict[str, Any] = {
        "connected": {n: ca.connect_channel(c, timeout=5) for n, c in chids.items()}}
    seen["plain"] = {n: ca.get(c, timeout=5) for n, c in chids.items()}
    # DBR_STRING asked of the server, not pyepics' own formatting (as_string=True).
    seen["string"] = {n: ca.get(c, ftype=dbr.STRING, timeout=5) for n, c in chids.items()}
    for form, promote in (("time", {"use_time": True}), ("ctrl", {"use_ctrl": True})):
        seen[form] = {n: ca.get_with_metadata(c, ftype=ca.promote_type(c, **promote),
                                              timeout=5) for n, c in chids.items()}
    seen["write_access"] = {n: bool(ca.write_access(c)) for n, c in chids.items()}
    seen["counter"], seen["ao_updates"] = [], []
    monitors = [  # keep the references: pyepics drops callbacks it no longer holds
        ca.create_subscription(chids["ENG:COUNTER"], use_time=True,
                               callback=lambda value=None, **_: seen["counter"].append(value)),
        ca.create_subscription(chids["ENG:AO"],
                               callback=lambda value=None, **_: seen["ao_updates"].append(value)),
    ]
    time.sleep(0.2)
    seen["put"] = ca.put(chids["ENG:AO"], 1.25, wait=True, timeout=5)
    seen["put_enum"] = ca.put(chids["ENG:MBBO"], 2, wait=True, timeout=5)
    seen["put_string"] = ca.put(chids["ENG:SO"], "hello", wait=True, timeout=5)
    seen["after_put"] = {n: ca.get(chids[n], ftype=dbr.STRING, timeout=5)
                         for n in ("ENG:AO", "ENG:MBBO", "ENG:SO")}
    time.sleep(0.8)
    del monitors
    ca.finalize_libca()
    peers.save_client_result(params, seen)
    return 0


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    if mode == "softioc-client":
        return _softioc_client_main(path)
    if mode == "serve":
        return _serve_main(path, "--netns" in argv)
    if mode == "pyepics-client":
        return _pyepics_client_main(path)
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
