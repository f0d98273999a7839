"""Quiet under attack: a peer's misbehaviour is told once per peer and kind, with a
count, never once per packet, and nothing is written to a connection once it is lost.

The lying servers are small asyncio servers of the test's own on free loopback ports
(``lying_servers``); the client that leaves abruptly is a raw circuit (``raw_circuits``).
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from engine_peers import LOOPBACK, run
from lying_servers import BAD_NATIVE_TYPE, NATIVE_TYPE, RESET, LyingServer
from raw_circuits import subscribe_many_and_reset, until_no_circuits

from decoder import Role, StreamFramer
from decoder import messages as m
from decoder.dbr import DBRType
from decoder.protocol import ADDRESS_OF_SENDER, MINOR_VERSION
from shark.peers.client import Client, ServerError
from shark.peers.misbehaviour import Kind, Misbehaviours
from shark.peers.server import PV, Server

NAMES = [f"LIE:{n}" for n in range(5)]
FLOODS = ("socket.send() raised exception", "exception was never retrieved",
          "Exception in callback", "Traceback")


def _flooded(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Lines of a known flood, and any with a traceback."""
    return [r.getMessage() for r in caplog.records
            if r.exc_info or any(flood in r.getMessage() for flood in FLOODS)]


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_misbehaviour_logs_the_first_of_each_kind_and_counts_the_rest(caplog):
    log = logging.getLogger("test.misbehaviour")
    tally = Misbehaviours(log)
    with caplog.at_level(logging.DEBUG, logger="test.misbehaviour"):
        for n in range(1000):
            tally.note("server a:1", Kind.CONNECTION_LOST, f"connection lost: try {n}")
        assert tally.note("server a:1", Kind.BAD_NATIVE_TYPE, "native type 9 of X") is True
        assert tally.note("server b:2", Kind.CONNECTION_LOST, "connection lost: b") is True
        assert tally.note("server b:2", Kind.CONNECTION_LOST, "again") is False
        assert len(caplog.records) == 3  # one per peer and kind
        tally.close()
        tally.close()  # told once
    lines = [r.getMessage() for r in caplog.records]
    assert lines[3:] == ["server a:1: connection lost: try 0 (1000 connections)",
                         "server b:2: connection lost: b (2 connections)"]
    assert tally.causes() == ["server a:1: connection lost: try 0 (1000 connections)",
                              "server a:1: native type 9 of X",
                              "server b:2: connection lost: b (2 connections)"]
    assert tally.count("server a:1", Kind.CONNECTION_LOST) == 1000
    assert tally.count("server c:3", Kind.CONNECTION_LOST) == 0


def test_kinds_are_distinct():
    assert len(set(Kind)) == len(Kind.__members__) == 10


def test_client_fails_channels_of_a_native_type_no_dbr_type_has(caplog):
    """Every channel fails with the server's breach, once each; subscriptions made before
    the channel connected end; one log line for all of them; no task left unretrieved."""
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with LyingServer(BAD_NATIVE_TYPE) as lying:
            async with Client([(LOOPBACK, lying.port)], timeout=3) as client:
                subs = [client.subscribe(name) for name in NAMES]  # before connecting
                for sub in subs:
                    with pytest.raises(ServerError, match=f"native type {NATIVE_TYPE} of "
                                                          f"{sub.channel.name} is not a DBR"):
                        await asyncio.wait_for(sub.channel.wait_connected(), 3)
                    assert not sub.channel.connected
                    assert sub.channel.name not in client.channels  # asked again: anew
                for sub in subs:  # ended, not waiting forever
                    assert [value async for value in sub] == []
                peer = f"server {LOOPBACK}:{lying.port}"
                assert client.misbehaviour.count(peer, Kind.BAD_NATIVE_TYPE) == len(NAMES)
                assert client.misbehaviour.causes() == [
                    f"{peer}: native type {NATIVE_TYPE} of {NAMES[0]} is not a DBR type "
                    f"({len(NAMES)} channels)"]
                assert lying.connections == 1  # the circuit itself went on

    run(body())
    gc.collect()  # an exception nobody retrieved is logged as its task goes
    assert _flooded(caplog) == []
    assert len(_lines(caplog, "shark.peers.client")) <= 2


