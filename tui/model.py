"""What the TUI knows of the traffic: the messages table's rows, and aggregates of all
the records.

The decoding thread hands over, a commit at a time (:meth:`Model.add_batch`, under
:attr:`Model.lock`), the attributed records (and batches of monitor updates,
:class:`shark.extract.bulk.UpdateBatch`) and the batches of the ``messages`` table made
of them; the screen reads the model ten times a second. The rows go to a
:class:`shark.tables.store.BatchStore`, which the log reads: every row of a capture
file, in memory up to a budget and memory-mapped from a temporary file beyond it, or
the last ``ring_size`` of a live capture (:meth:`Model.live`). Which rows show a
problem (:func:`shark.analysis.problems.problem_mask`) and which the log's filter
keeps are worked out per batch as it arrives, as arrays of positions
(:class:`tui.log.Positions`). Aggregates are updated per record with a few attribute
increments (per subscription for a batch of updates), and anything costly (decoding a
value, naming a type, sorting rows) waits until a row is actually drawn, so that the
model keeps up with 100k messages/s.

Memory is bounded whatever the capture's length: the store's budget (or a live
capture's window) bounds the rows; channels, circuits and servers have one row each,
and when there are more than :data:`MAX_ROWS` of a kind the least recently active are
forgotten; the errors list keeps the last :data:`MAX_ERRORS`. A channel's values are
counted in numpy arrays (:class:`BulkUpdates`), and its last value read back from its
row of the log: no record is kept per channel while the log holds every row (a
capture file). Messages kept as records (a channel's last value when its row may be
let go, errors) get their own copy of their payload, so that they do not keep a live
capture's ring block alive.

What is an error is :mod:`shark.analysis.problems`' to say, and what is a beacon anomaly
:mod:`decoder.beacons`' (through the session's :class:`decoder.Discovery`), as for every
other view. Searches and beacons are the session's own
(:class:`decoder.Discovery`, itself bounded).

Rows are plain objects the screen reads while the decoder updates them: a row drawn
mid-update shows one field a message newer than another, which is harmless.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Container, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from decoder import BeaconServer, Channel, Role, Search, Subscription
from decoder import messages as m
from decoder.beacons import server_name
from shark.analysis.attribution import Session
from shark.analysis.problems import (
    ALWAYS,
    STATUS_REPLIES,
    Problem,
    ProblemJudge,
    ProblemKind,
    is_problem,
    problem_mask,
    problems,
)
from shark.analysis.series import Latencies, Rates
from shark.extract.bulk import UpdateBatch
from shark.extract.record import CLOSE, GAP, MESSAGE, OPEN, UPDATES, Record
from shark.output.text import seconds_ns
from shark.tables.store import DEFAULT_BUDGET, BatchStore

from .log import LogRow, LogRows, Positions, RowReader

__all__ = [
    "ChannelRow", "CircuitRow", "ErrorRow", "Model", "ServerRow", "is_problem", "problem",
    "search_rows",
]

#: Rows kept per kind (channels, circuits, servers) before the least active go.
MAX_ROWS = 100_000
#: Errors listed (the count goes on).
MAX_ERRORS = 10_000
#: Seconds of capture time over which a channel's update rate is measured, and the most
#: values it is measured on (a faster channel is measured over less time). Every channel
#: row keeps this many times (14 thousand channels: 3.6 MB at 32, twice that at 64); 32
#: give a periodic channel's rate as well as 64, but updates that come in bursts show
#: the burst's rate once 32 of them (not 64) fall within the window.
RATE_WINDOW = 2.0
RATE_SAMPLES = 32

#: Responses that carry a channel's value from the server.
VALUE_RESPONSES = frozenset({m.EventAddResponse, m.ReadNotifyResponse, m.ReadResponse})
#: Requests that carry a value to the server.
WRITES = frozenset({m.WriteRequest, m.WriteNotifyRequest})
_ECA_NORMAL = 1

#: Which rows of a batch of the messages table the log shows, one bool each (a compiled
#: filter's ``mask``: no filter work per row).
RowFilter = Callable[[pa.RecordBatch], np.ndarray]


def problem(record: Record, midstream: Container[int] = ()) -> str | None:
    """What is wrong with ``record`` (:func:`shark.analysis.problems.problems`), as one
    line, or None: the records ``e`` jumps to, the log shows in red and the Errors pane
    lists. ``midstream``: the circuits the capture joined after they were set up."""
    if not is_problem(record, midstream):
        return None
    return "; ".join(p.text for p in problems(record, midstream))


class ChannelRow:
    """One channel on one circuit: who serves it, its values and how fast they come.

    On a circuit the capture joined mid-stream, a subscription's updates may come for a
    channel the capture never saw created: the row is then the subscription's
    (``channel`` None), so that its values still show.

    The values are counted in the model's :class:`BulkUpdates` (how many, when, the
    latest's row of the log), at the row's ``slot`` there: a row holds no record of
    its own while the log holds the rows of every value (a capture file), only the
    record of its last value otherwise (a live capture's window, records handed
    without their rows)."""

    __slots__ = ("channel", "subscription", "circuit", "server", "client", "writes",
                 "_last", "_last_time", "bulk", "slot")

    def __init__(self, channel: Channel | None, circuit: int | None, server: str, client: str,
                 time: float, subscription: Subscription | None = None) -> None:
        self.channel = channel
        self.subscription = subscription
        self.circuit = circuit
        self.server = server
        self.client = client
        #: Values written.
        self.writes = 0
        #: The record of the last value received as a record, when its row of the log
        #: may not be held; the capture time of any activity.
        self._last: Record | None = None
        self._last_time = time
        #: Where the values received are counted (:class:`BulkUpdates`), and this row's
        #: place there (-1: none yet).
        self.bulk: BulkUpdates | None = None
        self.slot = -1

    @property
    def updates(self) -> int:
        """Values received (subscription updates and read replies)."""
        bulk, slot = self.bulk, self.slot
        if bulk is None or not 0 <= slot < len(bulk.updates):
            return 0
        return int(bulk.updates[slot])

    @property
    def last_time(self) -> float:
        """The capture time of the row's latest activity."""
        bulk, slot = self.bulk, self.slot
        if bulk is None or not 0 <= slot < len(bulk.last_time):
            return self._last_time
        return max(self._last_time, float(bulk.last_time[slot]))

    @last_time.setter
    def last_time(self, time: float) -> None:
        self._last_time = time

    @property
    def last(self) -> Record | LogRow | None:
        """The last value received: its row of the log, or its record when the row
        is not held."""
        bulk, slot, record = self.bulk, self.slot, self._last
        if bulk is None or not 0 <= slot < len(bulk.last_time):
            return record
        if record is not None and record.time >= bulk.last_time[slot]:
            return record
        position = int(bulk.last_position[slot])
        row = bulk.rows.row(position) if position >= 0 else None
        return row if row is not None else record

    @last.setter
    def last(self, record: Record | None) -> None:
        self._last = record

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

    def recent(self) -> list[float]:
        """The capture times of the latest :data:`RATE_SAMPLES` values, oldest first."""
        bulk, slot = self.bulk, self.slot
        if bulk is None or not 0 <= slot < len(bulk.written):
            return []
        return bulk.recent(slot)

    def rate(self, now: float) -> float:
        """Values per second over the :data:`RATE_WINDOW` seconds before ``now`` (capture
        time), or over the latest :data:`RATE_SAMPLES` values if they came faster."""
        times = self.recent()
        recent = [t for t in times if t > now - RATE_WINDOW]
        if len(recent) == len(times) == RATE_SAMPLES:
            span = recent[-1] - recent[0]
            return (len(recent) - 1) / span if span > 0 else 0.0
        return len(recent) / RATE_WINDOW


