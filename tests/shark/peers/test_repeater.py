"""The CA repeater: its sans-I/O core (who is registered, what is answered and forwarded),
the socket around it with fake clients and a beaconing server on 127.0.0.1, the command
line, and libca through it: pyepics and a softioc across an IOC restart, in a private
network namespace (the scenario is ``tests/helpers/repeater_peers.py``)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time

import hypothesis.strategies as st
import peers
import pyepics_sessions
import pytest
import repeater_peers
from hypothesis import given, settings

from decoder import messages as m
from decoder.framing import split_datagram
from decoder.protocol import Role
from shark.cli import main
from shark.peers.repeater import (
    NOOP,
    Registration,
    Repeater,
    RepeaterCore,
    RepeaterError,
    port_from_environment,
)
from shark.peers.server import Server

LOOPBACK = "127.0.0.1"
CLIENT_A, CLIENT_B, CLIENT_C = (LOOPBACK, 40001), (LOOPBACK, 40002), (LOOPBACK, 40003)
IOC = (LOOPBACK, 5064)
REGISTER = m.RepeaterRegisterRequest(client_address=0x7F000001).to_bytes()


def beacon(address: int = 0, beaconid: int = 7) -> bytes:
    return m.Beacon(server_port=5064, beaconid=beaconid, address=address).to_bytes()


def confirm_of(data: bytes) -> m.RepeaterConfirmResponse:
    (message,) = split_datagram(data, Role.REPEATER)
    assert isinstance(message, m.RepeaterConfirmResponse)
    return message


def registered(*clients: tuple[str, int], **options) -> RepeaterCore:
    core = RepeaterCore(**options)
    for client in clients:
        assert core.datagram(REGISTER, client).registration is Registration.NEW
    return core


# ------------------------------------------------------------------------------ the core


def test_a_register_message_registers_its_sender_who_gets_a_confirm_with_its_address():
    core = RepeaterCore()
    outcome = core.datagram(REGISTER, CLIENT_A)
    assert outcome.registration is Registration.NEW
    ((data, to),) = outcome.sends
    assert to == CLIENT_A
    assert confirm_of(data).repeater_address == 0x7F000001
    assert len(data) == 16
    assert [c.address for c in core.clients] == [CLIENT_A]
    assert core.stats.registrations == 1 and core.stats.datagrams == 0


def test_an_empty_datagram_registers_too_as_old_clients_do():
    core = RepeaterCore()
    outcome = core.datagram(b"", ("127.0.0.2", 40001))
    assert outcome.registration is Registration.NEW
    ((data, to),) = outcome.sends
    assert to == ("127.0.0.2", 40001) and confirm_of(data).repeater_address == 0x7F000002


def test_registering_again_keeps_one_client_and_confirms_again():
    core = registered(CLIENT_A)
    outcome = core.datagram(b"", CLIENT_A)
    assert outcome.registration is Registration.RENEWED
    assert [to for _, to in outcome.sends] == [CLIENT_A]
    # Known by port: the same client reaching the repeater by another address of the host.
    assert core.datagram(REGISTER, ("127.0.1.1", 40001)).registration is Registration.RENEWED
    assert len(core.clients) == 1


def test_the_others_hear_a_noop_when_a_client_registers():
    core = registered(CLIENT_A, CLIENT_B)
    outcome = core.datagram(REGISTER, CLIENT_C)
    sends = dict((to, data) for data, to in outcome.sends)
    assert set(sends) == {CLIENT_A, CLIENT_B, CLIENT_C}
    assert sends[CLIENT_A] == sends[CLIENT_B] == NOOP
    (noop,) = split_datagram(NOOP, Role.SERVER)
    assert isinstance(noop, m.VersionResponse)
    assert confirm_of(sends[CLIENT_C])


def test_a_datagram_goes_to_every_client_but_its_sender():
    core = registered(CLIENT_A, CLIENT_B, CLIENT_C)
    data = beacon(address=0x0A000005)
    outcome = core.datagram(data, IOC)
    assert outcome.sends == [(data, CLIENT_A), (data, CLIENT_B), (data, CLIENT_C)]
    assert (outcome.forwarded, outcome.beacons, outcome.registration) == (3, 1, None)
    search = m.SearchRequest(name="X", cid=1).to_bytes()
    outcome = core.datagram(search, CLIENT_B)  # anything, from anyone, not only beacons
    assert outcome.sends == [(search, CLIENT_A), (search, CLIENT_C)]
    assert outcome.beacons == 0
    assert (core.stats.datagrams, core.stats.beacons, core.stats.sent) == (2, 1, 5)
    assert [(c.datagrams, c.beacons) for c in core.clients] == [(2, 1), (1, 1), (2, 1)]


def test_a_beacon_without_address_is_given_its_sender_s():
    core = registered(CLIENT_A)
    two = beacon(beaconid=1) + beacon(address=0x0A000009, beaconid=2)
    ((data, _),) = core.datagram(two, ("10.0.0.5", 5065)).sends
    first, second = split_datagram(data, Role.SERVER)
    assert (first.address, first.beaconid) == (0x0A000005, 1)
    assert (second.address, second.beaconid) == (0x0A000009, 2)
    assert core.stats.beacons == 2


def test_a_register_message_is_stripped_and_what_follows_forwarded():
    core = registered(CLIENT_A)
    outcome = core.datagram(REGISTER + beacon(address=1), CLIENT_B)
    assert outcome.registration is Registration.NEW
    confirm, noop, forwarded = outcome.sends
    assert confirm[1] == CLIENT_B and confirm_of(confirm[0])
    assert noop == (NOOP, CLIENT_A)
    assert forwarded == (beacon(address=1), CLIENT_A)


def test_only_clients_of_this_host_may_register():
    core = RepeaterCore()  # by default: loopback addresses only
    outcome = core.datagram(REGISTER, ("10.1.2.3", 40001))
    assert outcome.registration is Registration.NOT_LOCAL and outcome.sends == []
    assert core.clients == [] and core.stats.refused == 1
    local = RepeaterCore(local=lambda host: host == "10.1.2.3")
    assert local.datagram(b"", ("10.1.2.3", 40001)).registration is Registration.NEW
    assert local.datagram(b"", ("10.1.2.4", 40002)).registration is Registration.NOT_LOCAL


def test_clients_whose_port_is_free_again_are_dropped_when_a_new_one_comes():
    bound = {CLIENT_A, CLIENT_B, CLIENT_C}
    core = registered(CLIENT_A, CLIENT_B, alive=lambda address: address in bound)
    bound.discard(CLIENT_A)
    outcome = core.datagram(b"", CLIENT_C)
    assert [c.address for c in outcome.dropped] == [CLIENT_A]
    assert [to for _, to in outcome.sends] == [CLIENT_C, CLIENT_B]  # A hears nothing now
    bound.discard(CLIENT_B)
    assert [c.address for c in core.verify()] == [CLIENT_B]
    assert [c.address for c in core.clients] == [CLIENT_C]
    assert core.stats.dropped == 2 and core.verify() == []


def test_the_list_of_clients_has_a_bound():
    bound = {CLIENT_A, CLIENT_B}
    core = registered(CLIENT_A, CLIENT_B, max_clients=2, alive=lambda a: a in bound)
    outcome = core.datagram(b"", CLIENT_C)
    assert outcome.registration is Registration.FULL and outcome.sends == []
    assert core.datagram(b"", CLIENT_A).registration is Registration.RENEWED  # known: fine
    bound.discard(CLIENT_A)  # one goes: room for the newcomer
    assert core.datagram(b"", CLIENT_C).registration is Registration.NEW
    assert [c.address for c in core.clients] == [CLIENT_B, CLIENT_C]


@pytest.mark.parametrize("data", [
    b"\x00", bytes(15), b"\x00\x0d" + bytes(13),  # shorter than a header
    beacon() + b"\x01\x02\x03",  # a beacon and junk after it
    b"\x00\x06\xff\xf0" + bytes(12),  # a header claiming a payload that is not there
    REGISTER + b"junk",  # registers, and the junk after it goes nowhere
])
def test_what_is_not_ca_is_counted_and_not_forwarded(data: bytes):
    core = registered(CLIENT_A)
    outcome = core.datagram(data, CLIENT_B)
    assert outcome.undecodable and outcome.forwarded == 0
    assert all(data == b"" or to == CLIENT_B for data, to in outcome.sends
               if data != NOOP)  # only a registration's own answers
    assert core.stats.undecodable == 1 and core.stats.datagrams == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([CLIENT_B, IOC, ("10.9.8.7", 1)]))
def test_no_datagram_makes_the_core_raise(data: bytes, source: tuple[str, int]):
    core = registered(CLIENT_A)
    outcome = core.datagram(data, source)
    for payload, to in outcome.sends:
        assert to != source or outcome.registration is not None
        assert isinstance(payload, bytes)


def test_the_port_comes_from_the_environment():
    assert port_from_environment({}) == 5065
    assert port_from_environment({"EPICS_CA_REPEATER_PORT": " 6000 "}) == 6000
    for bad in ("x", "0", "70000"):
        with pytest.raises(RepeaterError, match="EPICS_CA_REPEATER_PORT"):
            port_from_environment({"EPICS_CA_REPEATER_PORT": bad})


# --------------------------------------------------------------------- on a real socket


class FakeClient(asyncio.DatagramProtocol):
    """A client of the repeater: a UDP socket on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> FakeClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(cls, sock=sock)
        client.sock = sock
        return client

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.put_nowait(data)

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    async def next(self, timeout: float = 3.0) -> list[m.Message]:
        return split_datagram(await asyncio.wait_for(self.received.get(), timeout),
                              Role.SERVER)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)  # the transport's sendto ignores an empty datagram

    async def register(self, repeater: tuple[str, int], data: bytes = REGISTER) -> None:
        self.send(data, repeater)
        (confirm,) = await self.next()
        assert isinstance(confirm, m.RepeaterConfirmResponse)
        assert confirm.repeater_address == 0x7F000001