def test_client_retries_a_server_that_resets_every_connection_quietly(caplog):
    """No write to a lost connection (asyncio would log each), one line per kind, and a
    back-off between connections rather than a storm of them."""
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with LyingServer(RESET) as lying:
            async with Client([(LOOPBACK, lying.port)], timeout=0.5) as client:
                for n in range(500):  # found in many datagrams, as the circuit goes
                    client.channel(f"LIE:{n}")
                with pytest.raises(asyncio.TimeoutError):
                    await client.read(NAMES[0], timeout=2.5)
                causes = client.misbehaviour.causes()
                assert causes and all(c.startswith(f"server {LOOPBACK}:{lying.port}: ")
                                      for c in causes)
                assert lying.connections <= 30  # 2.5 s of a back-off from 60 ms

    run(body())
    gc.collect()
    assert _flooded(caplog) == []
    assert len(_lines(caplog, "shark.peers.client")) <= 2 * len(Kind)


def test_client_finding_a_channel_on_a_circuit_being_lost_searches_again(caplog):
    """A search reply that comes as the circuit's connection is lost (before its task
    has seen it) attaches the channel without writing: it is searched for again."""
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with LyingServer(BAD_NATIVE_TYPE) as lying:
            async with Client([(LOOPBACK, lying.port)], timeout=3) as client:
                with pytest.raises(ServerError):
                    await client.connect(NAMES[0])
                circuit = client._circuits[LOOPBACK, lying.port]
                assert circuit.ready
                circuit._writer.transport.abort()  # lost; its task does not know yet
                late = client.channel(NAMES[1])
                client._found(m.SearchResponse(port=lying.port, ip=ADDRESS_OF_SENDER,
                                               cid=late.cid, version=MINOR_VERSION),
                              (LOOPBACK, lying.port))
                assert late.circuit is circuit
                with pytest.raises(ServerError):  # found again, on a new circuit
                    await asyncio.wait_for(late.wait_connected(), 3)
                assert lying.connections == 2

    run(body())
    gc.collect()
    assert _flooded(caplog) == []


def test_server_tells_a_client_breaking_the_protocol_on_every_connection_once(caplog):
    """One line for a host however many connections it breaks the protocol on, and
    the count as the server stops."""
    caplog.set_level(logging.DEBUG, logger="shark.peers.server")
    connections = 50

    async def body() -> None:
        async with Server([PV("ONE", DBRType.LONG, 1)], port=0, beacon_address=None) as server:
            bad = m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=999, ioid=1)
            for _ in range(connections):
                reader, writer = await asyncio.open_connection(LOOPBACK, server.tcp_port)
                writer.write(m.VersionRequest().to_bytes() + bad.to_bytes())
                framer, said = StreamFramer(Role.SERVER), []
                while not any(isinstance(x, m.ErrorResponse) for x in said):
                    said += framer.feed(await asyncio.wait_for(reader.read(4096), 3))
                writer.close()  # the server keeps the circuit: the request alone was bad
            assert server.misbehaviour.count(f"client {LOOPBACK}", Kind.REFUSED) == connections
            assert len(_lines(caplog, "shark.peers.server")) == 1

    run(body())
    lines = _lines(caplog, "shark.peers.server")
    assert len(lines) == 2 and lines[1].endswith(f"({connections} requests)")


@pytest.mark.parametrize("pause", [0.0, 0.01, 0.2])
def test_server_stays_quiet_and_up_after_a_client_with_many_subscriptions_resets(
        caplog, pause):
    """20,000 subscriptions, their updates on the way (and more posted after it left):
    no line per update, the server serves the next client."""
    caplog.set_level(logging.DEBUG)
    many = 20_000

    async def body() -> None:
        pvs = [PV("MANY:WAVE", DBRType.DOUBLE, [0.0] * 1000), PV("MANY:ONE", DBRType.LONG, 7)]
        async with Server(pvs, port=0, beacon_address=None) as server:
            await subscribe_many_and_reset(server.tcp_port, "MANY:WAVE", DBRType.DOUBLE, 1000,
                                           many, pause)
            for n in range(10):
                server.set("MANY:WAVE", [float(n)] * 1000)
                await asyncio.sleep(0.02)
            assert await until_no_circuits(server) == 0
            assert server._watches == {}
            async with Client([(LOOPBACK, server.udp_port)], timeout=3) as client:
                assert (await client.read("MANY:ONE")).value == 7

    run(body(), timeout=60)
    gc.collect()
    assert _flooded(caplog) == []
    assert len(_lines(caplog, "shark.peers.server")) <= 4