class BulkUpdates:
    """The values each channel row received (a slot each), counted in bulk a commit at
    a time (the monitor updates of :class:`shark.extract.bulk.UpdateBatch` items, and
    the values that came as records): how many, when the latest came and where its row
    is in the store (-1: not held), and the times of the latest :data:`RATE_SAMPLES`.
    Updated with a few numpy operations per commit, whatever the channels in it: a
    capture of thousands of monitored channels must not cost a Python step per channel
    per batch, nor keep a Python object per value kept."""

    def __init__(self, rows: RowReader, capacity: int = 1024) -> None:
        self.rows = rows
        self.size = 0
        self.updates = np.zeros(capacity, dtype=np.int64)
        self.last_time = np.full(capacity, -np.inf)
        self.last_position = np.full(capacity, -1, dtype=np.int64)
        self.written = np.zeros(capacity, dtype=np.int64)
        self.times = np.zeros((capacity, RATE_SAMPLES))

    def slot(self) -> int:
        """A new slot."""
        if self.size == len(self.updates):
            more = len(self.updates)
            self.updates = np.concatenate([self.updates, np.zeros(more, np.int64)])
            self.last_time = np.concatenate([self.last_time, np.full(more, -np.inf)])
            self.last_position = np.concatenate([self.last_position,
                                                 np.full(more, -1, np.int64)])
            self.written = np.concatenate([self.written, np.zeros(more, np.int64)])
            self.times = np.concatenate([self.times, np.zeros((more, RATE_SAMPLES))])
        self.size += 1
        return self.size - 1

    def add(self, slots: np.ndarray, times: np.ndarray, positions: np.ndarray) -> None:
        """Updates in capture order: each one's slot, capture time and store position."""
        distinct, inverse, counts = np.unique(slots, return_inverse=True, return_counts=True)
        order = np.argsort(inverse, kind="stable")
        ends = np.cumsum(counts)
        latest = order[ends - 1]
        self.updates[distinct] += counts
        self.last_time[distinct] = times[latest]
        self.last_position[distinct] = positions[latest]
        rank = np.empty(len(slots), dtype=np.int64)  # each update's among its slot's
        rank[order] = np.arange(len(slots)) - np.repeat(ends - counts, counts)
        keep = rank >= counts[inverse] - RATE_SAMPLES
        kept = slots[keep]
        self.times[kept, (self.written[kept] + rank[keep]) % RATE_SAMPLES] = times[keep]
        self.written[distinct] += counts

    def recent(self, slot: int) -> list[float]:
        """The times of a slot's latest updates, oldest first."""
        written = int(self.written[slot])
        count = min(written, RATE_SAMPLES)
        at = np.arange(written - count, written) % RATE_SAMPLES
        return self.times[slot, at].tolist()


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
    """One CA server (TCP address, named as :func:`decoder.beacons.server_name` names
    it): the circuits to it, and its beacons as the session's judge saw them."""

    __slots__ = ("address", "beacon", "circuits", "last_time")

    def __init__(self, address: str, time: float) -> None:
        self.address = address
        #: The server's beacons (:class:`decoder.BeaconServer`), if it sent any.
        self.beacon: BeaconServer | None = None
        self.circuits = 0
        self.last_time = time

    @property
    def beacons(self) -> int:
        return 0 if self.beacon is None else self.beacon.watch.beacons

    @property
    def beacon_id(self) -> int | None:
        return None if self.beacon is None else self.beacon.watch.last_id

    @property
    def restarts(self) -> int:
        """Times the beacon id went back: the server restarted."""
        return 0 if self.beacon is None else self.beacon.watch.restarts

    @property
    def anomalies(self) -> int:
        """Beacon anomalies (:mod:`decoder.beacons`)."""
        return 0 if self.beacon is None else self.beacon.watch.anomalies

    @property
    def beacon_interval(self) -> float | None:
        """libca's running estimate of the beacon period."""
        return None if self.beacon is None else self.beacon.watch.estimate