def test_fake_clients_register_and_get_a_server_s_beacons_until_they_leave():
    async def scenario() -> None:
        async with Repeater(LOOPBACK, 0, verify_period=0.2) as repeater:
            where = repeater.address
            a, b = await FakeClient.open(), await FakeClient.open()
            await a.register(where)
            await b.register(where, b"")
            (noop,) = await a.next()  # a heard b come
            assert isinstance(noop, m.VersionResponse)
            async with Server([], host=LOOPBACK, port=0, beacon_address=where,
                              beacon_period=0.05) as server:
                for client in (a, b):
                    beacons = [await client.next() for _ in range(3)]
                    assert [x.beaconid for (x,) in beacons] == [0, 1, 2]
                    assert {(x.server_port, x.address) for (x,) in beacons} == {
                        (server.tcp_port, 0x7F000001)}
                a.transport.close()
                await asyncio.sleep(0.4)  # the periodic verify finds a's port free
                assert [c.address for c in repeater.core.clients] == [b.address]
                b.received = asyncio.Queue()
                assert isinstance((await b.next())[0], m.Beacon)  # b goes on
            stats = repeater.stats
            assert stats.registrations == 2 and stats.dropped == 1
            assert stats.beacons >= 4 and stats.undecodable == 0
            b.send(b"\x01\x02junk", where)  # garbage: nothing breaks
            b.send(b"", where)
            assert isinstance((await b.next())[0], m.RepeaterConfirmResponse)
            assert repeater.stats.undecodable == 1
            b.transport.close()

    asyncio.run(scenario())


