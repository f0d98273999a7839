"""Replaying the server side: a stand-in IOC that acts out what a capture showed.

Each captured server becomes a :class:`shark.peers.server.Server` on a port of its own,
serving every PV the capture shows it served, with the native type and count its
clients were told, the metadata its GR/CTRL replies carried (defaults otherwise:
:attr:`Recording.notes` says which), and the values of its timeline. A GR/CTRL read
of a type the capture shows a reply of gets that reply's metadata as it was (an IOC
gives integer types limits of their own); any other is converted from the reply that
tells it best (:func:`shark.replay.recording._merge_metadata`: NaN limits stay NaN). The timeline is
played on the replay clock (``speed`` times the capture's): a read gets the last
value captured before the replay time (the first one, before that), and monitor
updates are posted when the capture shows them, so a subscriber gets the captured
sequence at the captured pace. Writes are accepted as the server engine accepts
them and hold until the timeline next changes the PV (a captured read of the same
value is no change).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from shark.peers.server import DEFAULT_BEACON_ADDRESS, PV, Server
from shark.replay.recording import UPDATE, RecordedPV, RecordedServer, Recording, State

__all__ = ["ReplayPV", "ReplayServer", "serve"]


class ReplayServer:
    """One captured server, served on ``host``:``port`` (0: any free port), its
    timeline played ``speed`` times as fast as captured, over and over with ``loop``.
    ``duration`` is the length of one pass (the capture's, by default)."""

    def __init__(
        self,
        recorded: RecordedServer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        loop: bool = False,
        duration: float = 0.0,
        beacon_address: tuple[str, int] | None = DEFAULT_BEACON_ADDRESS,
    ) -> None:
        if speed <= 0:
            raise ValueError("a server's timeline needs a speed above 0")
        self.recorded = recorded
        self.speed = speed
        self.loop = loop
        self.duration = duration
        timelines = {pv.name: pv.states() for pv in recorded.pvs.values()}
        #: The states of each PV served (those with a value captured), in time order.
        self.timelines = {name: states for name, states in timelines.items() if states}
        self.server = Server(
            [_pv(recorded.pvs[name], states[0]) for name, states in self.timelines.items()],
            host=host, port=port, beacon_address=beacon_address)
        self._player: asyncio.Task | None = None
        #: Set when a pass of the timeline has been played to its end.
        self.played = asyncio.Event()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, play: bool = True) -> None:
        """Serve; with ``play`` (the default), start the timeline at once too."""
        await self.server.start()
        if play:
            self.play()

    def play(self) -> None:
        """Start the timeline (once): a caller may first let its clients connect."""
        if self._player is None:
            self._player = asyncio.create_task(self._play())

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        await self.server.stop()

    async def _play(self) -> None:
        """Apply each change at its time on the replay clock, pass after pass; a pass
        after the first starts from the first states again."""
        events = sorted(((state.time, name, state) for name, states in self.timelines.items()
                         for state in _changes(states)), key=lambda event: event[0])
        end = max([self.duration, *(when for when, _, _ in events)])
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            if self.played.is_set():
                for name, states in self.timelines.items():
                    self._apply(name, states[0])
            for when, name, state in events:
                await asyncio.sleep(max(0.0, start + when / self.speed - loop.time()))
                self._apply(name, state)
            self.played.set()
            if not self.loop or end <= 0:
                return
            await asyncio.sleep(max(0.0, start + end / self.speed - loop.time()))

    def _apply(self, name: str, state: State) -> None:
        if name not in self.server.pvs:  # removed through the API
            return
        self.server.set(name, state.values, status=state.status, severity=state.severity,
                        stamp=state.stamp, force=state.kind == UPDATE)


def _changes(states: list[State]) -> list[State]:
    """The states that change something: a value or alarm other than the one before,
    or a monitor update (posted again even when the same). A read that finds what
    was there before is no event, and must not undo a replay client's write."""
    return [after for before, after in pairwise(states)
            if after.kind == UPDATE or (after.values, after.status, after.severity)
            != (before.values, before.status, before.severity)]


class ReplayPV(PV):
    """A PV whose GR/CTRL reads give, type by type, what the capture showed for that
    type (``captured``: the fields by DBR type), and otherwise convert its metadata."""

    def __init__(self, *args: Any, captured: Mapping[int, Mapping[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.captured = {int(data_type): dict(fields)
                         for data_type, fields in (captured or {}).items()}

    def metadata_for(self, data_type: int) -> dict[str, Any]:
        metadata = self.metadata()
        metadata.update(self.captured.get(data_type, {}))
        return metadata


def _pv(recorded: RecordedPV, first: State) -> PV:
    """The server's PV, holding its first captured state."""
    assert recorded.native_type is not None
    return ReplayPV(recorded.name, recorded.native_type, first.values,
                    count=recorded.native_count, status=first.status or 0,
                    severity=first.severity or 0, stamp=first.stamp,
                    writable=recorded.writable, captured=recorded.metadata_by_type,
                    **recorded.metadata)


def serve(recording: Recording, ports: Sequence[int] = (), *, host: str = "127.0.0.1",
          speed: float = 1.0, loop: bool = False,
          beacon_address: tuple[str, int] | None = DEFAULT_BEACON_ADDRESS,
          ) -> list[ReplayServer]:
    """A replay server per captured server (in address order) that has PVs to serve:
    the first on ``ports[0]``, and so on; any free port for those beyond ``ports``."""
    recorded = [server for _, server in sorted(recording.servers.items())
                if any(pv.servable for pv in server.pvs.values())]
    return [ReplayServer(server, host=host, port=ports[i] if i < len(ports) else 0,
                         speed=speed, loop=loop, duration=recording.duration,
                         beacon_address=beacon_address)
            for i, server in enumerate(recorded)]
