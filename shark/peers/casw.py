"""Beacons watched live, as EPICS base's ``casw`` watches them: what ``shark casw`` runs.

A :class:`BeaconWatcher` hears the beacons of the servers around and has each judged by
:class:`decoder.beacons.BeaconJudge`, the judge ``shark stats`` and the TUI ask too, so
that a live watch and a capture's report say the same of the same beacons: a ``new
server``, a ``restart`` (beacon ids counting from 0 again, then a ``period short``), a
``period long`` (beacons missing, then back: connectivity restored), ``ids jumped``.

Where the beacons come from, as for ``casw``:

* from the CA repeater (the default): the watcher registers with it from an ephemeral
  UDP port (REPEATER_REGISTER), repeats the registration every second until the repeater
  confirms (REPEATER_CONFIRM), and again every :data:`RENEW_PERIOD` seconds after that,
  so that a repeater started late, or restarted, takes it back; what it forwards are
  copies of the servers' beacons;
* or bound directly to the beacon port (``listen``), for a host where no repeater runs
  (the port is then the watcher's alone).

:func:`lines` writes what was seen as ``casw`` does: one line per anomaly (per beacon
at interest level 2), ``*`` marking anomalies, the server padded to 40 characters, the
time to the nanosecond; shark adds what the anomaly is, and at level 1 and above the
period estimate and the period the beacon ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from decoder import messages as m
from decoder.beacons import BeaconAnomaly, BeaconJudge, BeaconServer
from decoder.errors import DecodeError
from decoder.framing import split_datagram
from decoder.protocol import Role
from shark.errors import SharkError
from shark.peers.service import Service

__all__ = ["BeaconWatcher", "RENEW_PERIOD", "Sighting", "WatchError", "lines"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
#: Seconds between registrations until the repeater confirms one (libca's interval).
RETRY_PERIOD = 1.0
#: Seconds between registrations once confirmed: a repeater restarted in between has
#: forgotten its clients.
RENEW_PERIOD = 30.0


class WatchError(SharkError, OSError):
    """The watcher cannot listen where it was told to."""


class Source(enum.Enum):
    """Where the watcher hears beacons."""

    REPEATER = "repeater"
    DIRECT = "direct"


@dataclass
class Sighting:
    """One beacon heard: its server as judged, when, and the anomalies it shows."""

    time: float
    server: BeaconServer
    beacon_id: int
    anomalies: list[BeaconAnomaly] = field(default_factory=list)


class BeaconWatcher(Service):
    """Hears beacons (from the repeater at ``repeater``, or bound to ``listen``) and
    calls ``seen(sighting)`` for each, on the loop. The judge's ``begin`` (libca's
    program start, for the ``new server`` rule) is when :meth:`start` is called; a
    confirmed registration is renewed every ``renew_period`` seconds."""

    def __init__(self, seen: Callable[[Sighting], object], *,
                 repeater: Address | None = ("127.0.0.1", 5065), listen: Address | None = None,
                 bind_host: str = "127.0.0.1", renew_period: float = RENEW_PERIOD,
                 clock: Callable[[], float] = time.time) -> None:
        if (repeater is None) == (listen is None):
            raise ValueError("either a repeater or an address to listen on")
        self.seen = seen
        self.repeater = repeater
        self.listen = listen
        self.bind_host = bind_host
        self.renew_period = renew_period
        self.clock = clock
        self.source = Source.REPEATER if repeater is not None else Source.DIRECT
        self.judge = BeaconJudge()
        #: When the repeater last confirmed a registration (None: never yet).
        self.confirmed: float | None = None
        self.registrations = 0
        self.beacons = 0
        self.undecodable = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._register_task: asyncio.Task | None = None

    @property
    def address(self) -> Address:
        """Where the watcher's socket is bound."""
        assert self._transport is not None
        return self._transport.get_extra_info("sockname")[:2]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        local = self.listen if self.listen is not None else (self.bind_host, 0)
        try:
            self._transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=local)
        except OSError as error:
            where = f"{local[0]}:{local[1]}"
            hint = " (a CA repeater holds it? watch through it instead)" if self.listen else ""
            raise WatchError(f"cannot listen on UDP {where}: {error.strerror or error}"
                             f"{hint}") from None
        self.judge.begin = self.clock()
        if self.repeater is not None:
            self._register_task = asyncio.create_task(self._register_loop())

    async def stop(self) -> None:
        if self._register_task is not None:
            self._register_task.cancel()
            await asyncio.gather(self._register_task, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()

    async def _register_loop(self) -> None:
        assert self._transport is not None and self.repeater is not None
        host = self.address[0]
        register = m.RepeaterRegisterRequest(client_address=_ipv4(host)).to_bytes()
        while True:
            self._transport.sendto(register, self.repeater)
            self.registrations += 1
            await asyncio.sleep(RETRY_PERIOD)
            since = None if self.confirmed is None else self.clock() - self.confirmed
            if since is not None and since < self.renew_period:
                await asyncio.sleep(self.renew_period - since)

    def received(self, data: bytes, source: Address) -> None:
        """Account for a datagram: a confirmation, beacons, or nothing of interest."""
        now = self.clock()
        try:
            messages = split_datagram(data, Role.SERVER)
        except DecodeError as error:
            messages = error.messages
            self.undecodable += 1
        copy = self.source is Source.REPEATER
        for message in messages:
            if isinstance(message, m.RepeaterConfirmResponse):
                if self.confirmed is None:
                    log.info("registered with the CA repeater at %s:%d", *source)
                self.confirmed = now
            elif isinstance(message, m.Beacon):
                self.beacons += 1
                server, anomalies = self.judge.see(
                    message.address, message.server_port, message.beaconid,
                    message.version, source[0], now, copy)
                self.seen(Sighting(now, server, message.beaconid, anomalies))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, watcher: BeaconWatcher) -> None:
        self.watcher = watcher

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.watcher.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # The repeater's port closed (ICMP unreachable): it is not running (yet).
        log.debug("beacon socket: %s", exc)