def test_a_second_repeater_on_the_same_port_is_a_clear_error(capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOOPBACK, 0))
        port = taken.getsockname()[1]

        async def second() -> None:
            async with Repeater(LOOPBACK, port):
                pass

        with pytest.raises(RepeaterError, match="port is taken"):
            asyncio.run(second())
        assert main(["repeater", "--host", LOOPBACK, "--port", str(port)]) == 2
    assert capsys.readouterr().err == (
        f"shark repeater: error: cannot listen on {LOOPBACK}:{port}: the port is taken "
        "(is another CA repeater, such as caRepeater, running?)\n")


def test_the_command_says_where_it_listens_logs_and_sums_up_at_the_end():
    proc = subprocess.Popen(
        [sys.executable, "-m", "shark", "repeater", "--host", LOOPBACK, "--port", "0",
         "--every", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"CA repeater on {LOOPBACK}:")
        where = (LOOPBACK, int(first.rsplit(":", 1)[1]))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ioc:
            client.settimeout(3)
            client.bind((LOOPBACK, 0))
            client.sendto(REGISTER, where)
            assert confirm_of(client.recv(100))
            ioc.sendto(beacon(), where)
            (forwarded,) = split_datagram(client.recv(100), Role.SERVER)
            assert isinstance(forwarded, m.Beacon) and forwarded.address == 0x7F000001
            port = client.getsockname()[1]
            time.sleep(0.5)  # a line of counts
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        "forwarded 1 beacons in 1 datagrams (1 sent); 1 registrations, 0 refused, "
        "0 clients gone, 0 not CA",
        f"client {LOOPBACK}:{port}: 1 beacons in 1 datagrams"]
    assert f"client {LOOPBACK}:{port} registered (1 clients)" in err
    assert "in the last 0.2 s: 1 beacons in 1 datagrams, 1 copies sent to 1 clients" in err


