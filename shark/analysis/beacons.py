"""Beacon anomalies: when a CA client would think a server came, went, or came back.

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
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BeaconAnomaly", "BeaconWatch"]

#: The first protocol revision with beacon ids (``CA_V410``).
_IDS_FROM_VERSION = 10
_ID_RANGE = 1 << 32
#: libca's thresholds, as fractions of the period estimate.
_LONG, _LATE, _SHORT = 3.25, 1.25, 0.80


class BeaconAnomaly(NamedTuple):
    time: float
    kind: str
    beacon_id: int
    #: Seconds since the last beacon counted, and the estimate it was judged against.
    period: float | None
    estimate: float | None


class BeaconWatch:
    """The beacons of one server, judged as libca judges them (module docstring).

    ``begin`` is when watching started (the capture's first record): libca's program
    start, for the ``new server`` rule.
    """

    def __init__(self, time: float, beacon_id: int, begin: float) -> None:
        self.begin = begin
        self.first = self.last = time
        self.first_id = self.last_id = beacon_id
        #: When the last beacon that counted came (ignored ones do not move it).
        self.stamp = time
        self.estimate: float | None = None
        self.beacons = 1
        self.ignored = self.lost = self.late = self.restarts = self.anomalies = 0
        self.last_period: float | None = None

    def see(self, time: float, beacon_id: int, version: int) -> list[BeaconAnomaly]:
        """Account for a beacon; return the anomalies it shows (usually none)."""
        found = []
        self.beacons += 1
        self.last = time
        if version >= _IDS_FROM_VERSION:
            advance = (beacon_id - self.last_id) % _ID_RANGE
            if advance >= _ID_RANGE // 2:  # behind the last id rather than ahead
                self.restarts += 1
                found.append(BeaconAnomaly(time, "restart", beacon_id, None, self.estimate))
            self.last_id = beacon_id
            if advance == 0 or advance > _ID_RANGE - 256 or 1 < advance < 4:
                self.ignored += 1
                self.anomalies += len(found)
                return found
            if advance >= 4:
                self.lost += advance - 1
                found.append(BeaconAnomaly(time, "ids jumped", beacon_id, None, self.estimate))
        period = time - self.stamp
        self.stamp = time
        self.last_period = period
        estimate = self.estimate
        if estimate is None:
            self.estimate = period
            if period <= time - period - self.begin:
                found.append(BeaconAnomaly(time, "new server", beacon_id, period, None))
        else:
            if period >= estimate * _LONG:
                found.append(BeaconAnomaly(time, "period long", beacon_id, period, estimate))
            elif period >= estimate * _LATE:
                self.late += 1
            elif period <= estimate * _SHORT:
                found.append(BeaconAnomaly(time, "period short", beacon_id, period, estimate))
            self.estimate = period * 0.125 + estimate * 0.875
        self.anomalies += len(found)
        return found
