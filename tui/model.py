"""What the TUI knows of the traffic: the latest records, and aggregates of all of them.

The decoding thread hands records over in batches (:meth:`Model.add_batch`, under
:attr:`Model.lock`); the screen reads the model ten times a second. Aggregates are
updated per record with a few attribute increments, and anything costly (decoding a
value, naming a type, sorting rows) waits until a row is actually drawn, so that the
model keeps up with 100k messages/s.

Memory is bounded whatever the capture's length: the records are a ring of the last
``ring_size``; channels, circuits and servers have one row each, and when there are
more than :data:`MAX_ROWS` of a kind the least recently active are forgotten; the
errors list keeps the last :data:`MAX_ERRORS`. Messages kept beyond the ring (a
channel's last value, errors) get their own copy of their payload, so that they do not
keep a live capture's ring block alive. Searches and beacons are the session's own
(:class:`decoder.Discovery`, itself bounded).

Rows are plain objects the screen reads while the decoder updates them: a row drawn
mid-update shows one field a message newer than another, which is harmless.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Container
from typing import Any

from decoder import Channel, Role, Search, Subscription
from decoder import messages as m
from shark.analysis.attribution import Session
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record

from .ring import Ring

__all__ = [
    "ChannelRow", "CircuitRow", "ErrorRow", "Model", "ServerRow", "problem", "search_rows",
]

#: Rows kept per kind (channels, circuits, servers) before the least active go.
MAX_ROWS = 100_000
#: Errors listed (the count goes on).
MAX_ERRORS = 10_000
#: Seconds of capture time over which a channel's update rate is measured, and the most
#: values it is measured on (a faster channel is measured over less time).
RATE_WINDOW = 2.0
RATE_SAMPLES = 64

#: Responses that carry a channel's value from the server.
VALUE_RESPONSES = frozenset({m.EventAddResponse, m.ReadNotifyResponse, m.ReadResponse})
#: Requests that carry a value to the server.
WRITES = frozenset({m.WriteRequest, m.WriteNotifyRequest})
#: Responses whose ``status`` is an ECA code (ECA_NORMAL = 1 is success).
STATUS_RESPONSES = frozenset({m.EventAddResponse, m.ReadNotifyResponse, m.WriteNotifyResponse})
_ECA_NORMAL = 1
#: Messages that are problems in themselves, and what they mean.
_BAD_NEWS = {
    m.CreateChFailResponse: "the server refused to create the channel",
    m.ServerDisconnResponse: "the server disconnected the channel",
}

Predicate = Callable[[Record], bool]
#: Anomalies that only mean the capture began after the circuit did.
MIDSTREAM_ANOMALIES = frozenset({
    "unknown SID", "unknown CID", "unknown subscription", "response without request",
})
#: How :mod:`shark.extract.reader` names the bytes skipped at the start of a joined connection.
_JOINED = "capture starts inside the connection"


def problem(record: Record, midstream: Container[int] = ()) -> str | None:
    """What is wrong with ``record``, or None: the records ``e`` jumps to and the
    Errors pane lists (gaps, undecodable bytes, ERROR messages, failed statuses,
    refused or disconnected channels, and whatever the circuit state found odd).

    On a circuit joined mid-stream (its number in ``midstream``), what was set up before
    the capture began is unknown, so the anomalies that follow from that alone are not
    problems; nor are the bytes skipped to find the first message boundary."""
    kind = record.kind
    if kind is GAP:
        return record.reason
    if kind is ERROR:
        if record.circuit in midstream and record.reason.startswith(_JOINED):
            return None
        return record.reason
    message = record.message
    if message is None:
        return None
    anomaly = record.anomaly
    if anomaly is not None and not (
            anomaly.kind in MIDSTREAM_ANOMALIES and record.circuit in midstream):
        return f"{anomaly.kind}: {anomaly.detail}"
    cls = type(message)
    if cls is m.ErrorResponse:
        try:
            return f"{message.status_name}: {message.error_message}"
        except Exception:  # an undecodable payload is still an error
            return message.status_name
    if cls in STATUS_RESPONSES and message.status != _ECA_NORMAL:
        return message.status_name
    return _BAD_NEWS.get(cls)


class ChannelRow:
    """One channel on one circuit: who serves it, its values and how fast they come.

    On a circuit the capture joined mid-stream, a subscription's updates may come for a
    channel the capture never saw created: the row is then the subscription's
    (``channel`` None), so that its values still show."""

    __slots__ = ("channel", "subscription", "circuit", "server", "client", "updates",
                 "writes", "last", "last_time", "_times")

    def __init__(self, channel: Channel | None, circuit: int | None, server: str, client: str,
                 time: float, subscription: Subscription | None = None) -> None:
        self.channel = channel
        self.subscription = subscription
        self.circuit = circuit
        self.server = server
        self.client = client
        #: Values received (subscription updates and read replies), values written.
        self.updates = 0
        self.writes = 0
        #: The record of the last value received, and the capture time of any activity.
        self.last: Record | None = None
        self.last_time = time
        #: Capture times of the latest values, for the update rate.
        self._times: deque[float] = deque(maxlen=RATE_SAMPLES)

    @property
    def name(self) -> str | None:
        """The PV's name, if the capture told it."""
        return None if self.channel is None else self.channel.name

    @property
    def pv(self) -> str:
        """The PV's name, or what stands for it."""
        channel = self.channel
        if channel is None:
            number = self.subscription.subscriptionid if self.subscription else "?"
            return f"<subscription {number}>"
        if channel.name is not None:
            return channel.name
        return f"<unnamed sid={channel.sid}>" if channel.sid is not None else "<unnamed>"

    def value(self, record: Record) -> None:
        """A value arrived (:meth:`Model.add_batch` does the same inline)."""
        self.updates += 1
        self.last = record
        self.last_time = record.time
        self._times.append(record.time)

    def rate(self, now: float) -> float:
        """Values per second over the :data:`RATE_WINDOW` seconds before ``now`` (capture
        time), or over the latest :data:`RATE_SAMPLES` values if they came faster."""
        times = list(self._times)
        recent = [t for t in times if t > now - RATE_WINDOW]
        if len(recent) == len(times) == RATE_SAMPLES:
            span = recent[-1] - recent[0]
            return (len(recent) - 1) / span if span > 0 else 0.0
        return len(recent) / RATE_WINDOW


