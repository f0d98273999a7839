"""A CA repeater: libca clients on this host register with it, it forwards them beacons.

Several CA clients on one host cannot all bind the UDP port servers beacon to (and the
kernel would hand a unicast datagram to only one of them), so EPICS has the repeater:
the one process on a host that binds port 5065 (``EPICS_CA_REPEATER_PORT``) and fans
what arrives there out to every client that registered. This is the same service as
EPICS base's ``caRepeater``, on the decoder's messages, in two parts:

* :class:`RepeaterCore`, sans-I/O: who is registered, what to answer and forward. A
  datagram in, the datagrams to send out (:class:`Outcome`). What needs the kernel
  (is an address one of this host's, does a client still hold its port) comes in as two
  predicates, so that tests decide them;
* :class:`Repeater`, the asyncio UDP socket around it, with the real predicates.

What it does, as ``caRepeater`` does:

* a datagram that is empty, or whose first message is REPEATER_REGISTER, registers its
  sender, if the sender is on this host (loopback, or an address a socket can bind);
  clients are known by their UDP port. The sender gets REPEATER_CONFIRM carrying its
  own address, and every other client a VERSION no-op. The register message is then
  stripped and what follows it, if anything, forwarded;
* every other datagram goes to every client but its sender, a beacon whose address is 0
  given the address it came from (so that a client knows the server, not the repeater);
* a client is dropped when its port is free again (a bind of it succeeds): checked for
  all clients when a new one registers, and periodically by :class:`Repeater`.

Where it differs, on purpose: the list of clients has a bound (:data:`MAX_CLIENTS`);
datagrams that are not CA messages (short, or whose headers do not frame them) are not
forwarded but counted, each source host's first one logged (a client could make nothing
of them, and the repeater would be an amplifier of junk); it speaks IPv4 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from decoder import messages as m
from decoder.errors import DecodeError
from decoder.framing import split_datagram
from decoder.protocol import HEADER_SIZE, REPEATER_PORT, Command, Role
from shark.errors import SharkError
from shark.peers.environment import PortError, environment_port

__all__ = [
    "MAX_CLIENTS", "Client", "Outcome", "Registration", "Repeater", "RepeaterCore",
    "RepeaterError", "Stats", "port_from_environment",
]

log = logging.getLogger(__name__)

#: An IPv4 socket address, as asyncio gives and takes them.
Address = tuple[str, int]
#: How many clients the repeater keeps: a host has a few dozen CA clients, rarely more,
#: and each newcomer has every client checked (a bind each).
MAX_CLIENTS = 1024
#: How many source hosts' first undecodable datagram are logged (the rest only counted).
MAX_TOLD_HOSTS = 256
_REGISTER = int(Command.REPEATER_REGISTER).to_bytes(2, "big")
#: The no-op the other clients get when one registers (all-zero header: VERSION).
NOOP = bytes(HEADER_SIZE)


class Registration(enum.Enum):
    """What became of a registration."""

    NEW = "registered"
    RENEWED = "registered again"
    NOT_LOCAL = "refused: not an address of this host"
    FULL = "refused: the list of clients is full"


@dataclass
class Client:
    """A registered client: where it listens, since when, and what it was sent."""

    address: Address
    since: float
    datagrams: int = 0
    beacons: int = 0

    def __str__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


@dataclass
class Outcome:
    """What one datagram caused: the datagrams to send, and what to tell of it."""

    sends: list[tuple[bytes, Address]] = field(default_factory=list)
    registration: Registration | None = None
    #: Clients the datagram (after any registration) was forwarded to.
    forwarded: int = 0
    #: Beacons in what was forwarded.
    beacons: int = 0
    #: Why the datagram was not forwarded, when it was not CA.
    undecodable: str | None = None
    #: Clients found gone while handling it.
    dropped: list[Client] = field(default_factory=list)


@dataclass
class Stats:
    """Running totals, for the command's lines."""

    registrations: int = 0
    refused: int = 0
    datagrams: int = 0
    beacons: int = 0
    sent: int = 0
    undecodable: int = 0
    dropped: int = 0