def _ipv4(host: str) -> int:
    with contextlib.suppress(OSError):
        return int.from_bytes(socket.inet_aton(host), "big")
    return 0


def stamp(seconds: float) -> str:
    """A time as casw writes it: local, to the nanosecond."""
    whole = int(seconds)
    nanoseconds = int(round((seconds - whole) * 1e9))
    if nanoseconds >= 1_000_000_000:
        whole, nanoseconds = whole + 1, nanoseconds - 1_000_000_000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)) + f".{nanoseconds:09d}"


def lines(sighting: Sighting, interest: int = 0) -> list[str]:
    """What ``casw -i interest`` prints for a beacon (nothing for most at level 0 and 1).

    ``* server  time  kinds`` for an anomaly (``casw`` has no kinds), then at level 1
    and above a tab-indented ``estimate=E current=C`` (the period estimate the beacon
    was judged against and the period it ended, as far as the judge has them); at level
    2 every other beacon too, unmarked.
    """
    anomalies = sighting.anomalies
    if not anomalies and interest < 2:
        return []
    mark = "*" if anomalies else " "
    head = f"{mark} {sighting.server.name:<40} {stamp(sighting.time)}"
    if not anomalies:
        return [head]
    out = [f"{head} {', '.join(str(a.kind) for a in anomalies)}"]
    if interest >= 1:
        estimate = next((a.estimate for a in anomalies if a.estimate is not None),
                        sighting.server.watch.estimate)
        period = next((a.period for a in anomalies if a.period is not None), None)
        numbers = []
        if estimate is not None:
            numbers.append(f"estimate={estimate:f}")
        if period is not None:
            numbers.append(f"current={period:f}")
        if numbers:
            out.append("\t" + " ".join(numbers))
    return out