class CircuitRow:
    """One TCP circuit: its ends, its client's names, its traffic."""

    __slots__ = ("number", "client", "server", "opened", "closed", "messages", "bytes",
                 "last_time", "user", "host", "version", "state")

    def __init__(self, number: int, client: str, server: str, time: float) -> None:
        self.number = number
        self.client = client
        self.server = server
        self.opened = time
        #: Why it ended ("fin", "rst", ...), None while open.
        self.closed: str | None = None
        self.messages = 0
        self.bytes = 0
        self.last_time = time
        self.user: str | None = None
        self.host: str | None = None
        self.version: int | None = None
        #: The decoder's circuit state (channels, subscriptions), while the session has it.
        self.state: Any = None


class ServerRow:
    """One CA server (TCP address): its beacons and the circuits to it."""

    __slots__ = ("address", "beacons", "beacon_id", "first_beacon", "last_beacon", "resets",
                 "skips", "circuits", "last_time")

    def __init__(self, address: str, time: float) -> None:
        self.address = address
        self.beacons = 0
        self.beacon_id: int | None = None
        self.first_beacon: float | None = None
        self.last_beacon: float | None = None
        #: Beacon ids that went back (a restart) or jumped (beacons lost).
        self.resets = 0
        self.skips = 0
        self.circuits = 0
        self.last_time = time

    @property
    def beacon_interval(self) -> float | None:
        if self.beacons < 2 or self.first_beacon is None or self.last_beacon is None:
            return None
        return (self.last_beacon - self.first_beacon) / (self.beacons - 1)


class ErrorRow:
    """A problem, the record that shows it, and when."""

    __slots__ = ("record", "text")

    def __init__(self, record: Record, text: str) -> None:
        self.record = record
        self.text = text