class ErrorRow:
    """A problem, the record that shows it, and when."""

    __slots__ = ("record", "text", "kind")

    def __init__(self, record: Record, text: str, kind: ProblemKind | None = None) -> None:
        self.record = record
        self.text = text
        self.kind = kind


class Model:
    """The rows and aggregates the screen shows. See the module docstring.

    ``ring_size``: the rows a live capture keeps (:meth:`live`); ``budget``: bytes of
    batches held in memory before the oldest go to disk."""

    def __init__(self, ring_size: int = 100_000, budget: int | None = DEFAULT_BUDGET) -> None:
        #: Held by the writer for each batch; readers take it for exact snapshots.
        self.lock = threading.Lock()
        self.ring_size = ring_size
        #: The messages table's rows, by position from the capture's first.
        self.store = BatchStore(budget)
        #: Positions of the rows that show a problem.
        self.problem_rows = Positions()
        self.rows = RowReader(self.store, self.problem_rows)
        #: Updates counted in bulk, per channel row; slots of the subscriptions of runs.
        self.bulk = BulkUpdates(self.rows)
        self._run_slots: weakref.WeakKeyDictionary[Any, np.ndarray] = (
            weakref.WeakKeyDictionary())
        #: A commit's updates counted in bulk: (slots, times, positions) per batch.
        self._bulk: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        #: Whether the rows of the records being accounted for are in the store for
        #: good: a channel's last value is then read from its row, not kept as a record.
        self._held = False
        #: What the log's filter keeps (None: every row), and the positions it kept.
        self.row_filter: RowFilter | None = None
        self.view: Positions | None = None
        #: What the pictures show (:mod:`shark.analysis.series`), counted as batches come:
        #: the whole capture's, and the filter's rows' (None without a filter).
        self.rates = Rates()
        self.latencies = Latencies()
        self.view_rates: Rates | None = None
        self.view_latencies: Latencies | None = None
        #: By channel (or, for a subscription whose channel is unknown, subscription).
        self.channels: dict[Channel | Subscription, ChannelRow] = {}
        #: The channels of each circuit not yet let go (:func:`_let_go`), for its end.
        self._circuit_channels: dict[int, dict[Channel, None]] = {}
        self.circuits: dict[int, CircuitRow] = {}
        self.servers: dict[str, ServerRow] = {}
        self.errors: deque[ErrorRow] = deque(maxlen=MAX_ERRORS)
        #: Decides which records show problems (and learns the circuits joined mid-stream).
        self.judge = ProblemJudge(MAX_ROWS)
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

    def live(self) -> None:
        """Keep only the last :attr:`ring_size` rows (a live capture, which may run for
        days): positions go on counting, the rows let go read as None."""
        self.store.keep = self.ring_size

    @property
    def bounded(self) -> bool:
        """Whether the log holds only the latest rows."""
        return self.store.keep is not None

    # -- the writer's side (decoding thread) -------------------------------------------

    def add_batch(self, records: list[Record | UpdateBatch],
                  batches: Sequence[pa.RecordBatch] = ()) -> None:
        """Account for ``records`` (in capture order), and store ``batches``, the rows
        of the messages table made of them.

        The loop is written for speed (locals, the common case of a message on a known
        circuit and channel first): it runs for every record of the capture."""
        if not records and not batches:
            return
        with self.lock:
            if records:
                # (the rows of a capture file stay, those of a live capture's window go)
                self._held = bool(batches) and self.store.keep is None
                self._account(records, self.store.end)
            for batch in batches:
                self._store(batch)
            self.version += 1

    def _account(self, records: list[Record | UpdateBatch], position: int) -> None:
        """Aggregates of ``records``, whose rows will be at ``position`` on."""
        if self.first_time is None:
            self.first_time = records[0].time
        last = records[-1]
        self.last_time = last.time if last.kind is not UPDATES else _last_time(last)
        circuits, channels, bulk = self.circuits, self.channels, self.bulk
        messages = 0
        rows = len(records)
        server = Role.SERVER
        # The values that come as records: their slots, times and rows (-1: the row is
        # not kept, the record is), counted with the bulk updates, in capture order.
        held = self._held
        slots: list[int] = []
        times: list[float] = []
        places: list[int] = []
        for index, record in enumerate(records):
            if record.kind is not MESSAGE:
                if record.kind is UPDATES:
                    if slots:
                        self._bulk.append(_values(slots, times, places))
                        slots, times, places = [], [], []
                    count = self._updates(record, position + index + rows - len(records))
                    messages += count
                    rows += count - 1
                else:
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
                        slot = row.slot
                        if slot < 0:
                            row.bulk, row.slot = bulk, (slot := bulk.slot())
                        slots.append(slot)
                        times.append(time)
                        if held:
                            places.append(position + index + rows - len(records))
                        else:
                            places.append(-1)
                            _own_payload(message)
                            row._last = record
                elif cls in WRITES:
                    row.writes += 1
                    row._last_time = time
                elif cls in _ENDS and type(channel) is Channel and channel.closed is not None:
                    _let_go(channel)
                    self._circuit_channels.get(row.circuit, {}).pop(channel, None)
            elif cls is m.Beacon:
                self._beacon(record, message)
            if record.anomaly is not None or (
                    message.parameter1 != _ECA_NORMAL if cls in STATUS_REPLIES
                    else cls in ALWAYS):
                for found in self.judge.see(record):
                    self._error(record, found)
        self.records += rows
        self.messages += messages
        if slots:
            self._bulk.append(_values(slots, times, places))
        if self._bulk:  # (the updates counted in bulk, all at once)
            self.bulk.add(*(np.concatenate(parts) for parts in zip(*self._bulk, strict=True)))
            self._bulk = []

    def _store(self, batch: pa.RecordBatch) -> None:
        """Keep a batch of rows; note which show problems and which the filter keeps."""
        store = self.store
        position = store.append(batch)
        found = problem_mask(batch, self.judge.midstream)
        if found.any():
            self.problem_rows.append(np.flatnonzero(found) + position)
        self.rates.add(batch, errors=found)
        self.latencies.add(batch)
        if self.view is not None and self.row_filter is not None:
            kept = self.row_filter(batch)
            self.view.append(np.flatnonzero(kept) + position)
            _count_view(self.view_rates, self.view_latencies, batch, kept, found)
        if store.start:  # (a live capture's window moved on)
            self.problem_rows.trim(store.start)
            if self.view is not None:
                self.view.trim(store.start)

    def _updates(self, batch: UpdateBatch, position: int) -> int:
        """Account for a batch of monitor updates the session attributed in bulk (each
        of a known subscription of a named channel), whose rows are at ``position``
        on: counted per channel row in :attr:`bulk`; the updates whose status is not
        ECA_NORMAL as records, for the errors. Returns the updates."""
        run = batch.run
        start, stop = batch.start, batch.stop
        count = stop - start
        if count <= 0 or run is None:
            return 0
        circuit = self.circuits.get(batch.circuit)
        if circuit is None:
            circuit = self._new_circuit(batch)
        if circuit.state is None and self.session is not None:
            circuit.state = self.session.circuits.get(batch.circuit)
        times = run.per_message("time", _run_times)[start:stop]
        circuit.messages += count
        circuit.bytes += batch.size
        circuit.last_time = float(times[-1])
        which = run.subscription[start:stop]
        slots = self._slots(run, batch)
        known = which >= 0
        if not known.all():  # (not attributed in bulk: none, by the session's rules)
            which, times = which[known], times[known]
        self._bulk.append((slots[which], times, position + np.flatnonzero(known)))
        failed = np.flatnonzero(run.parameter1[start:stop] != _ECA_NORMAL)
        for at in failed.tolist():  # (rare: a monitor's failed update)
            record = batch.part(start + at, start + at + 1).records()[0]
            for found in self.judge.see(record):
                self._error(record, found)
        return count

    def _slots(self, run: Any, batch: UpdateBatch) -> np.ndarray:
        """The slot in :attr:`bulk` of each subscription the session met in ``run``
        (``run.subscriptions``, which grows as its segments are attributed)."""
        slots = self._run_slots.get(run)
        subscriptions = run.subscriptions
        if slots is not None and len(slots) == len(subscriptions):
            return slots
        have = 0 if slots is None else len(slots)
        channels, bulk = self.channels, self.bulk
        more = []
        for subscription in subscriptions[have:]:
            key = subscription.channel if subscription.channel is not None else subscription
            row = channels.get(key)
            if row is None:
                row = self._new_channel(batch, key)
            if row.slot < 0:
                row.bulk, row.slot = bulk, bulk.slot()
            more.append(row.slot)
        added = np.array(more, dtype=np.int64)
        slots = added if slots is None else np.concatenate([slots, added])
        self._run_slots[run] = slots
        return slots

    def _other(self, record: Record) -> None:
        """Account for a record that is not a message: circuit open and close, gaps,
        undecodable bytes."""
        kind = record.kind
        if kind is OPEN:
            if record.reason == "syn":  # src is the client
                if record.circuit not in self.circuits:
                    self._new_circuit(record)
            # else which end is the server: the first message will tell
        elif kind is CLOSE:
            circuit = self.circuits.get(record.circuit)
            if circuit is not None and circuit.closed is None:
                circuit.closed = record.reason or "closed"
                circuit.last_time = record.time
            channels = self._circuit_channels.get(record.circuit, {})
            for channel in [c for c in channels if c.closed is not None]:  # closed with it
                _let_go(channel)  # (at the second end of a circuit closed one way first)
                del channels[channel]
            if not channels:
                self._circuit_channels.pop(record.circuit, None)
        elif kind is GAP:
            self.gaps += 1
            self.gap_bytes += record.size
        for found in self.judge.see(record):  # (OPEN: a circuit joined mid-stream?)
            self._error(record, found)

    @property
    def midstream(self) -> set[int]:
        """Circuits the capture joined after they were set up."""
        return self.judge.midstream

    def problem(self, record: Record) -> str | None:
        """:func:`problem`, knowing which circuits were joined mid-stream."""
        return problem(record, self.midstream)

    def is_problem(self, record: Record) -> bool:
        """Whether ``record`` shows a problem, knowing which circuits were joined
        mid-stream."""
        return is_problem(record, self.midstream)

    def _error(self, record: Record, found: Problem) -> None:
        self.error_count += 1
        if record.message is not None:
            _own_payload(record.message)
        self.errors.append(ErrorRow(record, found.text, found.kind))

    def _new_circuit(self, record: Record | UpdateBatch) -> CircuitRow:
        client, server = record.src, record.dst
        if record.kind in (MESSAGE, UPDATES) and record.sender is Role.SERVER:
            client, server = server, client
        circuit = self.circuits[record.circuit] = CircuitRow(
            record.circuit, client, server, record.time)
        self.rows_version += 1
        if self.session is not None:
            circuit.state = self.session.circuits.get(record.circuit)
        self._server(server, record.time).circuits += 1
        _bound(self.circuits, lambda row: (row.closed is None, row.last_time))
        return circuit

    def _new_channel(self, record: Record | UpdateBatch, key: Channel | Subscription
                     ) -> ChannelRow:
        client, server = record.src, record.dst
        if record.sender is Role.SERVER:
            client, server = server, client
        if isinstance(key, Subscription):
            row = ChannelRow(None, record.circuit, server, client, record.time, key)
        else:
            row = ChannelRow(key, record.circuit, server, client, record.time)
            if record.circuit is not None:
                self._circuit_channels.setdefault(record.circuit, {})[key] = None
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
        """A beacon: its server's row, which shows what the session's judge made of it."""
        name = server_name(beacon.address, beacon.server_port, record.src.rpartition(":")[0])
        row = self._server(name, record.time)
        if row.beacon is None and self.session is not None:
            row.beacon = self.session.discovery.beacons.get(name)
        row.last_time = record.time

    # -- the reader's side (screen) -----------------------------------------------------

    def set_filter(self, row_filter: RowFilter | None,
                   current: Callable[[], bool] = lambda: True) -> bool:
        """Show only the rows ``row_filter`` keeps (None: all): every row held is
        filtered again, a batch at a time. The rows held when it starts are filtered
        without the lock (batches never change: the decoder and the screen go on), those
        that came meanwhile under it, and the result is installed then, unless
        ``current()`` says it is no longer wanted (a newer filter came): False then."""
        if row_filter is None:
            with self.lock:
                if not current():
                    return False
                self.row_filter = self.view = None
                self.view_rates = self.view_latencies = None
                return True
        with self.lock:
            end = self.store.end
        view = Positions()
        rates, latencies = Rates(), Latencies()

        def count(position: int, batch: pa.RecordBatch, problem_rows: np.ndarray) -> None:
            kept = row_filter(batch)
            view.append(np.flatnonzero(kept) + position)
            problems = np.zeros(batch.num_rows, dtype=bool)
            low, high = np.searchsorted(problem_rows, [position, position + batch.num_rows])
            problems[problem_rows[low:high] - position] = True
            _count_view(rates, latencies, batch, kept, problems)

        problem_rows = self._problem_positions()
        for position, batch in self.store.batches(0, end):
            count(position, batch, problem_rows)
            if not current():
                return False
        with self.lock:
            if not current():
                return False
            problem_rows = self._problem_positions()
            for position, batch in self.store.batches(end):
                count(position, batch, problem_rows)
            if self.store.start:  # (a live capture's window moved on meanwhile)
                view.trim(self.store.start)
            self.row_filter, self.view = row_filter, view
            self.view_rates, self.view_latencies = rates, latencies
        return True

    def _problem_positions(self) -> np.ndarray:
        """The store positions of the rows with problems, in one sorted array."""
        return np.concatenate([*self.problem_rows.all(), np.zeros(0, np.int64)])

    def log_rows(self) -> LogRows:
        """The rows the log shows now (all, or the filter's), as a sequence that keeps
        its length while more arrive."""
        with self.lock:
            view = self.view
            if view is None:
                return LogRows(self.rows, None, self.store.start, self.store.end)
            return LogRows(self.rows, view, view.start, view.end)

    def shown_rows(self) -> int:
        """Rows the log could show now (those held that the filter keeps)."""
        view = self.view
        return len(self.store) if view is None else len(view)

    def raw(self, position: int) -> bytes | None:
        """The bytes of the message at ``position`` (None: none, or not held)."""
        found = self.store.locate(position)
        if found is None:
            return None
        batch, index = found
        if "raw" not in batch.schema.names:
            return None
        return batch.column("raw")[index].as_py()

    def seek(self, column: str, value: float) -> int | None:
        """The position of the first row held whose ``frame`` is ``value`` or more, or
        whose ``time`` is ``value`` seconds after the capture's first or more; None if
        there is none (rows are in capture order: each batch is looked at by its last
        row, the one found searched)."""
        if column == "time":
            zero = seconds_ns(self.first_time) if self.first_time is not None else 0
            value = (zero or 0) + round(value * 1e9)
        for position, batch in self.store.batches():
            values = batch.column(column)
            if column == "time":
                values = values.cast(pa.int64())
            values = values.to_numpy()
            if not len(values) or values.max() < value:
                continue
            return position + int(np.flatnonzero(values >= value)[0])
        return None

    def find(self, record: Record) -> int | None:
        """The position of the row held that ``record`` (of a pane) was made into: the
        first of its frame with its command and PV, else with its command; None if
        none."""
        command, pv = record.command_name, record.pv
        for position, batch in self.store.batches():
            frames = batch.column("frame").to_numpy()
            if not len(frames) or frames.min() > record.frame or frames.max() < record.frame:
                continue
            found = None
            for index in np.flatnonzero(frames == record.frame).tolist():
                if batch.column("command")[index].as_py() == command:
                    if batch.column("pv")[index].as_py() == pv:
                        return position + index
                    found = position + index if found is None else found
            if found is not None:
                return found
        return None

    def is_problem_row(self, position: int) -> bool:
        """Whether the row at ``position`` shows a problem."""
        return self.problem_rows.index_of(position) is not None

    def searches(self) -> list[Search]:
        """The searches seen, unanswered first, then the most retried, then by name."""
        if self.session is None:
            return []
        return search_rows(list(self.session.discovery.searches.values()))


