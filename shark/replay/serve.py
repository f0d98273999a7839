"""Replaying the server side: a stand-in IOC that acts out what a capture showed.

Each captured server becomes a :class:`shark.peers.server.Server` on a port of its own,
serving every PV the capture shows it served, with the native type and count its
clients were told, the metadata its GR/CTRL replies carried (defaults otherwise:
:attr:`Recording.notes` says which), and the values of its timeline. A GR/CTRL read
of a type the capture shows a reply of gets that reply's metadata as it was (an IOC
gives integer types limits of their own); any other is converted from the reply that
tells it best (:func:`shark.replay.recording._merge_metadata`: NaN limits stay NaN).

The timeline: each PV holds a position on the capture's clock, which runs ``speed``
times as fast as captured (from :meth:`ReplayServer.play`, over and over with
``loop``), and the states the capture shows up to that position: monitor updates are
posted when the capture shows them, so a subscriber gets the captured sequence at
the captured pace. A client's request that matches one the capture shows (the same
kind, PV and DBR type: the next such request of the capture on that circuit) moves
its PV to the moment that request was answered, forwards (posting each change in
between) or backwards (a client that comes late, or a second time): a read gets
what the captured read got, a subscription starts where the captured one did, a
write leaves the PV as the captured write did (and fails if the captured one did),
whatever the pace of either side. A circuit acts out one captured client: the first
one not yet acted out whose first request is the circuit's (all of them again once
each has been), so that clients captured one after the other are matched in turn.
The writes of a captured client acted out are its circuit's to make: the clock waits
at each until the circuit makes it (and a PV no client writes plays on).
Why: a capture replayed against its own replay must give its own answers, or a user
cannot tell the tool's timing from a server's behaviour. A write of another value
than captured holds until the timeline next changes the PV (no request moves it
back before that), and so does a PV some client subscribes to (its updates go
forwards, as an IOC's do); requests the capture does not show move nothing.

Each client connecting and each of its requests are logged (``shark.replay.serve``:
INFO and DEBUG), so that a user sees what a client asked for and where it put the
timeline.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from decoder import ECA, EventMask
from decoder import messages as m
from decoder.dbr import dbr_name
from decoder.status import eca_name
from shark.peers.convert import ConversionError
from shark.peers.server import DEFAULT_BEACON_ADDRESS, PV, Server
from shark.replay.recording import (
    CANCEL,
    CLEAR,
    CREATE,
    INITIAL,
    READ_OP,
    SUBSCRIBE,
    UPDATE,
    WRITE,
    WRITE_NOTIFY,
    WRITE_OP,
    Operation,
    RecordedClient,
    RecordedPV,
    RecordedServer,
    Recording,
    State,
    short,
)

__all__ = ["ReplayPV", "ReplayServer", "serve"]

log = logging.getLogger(__name__)

#: A request as the capture's operations are matched by: kind, PV, DBR type.
Key = tuple[str, str, int | None]

_KINDS: dict[type[m.Message], str] = {
    m.CreateChanRequest: CREATE, m.ReadNotifyRequest: READ_OP, m.ReadRequest: READ_OP,
    m.WriteRequest: WRITE_OP, m.WriteNotifyRequest: WRITE_NOTIFY,
    m.EventAddRequest: SUBSCRIBE, m.EventCancelRequest: CANCEL, m.ClearChannelRequest: CLEAR,
}
_TYPED = frozenset({READ_OP, WRITE_OP, WRITE_NOTIFY, SUBSCRIBE, CANCEL})


@dataclass
class _Track:
    """One PV's place on the capture's clock: the state applied (``index``), and the
    capture time ``anchor`` it was at when the loop's clock read ``wall`` (None: the
    clock is not running)."""

    name: str
    states: list[State]
    #: Indices of the states that change something (:func:`_changes`), in order.
    events: list[int]
    times: list[float] = field(init=False)
    index: int = 0
    anchor: float = 0.0
    wall: float | None = None
    #: A client wrote what the capture does not show: held until the timeline changes it.
    written: bool = False
    timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.times = [state.time for state in self.states]

    def at(self, capture_time: float) -> int:
        """The index of the state the capture shows at ``capture_time``."""
        return max(0, bisect_right(self.times, capture_time) - 1)

    def next_event(self) -> int | None:
        position = bisect_right(self.events, self.index)
        return self.events[position] if position < len(self.events) else None


class ReplayServer:
    """One captured server, served on ``host``:``port`` (0: any free port), its
    timeline played ``speed`` times as fast as captured, over and over with ``loop``.
    ``duration`` is the length of one pass (the capture's, by default); ``clients``
    are the captured clients of this server, whose requests a replaying client's are
    matched with."""

    def __init__(
        self,
        recorded: RecordedServer,
        *,
        clients: Sequence[RecordedClient] = (),
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
        timelines = {pv.name: pv.states() for pv in recorded.pvs.values()}
        #: The states of each PV served (those with a value captured), in time order.
        self.timelines = {name: states for name, states in timelines.items() if states}
        #: The length of one pass of the timeline, in capture seconds.
        self.duration = max([duration, *(s[-1].time for s in self.timelines.values())])
        self.tracks = {name: _Track(name, states, _changes(states))
                       for name, states in self.timelines.items()}
        self.server = _Engine(
            self, [_pv(recorded.pvs[name], states[0]) for name, states in self.timelines.items()],
            host=host, port=port, beacon_address=beacon_address)
        #: The captured clients with requests, and each one's by kind, PV and type.
        self.clients = [client for client in clients if client.operations]
        self.scripts: list[dict[Key, list[Operation]]] = []
        for client in self.clients:
            script: dict[Key, list[Operation]] = {}
            for op in client.operations:
                script.setdefault(_op_key(op), []).append(op)
            self.scripts.append(script)
        #: Per circuit (by peer address): the captured client it acts out, and how
        #: many of its requests of each key it has made.
        self._cursors: dict[Any, tuple[int, dict[Key, int]] | None] = {}
        #: The captured clients acted out in this pass.
        self._taken: set[int] = set()
        #: Per PV, the captured writes (when sent, by which client, the operation):
        #: the clock waits at those of a client acted out until its circuit writes.
        self.barriers: dict[str, list[tuple[float, int, Operation]]] = {}
        for index, client in enumerate(self.clients):
            for op in client.operations:
                if op.kind in (WRITE_OP, WRITE_NOTIFY):
                    self.barriers.setdefault(op.pv, []).append((op.time, index, op))
        for barriers in self.barriers.values():
            barriers.sort(key=lambda barrier: barrier[0])
        #: The captured writes made again in this pass (by id).
        self._written: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._playing = False
        self._unplayed = set(self.tracks)
        #: Set when every PV's timeline has been played to its end (once).
        self.played = asyncio.Event()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, play: bool = True) -> None:
        """Serve; with ``play`` (the default), start the timeline at once too."""
        self._loop = asyncio.get_running_loop()
        await self.server.start()
        if play:
            self.play()

    def play(self) -> None:
        """Start the timeline's clock (once): a caller may first let its clients connect.
        A PV a request has already moved goes on from there."""
        if self._playing or self._loop is None:
            return
        self._playing = True
        now = self._loop.time()
        for track in self.tracks.values():
            track.wall = now
            self._schedule(track)
        self._check_played()

    async def stop(self) -> None:
        for track in self.tracks.values():
            if track.timer is not None:
                track.timer.cancel()
        await self.server.stop()

    # -- the clock ---------------------------------------------------------------------

    def _position(self, track: _Track, now: float) -> float:
        if track.wall is None:
            return track.anchor
        return track.anchor + (now - track.wall) * self.speed

    def _barrier(self, track: _Track) -> float | None:
        """When the next captured write of the PV was sent, if the client that sent it
        is acted out and has not made it again yet: its change is the circuit's to make,
        and the clock must not make it first (nor post the updates it caused)."""
        now = track.times[track.index]
        for when, client, op in self.barriers.get(track.name, ()):
            if when >= now and client in self._taken and id(op) not in self._written:
                return when
        return None

    def _schedule(self, track: _Track) -> None:
        """Wake when the track's next change is due (or its pass ends, with ``loop``),
        unless a write a client is to make comes first."""
        if track.timer is not None:
            track.timer.cancel()
            track.timer = None
        if track.wall is None or self._loop is None:
            return
        following = track.next_event()
        if following is not None:
            due = track.times[following]
        elif self.loop and self.duration > 0:
            due = self.duration
        else:
            self._unplayed.discard(track.name)
            return
        barrier = self._barrier(track)
        if barrier is not None and due >= barrier:
            return  # the circuit's write moves it on
        when = track.wall + (due - track.anchor) / self.speed
        track.timer = self._loop.call_at(when, self._tick, track, due)

    def _tick(self, track: _Track, due: float) -> None:
        assert self._loop is not None
        track.timer = None
        now = self._loop.time()
        position = max(self._position(track, now), due)
        barrier = self._barrier(track)
        if barrier is not None:
            position = min(position, barrier - 1e-9)
        self._forward(track, track.at(position))
        if self.loop and self.duration > 0 and position >= self.duration:
            self._unplayed.discard(track.name)
            # A new pass: the capture's first state again, then on from there.
            track.anchor -= self.duration
            track.index = 0
            self._apply(track, force=False)
            self._forward(track, track.at(self._position(track, now)))
        self._schedule(track)
        self._check_played()

    def _check_played(self) -> None:
        if not self._unplayed:
            self.played.set()

    def _forward(self, track: _Track, target: int) -> None:
        """Apply each change up to state ``target``, in order."""
        for index in track.events[bisect_right(track.events, track.index):]:
            if index > target:
                break
            track.index = index
            track.written = False
            self._apply(track, force=track.states[index].kind == UPDATE)
        track.index = max(track.index, target)

    def _seek(self, track: _Track, capture_time: float) -> str:
        """Move the PV to the state the capture shows at ``capture_time``, and its clock
        on from there; what was done, in words. Not past a write a client acted out
        has still to make: a client that does not make it does not see it made."""
        barrier = self._barrier(track)
        if barrier is not None:
            capture_time = min(capture_time, barrier - 1e-9)
        target = track.at(capture_time)
        if target >= track.index:
            self._forward(track, target)
            moved = "forwards"
        elif track.written:
            return "not back (holds a client's write)"  # and its clock goes on
        elif self.server.watched(track.name):
            return "not back (subscribed to: its updates go forwards)"
        else:
            track.index = target
            self._apply(track, force=False)
            moved = "back"
        track.anchor = capture_time
        if self._playing and self._loop is not None:
            track.wall = self._loop.time()
        self._schedule(track)
        return moved

    def _apply(self, track: _Track, force: bool) -> None:
        if track.name not in self.server.pvs:  # removed through the API
            return
        state = track.states[track.index]
        self.server.set(track.name, state.values, status=state.status,
                        severity=state.severity, stamp=state.stamp, force=force)

    # -- the clients ---------------------------------------------------------------------

    def _opened(self, peer: Any) -> None:
        self._cursors[peer] = None
        log.info("%s: client %s connected", self.recorded.address, _peer(peer))

    def _closed(self, peer: Any) -> None:
        cursor = self._cursors.pop(peer, None)
        made = 0 if cursor is None else sum(cursor[1].values())
        log.info("%s: client %s disconnected (%d requests as captured)",
                 self.recorded.address, _peer(peer), made)

    def _cast(self, peer: Any, key: Key) -> tuple[int, dict[Key, int]] | None:
        """The captured client the circuit of ``peer`` acts out, chosen at its first
        request the capture shows: the first one not yet acted out that began with it,
        else that made it at all."""
        cursor = self._cursors.get(peer)
        if cursor is not None:
            return cursor
        if len(self._taken) >= len(self.clients):
            self._taken.clear()  # each has been acted out: a new pass
            self._written.clear()
        free = [i for i in range(len(self.clients)) if i not in self._taken]
        first = [i for i in free if _op_key(self.clients[i].operations[0]) == key]
        chosen = (first or [i for i in free if key in self.scripts[i]] or [None])[0]
        if chosen is None:
            return None
        self._taken.add(chosen)
        cursor = self._cursors[peer] = chosen, {}
        client = self.clients[chosen]
        log.info("%s: client %s acts as the captured %s (circuit %d)", self.recorded.address,
                 _peer(peer), client.address, client.circuit)
        return cursor

    def _requested(self, peer: Any, request: m.Message, pv: PV | None) -> None:
        """Match a request with the capture's, and move its PV to where that one was."""
        kind = _KINDS.get(type(request))
        name = request.name if isinstance(request, m.CreateChanRequest) else (
            pv.name if pv is not None else None)
        if kind is None or name is None:
            return
        key: Key = (kind, name, request.data_type if kind in _TYPED else None)
        what = _describe(key, request) if log.isEnabledFor(logging.DEBUG) else ""
        if isinstance(pv, ReplayPV):
            pv.script = None  # set again below for a write the capture shows
        cast = self._cast(peer, key)
        track = self.tracks.get(name)
        ops = [] if cast is None else self.scripts[cast[0]].get(key, [])
        taken = 0 if cast is None else cast[1].get(key, 0)
        if taken >= len(ops) or track is None or cast is None:
            log.debug("%s: %s: %s (not in the capture)", self.recorded.address,
                      _peer(peer), what)
            return
        cast[1][key] = taken + 1
        op = ops[taken]
        when = _answered_at(op)
        if kind in (WRITE_OP, WRITE_NOTIFY):
            self._written.add(id(op))
        moved = self._seek(track, when)
        if kind in (WRITE_OP, WRITE_NOTIFY):
            if isinstance(pv, ReplayPV):
                pv.script = op
            if not _same_write(op, request):
                track.written = True
                moved += "; another value than captured: held"
        log.debug("%s: %s: %s (as captured at %.3f s: %s)", self.recorded.address,
                  _peer(peer), what, when, moved)


class _Engine(Server):
    """The CA server of a replay, telling it of each circuit and request."""

    def __init__(self, replay: ReplayServer, pvs: Sequence[PV], **options: Any) -> None:
        super().__init__(pvs, **options)
        self.replay = replay

    def opened(self, peer: Any) -> None:
        self.replay._opened(peer)

    def closed(self, peer: Any) -> None:
        self.replay._closed(peer)

    def requested(self, peer: Any, request: m.Message, pv: PV | None) -> None:
        self.replay._requested(peer, request, pv)

    def watched(self, name: str) -> bool:
        """Some client subscribes to ``name``."""
        return bool(self._watches.get(name))


def _op_key(op: Operation) -> Key:
    return (op.kind, op.pv, op.data_type if op.kind in _TYPED else None)


def _answered_at(op: Operation) -> float:
    """When the server answered ``op`` (for a write with no answer, when it was sent):
    the PV's state then is what the answer shows."""
    return op.answer.time if op.answer is not None else op.time


def _same_write(op: Operation, request: m.Message) -> bool:
    if op.data is None:
        return False
    try:
        values = request.data.values  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a payload that does not decode: the server refuses it
        return False
    return _items(values) == _items(op.data.values)


def _items(values: Any) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]


