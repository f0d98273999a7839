"""Serving declared PVs: an :class:`Ioc` built from IOC files and PV groups, on
:class:`shark.peers.server.Server`, with their periodic updates.

Where it listens follows the EPICS server variables, as an IOC does, with loopback where
they say nothing: the first address of ``EPICS_CAS_INTF_ADDR_LIST`` (default 127.0.0.1),
the port ``EPICS_CAS_SERVER_PORT`` or ``EPICS_CA_SERVER_PORT`` (default 5064), beacons to
the first address of ``EPICS_CAS_BEACON_ADDR_LIST`` (default 127.0.0.1) on
``EPICS_CAS_BEACON_PORT`` or ``EPICS_CA_REPEATER_PORT`` (default 5065). Arguments given
explicitly win.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from decoder.protocol import REPEATER_PORT, SERVER_PORT
from shark.errors import SharkError
from shark.ioc.group import PVGroup
from shark.ioc.pv import IocPV
from shark.ioc.scan import Scan, run_scan
from shark.ioc.spec import IocSpec
from shark.peers.environment import PortError, port_number
from shark.peers.server import Server
from shark.peers.service import Service

__all__ = ["Ioc", "Placement", "ServeError", "run", "serve"]

LOOPBACK = "127.0.0.1"
#: What an :class:`Ioc` serves: IOC files (loaded), PV groups.
Source = IocSpec | PVGroup


class ServeError(SharkError):
    """An IOC that cannot be served: names declared twice, a bad address setting."""


@dataclass(frozen=True)
class Placement:
    """Where the server listens and where its beacons go."""

    host: str = LOOPBACK
    port: int = SERVER_PORT
    beacon_address: tuple[str, int] | None = (LOOPBACK, REPEATER_PORT)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Placement:
        """The placement the EPICS server variables of ``env`` (default: this process's)
        give. Raises ServeError for a port that is no number."""
        env = os.environ if env is None else env
        host = _first(env.get("EPICS_CAS_INTF_ADDR_LIST")) or LOOPBACK
        port = _port(env, "EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT", SERVER_PORT)
        beacon_host = _first(env.get("EPICS_CAS_BEACON_ADDR_LIST")) or LOOPBACK
        beacon_port = _port(env, "EPICS_CAS_BEACON_PORT", "EPICS_CA_REPEATER_PORT",
                            REPEATER_PORT)
        return cls(host, port, (beacon_host.partition(":")[0], beacon_port))


def _first(addresses: str | None) -> str:
    return (addresses or "").split()[0] if (addresses or "").split() else ""


def _port(env: Mapping[str, str], name: str, fallback: str, default: int) -> int:
    """The port ``name`` gives, else ``fallback``, else ``default``: read as the peers
    and the CA tools read theirs (:mod:`shark.peers.environment`), in the same words."""
    for variable in (name, fallback):
        text = env.get(variable, "")
        if text.strip():
            try:
                return port_number(text, variable)
            except PortError as error:
                raise ServeError(str(error)) from None
    return default


class Ioc(Service):
    """The PVs of ``sources`` (IOC files, PV groups) served by one
    :class:`~shark.peers.server.Server`, their scans running while it runs.

    ``host``, ``port`` and ``beacon_address`` default to the :class:`Placement` of the
    environment; ``port=0`` takes free ports (known after :meth:`start` as
    ``server.udp_port`` and ``server.tcp_port``); ``beacons=False`` sends none. ``clock``
    is what scans measure time with. Raises ServeError when two sources declare the
    same name."""

    def __init__(
        self,
        *sources: Source,
        host: str | None = None,
        port: int | None = None,
        beacon_address: tuple[str, int] | None = None,
        beacons: bool = True,
        beacon_period: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        place = Placement.from_environment()
        self.groups = [source for source in sources if isinstance(source, PVGroup)]
        pvs: list[IocPV] = []
        self.scans: list[Scan] = []
        for source in sources:
            if isinstance(source, PVGroup):
                pvs += source.pvs
                self.scans += source.scans()
            else:
                built = source.build()
                pvs += built
                self.scans += [Scan(pv.name, spec.scan.period, spec.scan.stepper(pv))
                               for spec, pv in zip(source.pvs, built, strict=True)
                               if spec.scan is not None]
        names = [pv.name for pv in pvs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ServeError(f"declared more than once: {', '.join(twice)}")
        self.server = Server(pvs, host=host or place.host,
                             port=place.port if port is None else port,
                             beacon_address=(beacon_address or place.beacon_address)
                             if beacons else None,
                             beacon_period=beacon_period)
        self.clock = clock
        self._tasks: list[asyncio.Task] = []

    @property
    def pvs(self) -> dict[str, IocPV]:
        """The served PVs by name."""
        return self.server.pvs  # type: ignore[return-value]

    async def start(self) -> None:
        """Listen, and start the scans."""
        await self.server.start()
        for group in self.groups:
            group.server = self.server
        origin = self.clock()
        self._tasks = [asyncio.create_task(run_scan(self.server, scan, clock=self.clock,
                                                    origin=origin))
                       for scan in self.scans]

    async def stop(self) -> None:
        """Stop the scans, then the server."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for group in self.groups:
            group.server = None
        await self.server.stop()

    def describe(self) -> str:
        """One line: how many PVs, where."""
        server = self.server
        return (f"serving {len(server.pvs)} PVs on {server.host}:{server.tcp_port} "
                f"(searches on UDP port {server.udp_port})")


async def serve(ioc: Ioc, ready: Callable[[Ioc], None] | None = None) -> None:
    """Run ``ioc`` until SIGINT or SIGTERM (or cancellation); ``ready(ioc)`` once it
    listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    try:
        async with ioc:
            if ready is not None:
                ready(ioc)
            await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def run(*sources: Source | Iterable[Source], **options: object) -> None:
    """Serve ``sources`` (PV groups, loaded IOC files) until interrupted, saying where on
    stdout; ``options`` are :class:`Ioc`'s. The Python form's one call."""
    flat: list[Source] = []
    for source in sources:
        flat += [source] if isinstance(source, (PVGroup, IocSpec)) else list(source)
    ioc = Ioc(*flat, **options)  # type: ignore[arg-type]
    asyncio.run(serve(ioc, lambda ioc: print(ioc.describe(), file=sys.stdout, flush=True)))