def _count_view(rates: Rates | None, latencies: Latencies | None, batch: pa.RecordBatch,
                kept: np.ndarray, problems: np.ndarray) -> None:
    """Count the rows of ``batch`` the filter ``kept`` in the filter's pictures."""
    if rates is not None:
        rates.add(batch, kept, errors=problems)
    if latencies is not None:
        latencies.add(batch, kept)


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
def _values(slots: list[int], times: list[float], places: list[int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values that came as records, for :meth:`BulkUpdates.add`."""
    return (np.array(slots, dtype=np.int64), np.array(times, dtype=np.float64),
            np.array(places, dtype=np.int64))


def _run_times(run: Any) -> np.ndarray:
    """The capture time of each packet of a run (per message: ``run.per_message``, the
    same the tables use)."""
    return np.array(run.times, dtype=np.float64)


def _last_time(batch: UpdateBatch) -> float:
    """The capture time of a batch's last packet."""
    return batch.run.times[batch.stop_packet - 1] if batch.run is not None else batch.time


#: The messages after which their channel is gone: its row stays for the Channels pane.
_ENDS = frozenset({m.ClearChannelResponse, m.ServerDisconnResponse, m.CreateChFailResponse})


def _let_go(channel: Channel) -> None:
    """Let a closed channel's row stop holding the records of the messages that created,
    wrote, connected and closed it (the session keeps them as the channel's contexts;
    the tables read them as the channel closes, the screen never): a capture with
    channels created and cleared all along would otherwise keep three records or more
    of each, some 1.4 kB a channel (20 MB of the 2 M-message storm benchmark). The
    stream has made its rows of those records by the time the model sees them."""
    channel.request = channel.last_write = None
    if channel.connected is not None:
        channel.connected = _GONE
    channel.closed = _GONE


#: What a let-go channel's ``connected`` and ``closed`` hold: true, as they were.
_GONE = "let go"


def _bound(rows: dict, activity: Callable[[Any], Any]) -> None:
    """Forget the least active tenth of ``rows`` once there are more than MAX_ROWS."""
    if len(rows) <= MAX_ROWS:
        return
    ranked = sorted(rows.items(), key=lambda item: activity(item[1]))
    for key, _row in ranked[: len(rows) // 10]:
        del rows[key]