class Model:
    """The records and aggregates the screen shows. See the module docstring."""

    def __init__(self, ring_size: int = 100_000) -> None:
        #: Held by the writer for each batch; readers take it for exact snapshots.
        self.lock = threading.Lock()
        self.ring: Ring[Record] = Ring(ring_size)
        #: The records matching :attr:`predicate` (the ring itself when there is none).
        self.view: Ring[Record] = self.ring
        self.predicate: Predicate | None = None
        #: By channel (or, for a subscription whose channel is unknown, subscription).
        self.channels: dict[Channel | Subscription, ChannelRow] = {}
        self.circuits: dict[int, CircuitRow] = {}
        self.servers: dict[str, ServerRow] = {}
        self.errors: deque[ErrorRow] = deque(maxlen=MAX_ERRORS)
        #: Circuits the capture joined after they were set up.
        self.midstream: set[int] = set()
        #: The decoding session (set by the source): searches and beacons live there.
        self.session: Session | None = None
        #: Counters since the start.
        self.records = 0
        self.messages = 0
        self.gaps = 0
        self.gap_bytes = 0
        self.error_count = 0
        #: Capture times of the first and latest records.
        self.first_time: float | None = None
        self.last_time: float | None = None
        #: Bumped by every batch: readers redraw only when it changed.
        self.version = 0
        #: Bumped when rows are added or forgotten: readers sort again only then.
        self.rows_version = 0

    # -- the writer's side (decoding thread) -------------------------------------------

    def add_batch(self, records: list[Record]) -> None:
        """Account for ``records`` (in capture order).

        The loop is written for speed (locals, the common case of a message on a known
        circuit and channel first): it runs for every message of the capture."""
        if not records:
            return
        with self.lock:
            self.ring.extend(records)
            predicate = self.predicate
            if predicate is not None:
                self.view.extend([r for r in records if predicate(r)])
            if self.first_time is None:
                self.first_time = records[0].time
            self.last_time = records[-1].time
            self.records += len(records)
            circuits, channels = self.circuits, self.channels
            messages = 0
            server = Role.SERVER
            for record in records:
                if record.kind is not MESSAGE:
                    self._other(record)
                    continue
                messages += 1
                message = record.message
                cls = type(message)
                time = record.time
                number = record.circuit
                if number is not None:
                    circuit = circuits.get(number)
                    if circuit is None:
                        circuit = self._new_circuit(record)
                    if circuit.state is None and self.session is not None:
                        circuit.state = self.session.circuits.get(number)
                    circuit.messages += 1
                    circuit.bytes += len(message.payload) + (24 if message.extended else 16)
                    circuit.last_time = time
                    if cls in _CIRCUIT_FACTS:
                        _CIRCUIT_FACTS[cls](circuit, message)
                channel = record.channel
                if channel is None:  # a subscription of a circuit joined mid-stream?
                    channel = record.subscription
                if channel is not None:
                    row = channels.get(channel)
                    if row is None:
                        row = self._new_channel(record, channel)
                    if cls in VALUE_RESPONSES:
                        if record.sender is server:
                            row.updates += 1
                            _own_payload(message)
                            row.last = record
                            row.last_time = time
                            row._times.append(time)
                    elif cls in WRITES:
                        row.writes += 1
                        row.last_time = time
                elif cls is m.Beacon:
                    self._beacon(record, message)
                if record.anomaly is not None or (
                        message.parameter1 != _ECA_NORMAL if cls in STATUS_RESPONSES
                        else cls in _SUSPECT):
                    text = problem(record, self.midstream)
                    if text is not None:
                        self._error(record, text)
            self.messages += messages
            self.version += 1

    def _other(self, record: Record) -> None:
        """Account for a record that is not a message: circuit open and close, gaps,
        undecodable bytes."""
        kind = record.kind
        if kind is OPEN:
            if record.reason == "syn":  # src is the client
                if record.circuit not in self.circuits:
                    self._new_circuit(record)
            else:  # which end is the server: the first message will tell
                self.midstream.add(record.circuit)
                if len(self.midstream) > MAX_ROWS:
                    self.midstream.clear()
        elif kind is CLOSE:
            circuit = self.circuits.get(record.circuit)
            if circuit is not None and circuit.closed is None:
                circuit.closed = record.reason or "closed"
                circuit.last_time = record.time
        else:  # GAP, ERROR (undecodable bytes)
            if kind is GAP:
                self.gaps += 1
                self.gap_bytes += record.size
            text = problem(record, self.midstream)
            if text is not None:
                self._error(record, text)

    def problem(self, record: Record) -> str | None:
        """:func:`problem`, knowing which circuits were joined mid-stream."""
        return problem(record, self.midstream)

    def _error(self, record: Record, text: str) -> None:
        self.error_count += 1
        if record.message is not None:
            _own_payload(record.message)
        self.errors.append(ErrorRow(record, text))

    def _new_circuit(self, record: Record) -> CircuitRow:
        client, server = record.src, record.dst
        if record.kind is MESSAGE and record.sender is Role.SERVER:
            client, server = server, client
        circuit = self.circuits[record.circuit] = CircuitRow(
            record.circuit, client, server, record.time)
        self.rows_version += 1
        if self.session is not None:
            circuit.state = self.session.circuits.get(record.circuit)
        self._server(server, record.time).circuits += 1
        _bound(self.circuits, lambda row: (row.closed is None, row.last_time))
        return circuit

    def _new_channel(self, record: Record, key: Channel | Subscription) -> ChannelRow:
        client, server = record.src, record.dst
        if record.sender is Role.SERVER:
            client, server = server, client
        if isinstance(key, Subscription):
            row = ChannelRow(None, record.circuit, server, client, record.time, key)
        else:
            row = ChannelRow(key, record.circuit, server, client, record.time)
        self.channels[key] = row
        self.rows_version += 1
        _bound(self.channels, lambda row: row.last_time)
        return row

    def _server(self, address: str, time: float) -> ServerRow:
        row = self.servers.get(address)
        if row is None:
            row = self.servers[address] = ServerRow(address, time)
            self.rows_version += 1
            _bound(self.servers, lambda row: row.last_time)
        return row

    def _beacon(self, record: Record, beacon: m.Beacon) -> None:
        host = record.src.rpartition(":")[0]
        if beacon.address and beacon.address != 0xFFFFFFFF:
            host = socket.inet_ntoa(struct.pack(">I", beacon.address))
        row = self._server(f"{host}:{beacon.server_port}", record.time)
        time = record.time
        beaconid = beacon.beaconid
        if row.beacon_id is not None:
            if beaconid < row.beacon_id:
                row.resets += 1
                self._error(record, f"beacon id went back from {row.beacon_id} to {beaconid}: "
                                    "the server restarted")
            elif beaconid > row.beacon_id + 1:
                row.skips += 1
        row.beacon_id = beaconid
        row.beacons += 1
        if row.first_beacon is None:
            row.first_beacon = time
        row.last_beacon = row.last_time = time

    # -- the reader's side (screen) -----------------------------------------------------

    def set_filter(self, predicate: Predicate | None) -> None:
        """Show only the records matching ``predicate`` (None: all), from those held now
        on: the ring is filtered again, under the lock."""
        with self.lock:
            self.predicate = predicate
            if predicate is None:
                self.view = self.ring
                return
            view: Ring[Record] = Ring(self.ring.capacity)
            _start, records = self.ring.snapshot()
            view.extend(r for r in records if predicate(r))
            self.view = view

    def snapshot(self) -> tuple[list[Record], list[Record]]:
        """(every record held, those of the view) at one instant: what a pause freezes."""
        with self.lock:
            everything = self.ring.snapshot()[1]
            view = everything if self.view is self.ring else self.view.snapshot()[1]
            return everything, view

    def searches(self) -> list[Search]:
        """The searches seen, unanswered first, then the most retried, then by name."""
        if self.session is None:
            return []
        return search_rows(list(self.session.discovery.searches.values()))