def on_loopback(host: str) -> bool:
    """The default idea of "this host" for the core: loopback addresses only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RepeaterCore:
    """Registered clients and the fan-out, without sockets.

    ``local(host)`` says whether ``host`` is an address of this host (only local
    clients may register); ``alive(address)`` whether a client still holds its port.
    """

    def __init__(self, *, local: Callable[[str], bool] = on_loopback,
                 alive: Callable[[Address], bool] = lambda address: True,
                 max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.time
                 ) -> None:
        self.local = local
        self.alive = alive
        self.max_clients = max_clients
        self.clock = clock
        self.stats = Stats()
        #: Clients by port: they are all on this host, which may reach them by any of
        #: its addresses (old clients alternated loopback and an interface's).
        self._clients: dict[int, Client] = {}

    @property
    def clients(self) -> list[Client]:
        return list(self._clients.values())

    def datagram(self, data: bytes, source: Address) -> Outcome:
        """Handle what arrived from ``source``; never raises for its content."""
        outcome = Outcome()
        if not data:
            self._register(source, outcome)
            return outcome
        if len(data) >= HEADER_SIZE and data[:2] == _REGISTER:
            self._register(source, outcome)
            data = data[HEADER_SIZE:]
            if not data:
                return outcome
        try:
            found = split_datagram(data, Role.SERVER)
        except DecodeError as error:
            outcome.undecodable = str(error)
            self.stats.undecodable += 1
            return outcome
        data, beacons = _with_beacon_addresses(data, found, source[0])
        self._fan_out(data, source, beacons, outcome)
        return outcome

    def verify(self) -> list[Client]:
        """Drop the clients whose port is free again; returns them."""
        gone = [client for client in self._clients.values() if not self.alive(client.address)]
        for client in gone:
            del self._clients[client.address[1]]
        self.stats.dropped += len(gone)
        return gone

    def _register(self, source: Address, outcome: Outcome) -> None:
        host, port = source
        if not self.local(host):
            outcome.registration = Registration.NOT_LOCAL
            self.stats.refused += 1
            return
        client = self._clients.get(port)
        if client is None:
            outcome.dropped = self.verify()  # as caRepeater: when a new client comes
            if len(self._clients) >= self.max_clients:
                outcome.registration = Registration.FULL
                self.stats.refused += 1
                return
            client = self._clients[port] = Client(source, self.clock())
            outcome.registration = Registration.NEW
        else:
            outcome.registration = Registration.RENEWED
        self.stats.registrations += 1
        confirm = m.RepeaterConfirmResponse(repeater_address=_ipv4(host))
        outcome.sends.append((confirm.to_bytes(), source))
        # The others hear a no-op, as from caRepeater (whose failed sends find clients
        # that left while no beacons flow; here the bind test does: kept to behave alike).
        outcome.sends.extend((NOOP, other.address) for other in self._clients.values()
                             if other.address != source)

    def _fan_out(self, data: bytes, source: Address, beacons: int, outcome: Outcome) -> None:
        for client in self._clients.values():
            if client.address == source:  # never back to its sender
                continue
            outcome.sends.append((data, client.address))
            outcome.forwarded += 1
            client.datagrams += 1
            client.beacons += beacons
        outcome.beacons = beacons
        self.stats.datagrams += 1
        self.stats.beacons += beacons
        self.stats.sent += outcome.forwarded


def _with_beacon_addresses(data: bytes, found: list[m.Message], host: str) -> tuple[bytes, int]:
    """The datagram with each beacon's address 0 replaced by its sender's, and how many
    beacons it holds (a client takes an address of 0 as the datagram's source: the
    repeater's, once forwarded)."""
    beacons = [message for message in found if isinstance(message, m.Beacon)]
    blank = [beacon for beacon in beacons if beacon.address == 0]
    if not blank:
        return data, len(beacons)
    address = _ipv4(host)
    for beacon in blank:
        beacon.address = address
    return b"".join(message.to_bytes() for message in found), len(beacons)


def _ipv4(host: str) -> int:
    """An IPv4 address as the 32-bit number CA headers carry (0 when it is not one)."""
    try:
        return int.from_bytes(socket.inet_aton(host), "big")
    except OSError:
        return 0


# ------------------------------------------------------------------------ the socket part


class RepeaterError(SharkError, OSError):
    """The repeater cannot listen where it was told to."""


def port_from_environment(environ: Mapping[str, str] | None = None) -> int:
    """``EPICS_CA_REPEATER_PORT``, else 5065, read as every EPICS port variable is
    (:func:`shark.peers.environment.environment_port`); a bad one is a
    :class:`RepeaterError` (the repeater cannot know where to listen)."""
    try:
        return environment_port("EPICS_CA_REPEATER_PORT", REPEATER_PORT, environ)
    except PortError as exc:
        raise RepeaterError(str(exc)) from None


def holds_port(address: Address) -> bool:
    """Whether a client still holds its UDP port: a bind of it must fail as taken.
    Any other failure counts as held (better a client kept than one lost)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("", address[1]))
        except OSError:
            return True
    return False


def is_local(host: str) -> bool:
    """Whether ``host`` is an address of this host: loopback, or one a socket can bind."""
    if on_loopback(host):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


class Repeater:
    """The repeater on a UDP socket: ``async with Repeater(host, port) as repeater:``.

    Binds ``host`` (all addresses by default, as caRepeater) and ``port`` (by default
    ``EPICS_CA_REPEATER_PORT``, else 5065; 0 for any free one: see :attr:`address`),
    without SO_REUSEADDR, so that a second repeater, or libca's test for one, finds the
    port taken. Clients that left are dropped every ``verify_period`` seconds besides
    when a new one comes.
    """

    def __init__(self, host: str = "0.0.0.0", port: int | None = None, *,
                 verify_period: float = 30.0, max_clients: int = MAX_CLIENTS) -> None:
        self.host = host
        self.port = port_from_environment() if port is None else port
        self.verify_period = verify_period
        self.core = RepeaterCore(local=is_local, alive=holds_port, max_clients=max_clients)
        self._transport: asyncio.DatagramTransport | None = None
        self._verifier: asyncio.Task[None] | None = None
        self._told: set[tuple[str, str]] = set()

    @property
    def address(self) -> Address:
        """Where it listens (the port chosen when it was asked for 0)."""
        if self._transport is None:
            return self.host, self.port
        return self._transport.get_extra_info("sockname")[:2]

    @property
    def stats(self) -> Stats:
        return self.core.stats

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise RepeaterError(
                    f"cannot listen on {self.host}:{self.port}: the port is taken (is "
                    "another CA repeater, such as caRepeater, running?)") from exc
            raise RepeaterError(f"cannot listen on {self.host}:{self.port}: "
                                f"{exc.strerror or exc}") from exc
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), sock=sock)
        self._verifier = asyncio.create_task(self._verify_loop())

    async def close(self) -> None:
        if self._verifier is not None:
            self._verifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._verifier
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> Repeater:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def received(self, data: bytes, source: Address) -> None:
        """One datagram: handled by the core, its answers sent, what matters logged."""
        try:
            outcome = self.core.datagram(data, source)
        except Exception:  # a bug of ours: the repeater must go on for the other clients
            log.exception("datagram from %s:%d not handled", *source)
            return
        if self._transport is not None:
            for payload, destination in outcome.sends:
                self._transport.sendto(payload, destination)
        self._tell(outcome, source)

    def _tell(self, outcome: Outcome, source: Address) -> None:
        where = f"{source[0]}:{source[1]}"
        for client in outcome.dropped:
            log.info("client %s gone (%d clients)", client, len(self.core.clients))
        if outcome.registration in (Registration.NEW, Registration.RENEWED):
            level = logging.INFO if outcome.registration is Registration.NEW else logging.DEBUG
            log.log(level, "client %s %s (%d clients)", where, outcome.registration.value,
                    len(self.core.clients))
        elif outcome.registration is not None:
            self._once(source[0], outcome.registration.name,
                       f"registration from {where} {outcome.registration.value}")
        if outcome.undecodable is not None:
            self._once(source[0], "undecodable",
                       f"not forwarded, not CA: datagram from {where}: {outcome.undecodable}")
        elif outcome.forwarded:
            log.debug("datagram from %s (%d beacons) forwarded to %d clients", where,
                      outcome.beacons, outcome.forwarded)

    def _once(self, host: str, kind: str, text: str) -> None:
        """Log the first of a kind from a host (of a bounded number of hosts)."""
        if (host, kind) in self._told or len(self._told) >= MAX_TOLD_HOSTS:
            log.debug("%s", text)
            return
        self._told.add((host, kind))
        log.warning("%s (the next ones from %s are only counted)", text, host)

    async def _verify_loop(self) -> None:
        while True:
            await asyncio.sleep(self.verify_period)
            for client in self.core.verify():
                log.info("client %s gone (%d clients)", client, len(self.core.clients))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, repeater: Repeater) -> None:
        self.repeater = repeater

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.repeater.received(data, addr[:2])

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier send (a client that just left): verify finds it.
        log.debug("UDP error: %s", exc)