# --------------------------------------------------- libca through it, an IOC restarted


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The scenario of :mod:`repeater_peers`: shark's repeater on 5065, a softioc, a
    pyepics client monitoring a counter; the softioc killed and started again."""
    reason = peers.peers_missing()
    if reason:
        pytest.skip(reason)
    if peers.namespace_command() is None:
        pytest.skip("needs a private network namespace (root and unshare) of its own: "
                    "the repeater must own port 5065 there, as on a real host")
    result, done = pyepics_sessions.run_session(
        repeater_peers.SCRIPT, tmp_path_factory.mktemp("repeater"), client_timeout=45,
        timeout=90)
    assert result is not None, done
    assert not result["errors"], (result["errors"], done["stderr"])
    return result


def lines(result: dict, name: str) -> list[str]:
    return [line for _, line in result[name]["lines"]]


def client_ports(result: dict) -> set[int]:
    return set(result["udp_ports"][str(result["pids"]["client"])])


def test_shark_s_repeater_alone_holds_the_repeater_port(restart: dict):
    assert restart["ports"] == [5064, 5065]
    assert 5065 not in restart["taken_before"]
    holders = [pid for pid, ports in restart["udp_ports"].items() if 5065 in ports]
    assert holders == [str(restart["pids"]["repeater"])]
    assert lines(restart, "repeater")[0] == "CA repeater on 0.0.0.0:5065"
    assert restart["strays_stopped"] == []  # libca started no caRepeater of its own
    assert restart["repeater"]["returncode"] == 0


def test_libca_registers_with_it_and_takes_its_confirm(restart: dict):
    registered = [re.search(r"client 127\.0\.0\.1:(\d+) registered \(", line)
                  for line in lines(restart, "repeater")]
    ports = {int(match[1]) for match in registered if match}
    assert client_ports(restart) & ports
    # libca's own account: confirmed, so it stopped registering.
    assert any(re.match(r"repeater subscribe timer: attempts=\d+ registered=1", line)
               for line in lines(restart, "client"))


def test_the_client_reconnects_after_the_ioc_restarts_and_its_monitor_resumes(restart: dict):
    client = restart["client"]["lines"]
    changes = [(t, line.split()[1]) for t, line in client if line.startswith("conn ")]
    assert [state for _, state in changes] == ["1", "0", "1"]
    down, back = changes[1][0], changes[2][0]
    assert down < restart["events"]["restarted"] < restart["events"]["ioc_ready"] < back
    values = [(t, float(line.split()[1])) for t, line in client if line.startswith("value ")]
    before = [v for t, v in values if t < down]
    after = [v for t, v in values if t > back]
    assert len(before) >= 2 and len(after) >= 2
    assert after[0] < before[-1]  # a new IOC's counter, counting up again
    assert after == sorted(after)


def test_the_repeater_forwarded_the_beacons_and_libca_saw_them(restart: dict):
    repeater = lines(restart, "repeater")
    summary = [line for line in repeater if line.startswith("forwarded ")]
    assert len(summary) == 1 and summary[0].endswith(", 0 not CA")
    per_client = {int(match[1]): int(match[2]) for line in repeater
                  if (match := re.match(r"client 127\.0\.0\.1:(\d+): (\d+) beacons", line))}
    (port,) = client_ports(restart) & set(per_client)
    assert per_client[port] >= 3
    # Beacons of the restarted IOC went through after it was back.
    restarted = restart["events"]["restarted"]
    assert any(t > restarted and "(1 beacons) forwarded to" in line
               for t, line in restart["repeater"]["lines"])
    # libca estimated the server's beacon period: it had beacons, and only the
    # repeater could have given them (nothing else sends to its UDP port).
    periods = [float(match[1]) for line in lines(restart, "client")
               if (match := re.search(r"CA beacon hash entry .* period (?:estimate )?"
                                      r"([\d.]+)", line))]
    assert periods and all(0 < period < 5 for period in periods)