def search_rows(searches: list[Search]) -> list[Search]:
    """Searches in the order the Searches pane lists them: unanswered first."""
    searches.sort(key=lambda s: (bool(s.replies), -s.tries, s.name))
    return searches


def _own_payload(message: m.Message) -> None:
    """Give a message kept for long (a channel's last value, an error) a copy of its
    payload: from a live capture, a payload is a view of the whole ring block its packet
    came in (see :mod:`shark.capture.live`), and one kept view would keep the block's memory."""
    payload = message.payload
    if type(payload) is memoryview:
        message.payload = payload.tobytes()


def _set_user(circuit: CircuitRow, message: m.Message) -> None:
    circuit.user = message.name


def _set_host(circuit: CircuitRow, message: m.Message) -> None:
    circuit.host = message.name


def _set_version(circuit: CircuitRow, message: m.Message) -> None:
    circuit.version = message.version


#: Messages that tell something about their circuit, and what.
_CIRCUIT_FACTS: dict[type, Callable[[CircuitRow, Any], None]] = {
    m.ClientNameRequest: _set_user,
    m.HostNameRequest: _set_host,
    m.VersionRequest: _set_version,
}
#: Message classes :func:`problem` finds fault with whatever their status.
_SUSPECT = frozenset({m.ErrorResponse, *_BAD_NEWS})


def _bound(rows: dict, activity: Callable[[Any], Any]) -> None:
    """Forget the least active tenth of ``rows`` once there are more than MAX_ROWS."""
    if len(rows) <= MAX_ROWS:
        return
    ranked = sorted(rows.items(), key=lambda item: activity(item[1]))
    for key, _row in ranked[: len(rows) // 10]:
        del rows[key]