def _describe(key: Key, request: m.Message) -> str:
    kind, name, data_type = key
    text = f"{kind} {name}"
    if data_type is not None:
        text += f" {dbr_name(data_type)}"
    if kind in (WRITE_OP, WRITE_NOTIFY):
        try:
            text += f" {short(request.data.values)}"  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - said by the server's refusal
            text += " (undecodable)"
    return text


def _peer(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


def _changes(states: list[State]) -> list[int]:
    """The indices of the states that change something: a value or alarm other than
    the one before, or a monitor update of a new processing (another timestamp, and
    not the update a write just before caused: posted again even when the same
    value). A read that finds what was there before is no event, and must not undo a
    replay client's write; nor is the same update seen by another subscription, nor a
    monitor's value older than the one before (a server that sent a subscription's
    first value after the writes that followed it)."""
    def state(s: State) -> tuple[Any, ...]:
        return s.values, s.status, s.severity

    def stale(before: State, after: State) -> bool:
        return (after.kind in (UPDATE, INITIAL) and after.stamp is not None
                and before.stamp is not None and after.stamp < before.stamp)

    events, before = [], states[0]
    for index, after in enumerate(states[1:], 1):
        if stale(before, after):
            continue
        if state(after) != state(before) or (after.kind == UPDATE and before.kind != WRITE
                                             and after.stamp != before.stamp):
            events.append(index)
        before = after
    return events


class ReplayPV(PV):
    """A PV whose GR/CTRL reads give, type by type, what the capture showed for that
    type (``captured``: the fields by DBR type), and otherwise convert its metadata."""

    def __init__(self, *args: Any, captured: Mapping[int, Mapping[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.captured = {int(data_type): dict(fields)
                         for data_type, fields in (captured or {}).items()}

        #: The captured write the next write acts out (set as it is matched).
        self.script: Operation | None = None

    def metadata_for(self, data_type: int) -> dict[str, Any]:
        metadata = self.metadata()
        metadata.update(self.captured.get(data_type, {}))
        return metadata

    def write(self, data: Any) -> EventMask:
        """A write the capture shows fails as the captured one did (ECA_PUTFAIL), and
        one it shows taken is taken even when its values mean nothing here (an enum
        state's name, with no enum strings captured): the timeline holds the result."""
        script, self.script = self.script, None
        if script is None:
            return super().write(data)
        if script.answer is not None and script.answer.status != ECA.ECA_NORMAL:
            raise ConversionError(f"the captured write failed ({eca_name(script.answer.status)})")
        try:
            return super().write(data)
        except ConversionError:
            return EventMask.NONE


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
                         beacon_address=beacon_address,
                         clients=[c for c in recording.clients if c.server == server.address])
            for i, server in enumerate(recorded)]
