"""Beacon anomalies, decided once: when a CA client would think a server came, went, or
came back, and what the server is called.

A CA server sends a beacon (RSRV_IS_UP) on a ramp after it starts (EPICS base's rsrv:
20 ms, then doubling up to 15 s) and then at that period, numbering them from 0. Clients
watch them: libca's ``bhe::updatePeriod`` (``modules/ca/src/client/bhe.cpp``), also
what ``casw`` prints, reports a *beacon anomaly* when the period changes in a way that
means a new or restarted server, and then re-sends its searches for unresolved channels.
:class:`BeaconWatch` applies the same rules to the beacons of one server, seen in a
capture instead of by a client:

1. The first beacon of a server only starts the watch.
2. Beacon ids (CA v4.10 and later) are checked before the period: a copy of the
   last id, or an id up to 256 behind it, is a duplicate from a redundant route and is
   ignored; an id 2 or 3 ahead is ignored too (libca blames duplicate routes or an
   input queue overrun). shark's own rule comes first: an id *lower* than the last one
   means the server restarted (servers number their beacons from 0 each time they
   start), reported as a ``restart`` anomaly whatever libca then makes of it. An id 4
   or more ahead is reported as ``ids jumped`` (beacons lost), then judged by period.
3. The second beacon gives the first period estimate; it is an anomaly (``new server``)
   when that period is no longer than the time from the start of the capture to the
   first beacon: libca's test for a server that started after the client, as opposed to
   one seen for the first time just after the client started.
4. Afterwards each period is compared with the running estimate: at least 3.25 times
   it is ``period long`` (three beacons in a row missing: the server, or the network to
   it, was away); at most 0.8 times it is ``period short`` (beacons came faster: the
   server rebooted and is on its ramp again). Either way the estimate then moves an
   eighth of the way to the new period, as libca's does.

libca also notes a period of 1.25 times the estimate (one missed beacon) but only
checks the health of a circuit open to that server with it; it is counted here as
``late`` and is not an anomaly. Note what follows from the rules: a server's start-up
ramp, period doubling each time, gives ``period long`` anomalies until the estimate
catches up (``casw`` prints them too), and a restart gives ``restart`` then ``period
short``.

A server is named as libca's ``udpiiu::beaconAction`` names it (:func:`server_name`):
``"ip:port"`` of its TCP listening socket, the ip from the beacon's address field unless
that is 0 (then the sender's), the port from the beacon unless 0 (then 5064, for servers
older than CA v4.7). That is also how a circuit to the server names its end, so a
server's beacons and its circuits meet under one name.

:class:`BeaconJudge` holds the watches of every server of one capture or network, and
tells copies a CA repeater forwards from the server's own beacons. Every view of beacons
(:class:`decoder.Discovery`, shark's ``beacons`` and ``beacon_anomalies`` tables, the
``shark stats`` report, the TUI's Servers pane) asks it, so they cannot disagree. A
watch keeps the periods it counted (the newest :data:`MAX_PERIODS`), so that a picture
of them (the TUI's beacon plot) draws what the judge decided instead of judging again.
"""

from __future__ import annotations

from array import array
from enum import Enum
from typing import NamedTuple

from .protocol import SERVER_PORT

__all__ = ["MAX_PERIODS", "BeaconAnomaly", "BeaconAnomalyKind", "BeaconJudge", "BeaconServer",
           "BeaconWatch", "server_name"]

#: The first protocol revision with beacon ids (``CA_V410``).
_IDS_FROM_VERSION = 10
_ID_RANGE = 1 << 32
#: libca's thresholds, as fractions of the period estimate.
_LONG, _LATE, _SHORT = 3.25, 1.25, 0.80
#: The periods a :class:`BeaconWatch` keeps for pictures of them (the newest): at a
#: beacon every 15 s, the last eight and a half hours, in at most 64 kB per server.
MAX_PERIODS = 2048


class BeaconAnomalyKind(str, Enum):
    """What a beacon anomaly means. The values are the words tables and screens show,
    and the members equal them (``BeaconAnomalyKind.RESTART == "restart"``)."""

    RESTART = "restart"
    IDS_JUMPED = "ids jumped"
    NEW_SERVER = "new server"
    PERIOD_LONG = "period long"
    PERIOD_SHORT = "period short"

    __str__ = str.__str__
    __format__ = str.__format__


class BeaconAnomaly(NamedTuple):
    time: float
    kind: BeaconAnomalyKind
    beacon_id: int
    #: Seconds since the last beacon counted, and the estimate it was judged against.
    period: float | None
    estimate: float | None
    #: The server (:func:`server_name`).
    server: str = ""


def server_name(address: int, port: int, sender_host: str) -> str:
    """The server a beacon announces, as ``"ip:port"`` (module docstring): ``address``
    and ``port`` are the beacon's fields, ``sender_host`` the ip it came from."""
    if address:
        host = f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
    else:
        host = sender_host
    return f"{host}:{port or SERVER_PORT}"


