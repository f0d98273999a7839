"""Whose fault a protocol breach is, as our client and server see it, and the one
root of shark's errors."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from engine_peers import LOOPBACK, engine_pvs, run

from decoder import ECA, DecoderError, LocalProtocolError, Role, StreamFramer
from decoder import messages as m
from decoder.dbr import DBRType
from shark.analysis.filters import FilterError
from shark.capture.files import CaptureError
from shark.capture.live import CapturePermissionError, LiveCaptureError
from shark.errors import SharkError
from shark.peers.client import CAError, Client
from shark.peers.convert import ConversionError
from shark.peers.server import Server, _ServerCircuit


def test_shark_errors_have_one_root_and_keep_their_bases():
    for error in (CaptureError, LiveCaptureError, CapturePermissionError, ConversionError,
                  FilterError, CAError):
        assert issubclass(error, SharkError)
        assert not issubclass(error, DecoderError)
    assert issubclass(CapturePermissionError, PermissionError)
    assert issubclass(LiveCaptureError, OSError)
    assert issubclass(ConversionError, ValueError) and issubclass(FilterError, ValueError)


async def _engines(body):
    async with Server(engine_pvs(), port=0, beacon_address=None) as server:
        async with Client([(LOOPBACK, server.udp_port)], timeout=3) as client:
            return await body(server, client)


def test_client_raises_its_own_breach_to_the_caller_and_keeps_the_circuit():
    async def body(server: Server, client: Client) -> None:
        first = client.subscribe("ENG:COUNTER")
        assert (await anext(first)).value == 0
        circuit = client.channel("ENG:COUNTER").circuit
        client._ids = itertools.repeat(first.subscriptionid)  # a bug: ids reused
        with pytest.raises(LocalProtocolError, match="duplicate subscription id"):
            client.subscribe("ENG:COUNTER")
        # Nothing was sent: the circuit, the subscription and reads go on.
        server.set("ENG:COUNTER", 1)
        assert (await asyncio.wait_for(anext(first), 3)).value == 1
        assert (await client.read("ENG:COUNTER")).value == 1
        assert client.channel("ENG:COUNTER").circuit is circuit
        assert client.channel("ENG:COUNTER").sid == circuit.state.channel_for_cid(
            client.channel("ENG:COUNTER").cid).sid

    run(_engines(body))


def test_client_drops_the_circuit_of_a_server_that_breaks_the_protocol():
    async def body(server: Server, client: Client) -> None:
        assert (await client.read("ENG:COUNTER")).value == 0
        circuit = client.channel("ENG:COUNTER").circuit
        # The server sends an update of a subscription nobody made.
        (served,) = server._circuits
        served.writer.write(m.EventAddResponse(data_type=DBRType.LONG, status=1,
                                               subscriptionid=4242, data=[1]).to_bytes())
        await asyncio.wait_for(circuit.task, 3)
        assert circuit._failed
        # The channel is searched for again, on a new circuit.
        assert (await client.read("ENG:COUNTER", timeout=5)).value == 0
        assert client.channel("ENG:COUNTER").circuit is not circuit

    run(_engines(body))


async def _raw(port: int, *messages: m.Message | bytes) -> list[m.Message]:
    """Send ``messages`` on a new circuit; what the server says until it closes."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(b"".join(x if isinstance(x, bytes) else x.to_bytes() for x in messages))
    try:
        data = await asyncio.wait_for(reader.read(), 3)
    finally:
        writer.transport.abort()
    return StreamFramer(Role.SERVER).feed(data)


def test_server_answers_a_client_breach_with_an_error_and_closes_what_it_cannot_frame():
    """A request naming a channel never created is refused and the circuit goes on; a
    header claiming more than can be framed ends it."""
    async def body(server: Server, client: Client) -> None:
        bad = m.ReadNotifyRequest(data_type=DBRType.LONG, data_count=1, sid=999, ioid=1)
        huge = m.WriteRequest(data_type=DBRType.DOUBLE, data_count=1, sid=1, extended=True)
        said = await _raw(server.tcp_port, m.VersionRequest(), bad, m.EchoRequest(),
                          huge.header_bytes(1 << 30))
        assert [type(x) for x in said] == [m.VersionResponse, m.ErrorResponse,
                                           m.EchoResponse, m.ErrorResponse]
        error = said[1]
        assert (error.cid, error.status) == (0xFFFFFFFF, ECA.ECA_BADCHID)
        assert "unknown SID" in error.error_message
        assert said[3].status == ECA.ECA_TOLARGE

    run(_engines(body))


def test_server_closes_cleanly_on_its_own_breach(monkeypatch, caplog):
    """A bug of ours (an answer to a request never made) is logged once and ends that
    circuit; run() returns, other clients go on."""
    def broken_echo(self, request, _):
        self._send(m.ReadNotifyResponse(data_type=DBRType.LONG, status=1, ioid=999,
                                        data=[0]))

    async def body(server: Server, client: Client) -> None:
        monkeypatch.setattr(_ServerCircuit, "_echo", broken_echo)
        with caplog.at_level(logging.ERROR, logger="shark.peers.server"):
            said = await _raw(server.tcp_port, m.VersionRequest(), m.EchoRequest(),
                              m.EchoRequest())
        assert [type(x) for x in said] == [m.VersionResponse]  # nothing broken was sent
        breaches = [r for r in caplog.records if "broke the protocol" in r.getMessage()]
        assert len(breaches) == 1 and "response without request" in breaches[0].getMessage()
        for _ in range(50):
            if server.circuit_count == 0:
                break
            await asyncio.sleep(0.05)
        assert server.circuit_count == 0
        assert (await client.read("ENG:COUNTER")).value == 0

    run(_engines(body))