class BeaconWatch:
    """The beacons of one server, judged as libca judges them (module docstring).

    ``begin`` is when watching started (a capture's first record): libca's program
    start, for the ``new server`` rule. Without times (``time`` None), only the beacon
    ids are judged.
    """

    def __init__(self, time: float | None, beacon_id: int, begin: float | None,
                 server: str = "") -> None:
        self.server = server
        self.begin = begin
        self.first = self.last = time
        self.first_id = self.last_id = beacon_id
        #: When the last beacon that counted came (ignored ones do not move it).
        self.stamp = time
        self.estimate: float | None = None
        self.beacons = 1
        self.ignored = self.lost = self.late = self.restarts = self.anomalies = 0
        self.last_period: float | None = None
        #: The periods that counted, oldest first, as one flat array ``time, period, time,
        #: period ...`` (each pair added in one step: a reader on another thread never
        #: sees half of one); the newest :data:`MAX_PERIODS`, for pictures (:meth:`periods`).
        self.history = array("d")

    def periods(self) -> tuple[list[float], list[float]]:
        """The times of the beacons whose period counted, and those periods (seconds
        since the beacon counted before): the newest :data:`MAX_PERIODS`."""
        flat = self.history[-2 * MAX_PERIODS:].tolist()
        return flat[0::2], flat[1::2]

    def see(self, time: float | None, beacon_id: int, version: int) -> list[BeaconAnomaly]:
        """Account for a beacon; return the anomalies it shows (usually none)."""
        found = []
        self.beacons += 1
        self.last = time
        server = self.server
        if version >= _IDS_FROM_VERSION:
            advance = (beacon_id - self.last_id) % _ID_RANGE
            if advance >= _ID_RANGE // 2:  # behind the last id rather than ahead
                self.restarts += 1
                found.append(BeaconAnomaly(time, BeaconAnomalyKind.RESTART, beacon_id, None,
                                           self.estimate, server))
            self.last_id = beacon_id
            if advance == 0 or advance > _ID_RANGE - 256 or 1 < advance < 4:
                self.ignored += 1
                self.anomalies += len(found)
                return found
            if advance >= 4:
                self.lost += advance - 1
                found.append(BeaconAnomaly(time, BeaconAnomalyKind.IDS_JUMPED, beacon_id, None,
                                           self.estimate, server))
        if time is None or self.stamp is None:
            self.anomalies += len(found)
            return found
        period = time - self.stamp
        self.stamp = time
        self.last_period = period
        history = self.history
        history.extend((time, period))
        if len(history) >= 4 * MAX_PERIODS:  # (halved now and then: appends stay cheap)
            del history[: len(history) - 2 * MAX_PERIODS]
        estimate = self.estimate
        if estimate is None:
            self.estimate = period
            if self.begin is not None and period <= time - period - self.begin:
                found.append(BeaconAnomaly(time, BeaconAnomalyKind.NEW_SERVER, beacon_id,
                                           period, None, server))
        else:
            if period >= estimate * _LONG:
                found.append(BeaconAnomaly(time, BeaconAnomalyKind.PERIOD_LONG, beacon_id,
                                           period, estimate, server))
            elif period >= estimate * _LATE:
                self.late += 1
            elif period <= estimate * _SHORT:
                found.append(BeaconAnomaly(time, BeaconAnomalyKind.PERIOD_SHORT, beacon_id,
                                           period, estimate, server))
            self.estimate = period * 0.125 + estimate * 0.875
        self.anomalies += len(found)
        return found


class BeaconServer:
    """One server that beacons: its :class:`BeaconWatch`, and the copies of its beacons a
    CA repeater forwarded."""

    __slots__ = ("name", "watch", "direct", "copies")

    def __init__(self, name: str, watch: BeaconWatch, direct: bool) -> None:
        self.name = name
        self.watch = watch
        #: Whether the capture shows beacons the server sent itself (not only copies).
        self.direct = direct
        self.copies = 0


class BeaconJudge:
    """The beacons of every server of one capture or network, judged by libca's rules.

    A beacon a CA repeater forwards is a copy of one the server sent: copies count only
    for servers whose own beacons the capture does not show (once it shows them, copies
    are only counted). ``begin`` is libca's program start for the ``new server`` rule:
    the caller sets it (shark: the capture's first record), else it is the first beacon's
    time.
    """

    def __init__(self, begin: float | None = None) -> None:
        self.begin = begin
        self.servers: dict[str, BeaconServer] = {}

    def see(self, address: int, port: int, beacon_id: int, version: int, sender_host: str,
            time: float | None, copy: bool = False) -> tuple[BeaconServer, list[BeaconAnomaly]]:
        """Account for a beacon (its fields, where it came from, when, and whether a
        repeater forwarded it); return its server and the anomalies it shows."""
        name = server_name(address, port, sender_host)
        server = self.servers.get(name)
        if server is None:
            if self.begin is None:
                self.begin = time
            watch = BeaconWatch(time, beacon_id, self.begin, name)
            server = self.servers[name] = BeaconServer(name, watch, not copy)
            return server, []
        if copy and server.direct:
            server.copies += 1
            return server, []
        server.direct = server.direct or not copy
        return server, server.watch.see(time, beacon_id, version)
