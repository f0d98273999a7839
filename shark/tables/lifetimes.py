"""The ``channels`` and ``subscriptions`` tables: a row per lifetime of each.

The session's circuits already follow every channel and subscription
(:class:`decoder.Channel`, :class:`decoder.Subscription`, attached to the records they
concern); this module notes where each begins (a CREATE_CHAN or EVENT_ADD request, or
the anomaly of a channel or subscription met mid-stream), counts the updates and their
bytes, and turns each into a row when it ends: cleared, failed, dropped by the server,
cancelled, or with its circuit. Rows read the decoder's objects when made, so a name
the session recovers later is in the row.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np

from decoder import AccessRights, ChannelState, EventMask
from decoder import messages as m
from decoder.dbr import dbr_name
from shark.extract.record import CLOSE, Record
from shark.tables.aggregate import Aggregate, Finished, client_server
from shark.tables.chunk import Chunk, Vocabularies, form_mask
from shark.tables.grouping import group
from shark.tables.schema import (
    CATEGORY,
    FLOAT,
    INT64,
    NUINT16,
    NUINT32,
    TIME,
    UINT32,
    Column,
    TableSchema,
)

__all__ = ["CHANNELS", "SUBSCRIPTIONS", "Lifetimes"]

_ENDPOINTS = (
    Column("circuit", UINT32, "TCP circuit number"),
    Column("client", CATEGORY, "client's ip:port"),
    Column("server", CATEGORY, "server's ip:port"),
    Column("pv", CATEGORY, "PV name (null when the capture does not tell)"),
)
_ENDED = Column("ended", CATEGORY, "cleared, failed (CREATE_CH_FAIL), server disconnected "
                                   "(SERVER_DISCONN), circuit closed, capture end; null if "
                                   "still open")

CHANNELS = TableSchema("channels", "one row per channel lifetime", [
    *_ENDPOINTS,
    Column("cid", NUINT32, "client's id for the channel"),
    Column("sid", NUINT32, "server's id for the channel"),
    Column("native_type", CATEGORY, "native DBR type the server reported"),
    Column("native_count", NUINT32, "native element count"),
    Column("access", CATEGORY, "last access rights: none, read, write, read/write"),
    Column("access_changes", INT64, "times the access rights changed after the first grant"),
    Column("created", TIME, "CREATE_CHAN request"),
    Column("connected", TIME, "CREATE_CHAN reply"),
    Column("connect_latency", FLOAT, "seconds from request to reply"),
    Column("closed", TIME, "when it ended"),
    _ENDED,
])

SUBSCRIPTIONS = TableSchema("subscriptions", "one row per subscription (EVENT_ADD)", [
    *_ENDPOINTS,
    Column("subscription", UINT32, "subscription id"),
    Column("data_type", CATEGORY, "DBR type asked for"),
    Column("count", NUINT32, "element count asked for (0: the server's current count)"),
    Column("mask", NUINT16, "event mask (DBE_VALUE 1, LOG 2, ALARM 4, PROPERTY 8)"),
    Column("events", CATEGORY, "the mask by name, e.g. VALUE|ALARM"),
    Column("start", TIME, "EVENT_ADD request"),
    Column("first_update", TIME, "first update"),
    Column("last_update", TIME, "last update"),
    Column("end", TIME, "when it ended"),
    Column("updates", INT64, "updates (EVENT_ADD replies with a value)"),
    Column("rate", FLOAT, "mean updates per second from the first update to the last"),
    Column("bytes", INT64, "bytes of the updates on the wire"),
    Column("first_update_latency", FLOAT, "seconds from the request to the first update"),
    Column("ended", CATEGORY, "cancelled, or how its channel or circuit ended; null if "
                              "still open"),
])

_NEW_CHANNEL = form_mask(lambda f: f is m.CreateChanRequest)
_NEW_SUBSCRIPTION = form_mask(lambda f: f is m.EventAddRequest)
_UPDATE = form_mask(lambda f: f is m.EventAddResponse)
_CANCELLED = form_mask(lambda f: f is m.EventCancelResponse)
_CHANNEL_ENDS = form_mask(lambda f: f in (m.ClearChannelResponse, m.CreateChFailResponse,
                                          m.ServerDisconnResponse))
_CIRCUIT_ENDS = form_mask(lambda f: f is CLOSE)
#: Anomalies whose record carries a channel or subscription the capture had not shown.
_MET_CHANNEL = ("unknown SID", "unknown CID")
_MET_SUBSCRIPTION = ("unknown subscription",)
_ACCESS = {AccessRights.NONE: "none", AccessRights.READ: "read", AccessRights.WRITE: "write",
           AccessRights.READ | AccessRights.WRITE: "read/write"}


def _time(context: object) -> float | None:
    return context.time if isinstance(context, Record) else None


def _ended(state: ChannelState, closed: object) -> str | None:
    """How a channel ended, from its state and the record that closed it."""
    if state is ChannelState.CLEARED:
        return "cleared"
    if state is ChannelState.FAILED:
        return "failed"
    if state is not ChannelState.DISCONNECTED or not isinstance(closed, Record):
        return None
    if closed.kind is CLOSE:
        return "capture end" if closed.reason == "end of capture" else "circuit closed"
    return "server disconnected"


class _Lifetime:
    """What a channel or subscription row needs besides the decoder's object (and, for a
    subscription, its slot in the :class:`_Tally` of its updates)."""

    __slots__ = ("thing", "circuit", "client", "server", "slot")

    def __init__(self, thing: object, record: Record) -> None:
        self.thing = thing
        self.circuit = record.circuit
        self.client, self.server = client_server(record)
        self.slot = -1

    def where(self) -> tuple[int, str, str]:
        return self.circuit, self.client, self.server


class _Tally:
    """The updates of live subscriptions, a slot each: times of the first and the last
    (NaN before any), how many, their bytes. Arrays, so that a chunk's updates are
    counted in a few numpy operations whatever the number of subscriptions."""

    def __init__(self) -> None:
        self.first = np.full(64, np.nan)
        self.last = np.full(64, np.nan)
        self.updates = np.zeros(64, dtype=np.int64)
        self.bytes = np.zeros(64, dtype=np.int64)
        self._free: list[int] = []
        self._used = 0

    def take(self) -> int:
        """A slot for a new subscription, with nothing counted."""
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._used
            self._used += 1
            if slot == len(self.updates):
                self.first, self.last = (np.concatenate((a, np.full(slot, np.nan)))
                                         for a in (self.first, self.last))
                self.updates, self.bytes = (np.concatenate((a, np.zeros(slot, dtype=np.int64)))
                                            for a in (self.updates, self.bytes))
        self.first[slot] = self.last[slot] = np.nan
        self.updates[slot] = self.bytes[slot] = 0
        return slot

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def count(self, slots: np.ndarray, first: np.ndarray, last: np.ndarray,
              updates: np.ndarray, size: np.ndarray) -> None:
        """Add updates to distinct ``slots``: their first and last times, counts, bytes."""
        unset = np.isnan(self.first[slots])
        self.first[slots[unset]] = first[unset]
        self.last[slots] = last
        self.updates[slots] += updates
        self.bytes[slots] += size

    def read(self, slot: int) -> tuple[float | None, float | None, int, int]:
        first, last = float(self.first[slot]), float(self.last[slot])
        return (None if first != first else first, None if last != last else last,
                int(self.updates[slot]), int(self.bytes[slot]))


class _Live:
    """Live lifetimes by id() of the decoder's object (which they hold, so that the id
    is not reused while they are here), and by a group: circuit or channel. A group
    keeps its members in the order they came (a dict, not a set of ids, whose order
    would follow the addresses of objects: rows must not change from run to run)."""

    def __init__(self) -> None:
        self.by_id: dict[int, _Lifetime] = {}
        self.groups: dict[object, dict[int, None]] = {}

    def add(self, thing: object, record: Record, group: object) -> _Lifetime:
        lifetime = self.by_id.get(id(thing))
        if lifetime is None:
            lifetime = self.by_id[id(thing)] = _Lifetime(thing, record)
            self.groups.setdefault(group, {})[id(thing)] = None
        return lifetime

    def pop(self, thing: object, group: object) -> _Lifetime | None:
        members = self.groups.get(group)
        if members is not None:
            members.pop(id(thing), None)
            if not members:
                del self.groups[group]
        return self.by_id.pop(id(thing), None)

    def members(self, group: object) -> list[_Lifetime]:
        return [self.by_id[key] for key in self.groups.get(group, ())]


class Lifetimes(Aggregate):
    schemas = (CHANNELS, SUBSCRIPTIONS)

    def __init__(self, vocabularies: Vocabularies, max_rows: int) -> None:
        super().__init__(vocabularies, max_rows)
        #: Channels grouped by circuit, subscriptions by channel id (None: not known).
        self._channels = _Live()
        self._subscriptions = _Live()
        self._tally = _Tally()
        #: Lifetimes of subscriptions begun and ended so far, and per run the slots of
        #: its subscriptions as of a count of them (:meth:`_run_slots`).
        self._changes = 0
        self._run_slot_cache: weakref.WeakKeyDictionary[object, tuple[int, int, np.ndarray]] = (
            weakref.WeakKeyDictionary())
        self._finished = {CHANNELS.name: Finished(max_rows),
                          SUBSCRIPTIONS.name: Finished(max_rows)}

    def update(self, chunk: Chunk) -> None:
        records = chunk.records
        for row in chunk.rows(_NEW_CHANNEL):
            self._add_channel(records[row].channel, records[row])
        for row in chunk.rows(_NEW_SUBSCRIPTION):
            self._add_subscription(records[row].subscription, records[row])
        for row in chunk.anomalies:
            record = records[row]
            if record.anomaly.kind in _MET_CHANNEL:
                self._add_channel(record.channel, record)
            elif record.anomaly.kind in _MET_SUBSCRIPTION:
                self._add_subscription(record.subscription, record)
        self._count_updates(chunk)
        ends = chunk.rows(_CANCELLED | _CHANNEL_ENDS | _CIRCUIT_ENDS)
        for row, form in zip(ends.tolist(), chunk.form[ends].tolist(), strict=True):
            record = records[row]
            if _CANCELLED[form]:
                self._end_subscription(record.subscription, record.time, "cancelled")
            elif _CHANNEL_ENDS[form]:
                self._end_channel(record.channel)
            else:
                self._end_circuit(record)

    def _add_channel(self, channel: object, record: Record) -> None:
        if channel is not None:
            self._channels.add(channel, record, record.circuit)

    def _add_subscription(self, subscription: object, record: Record) -> _Lifetime | None:
        if subscription is None:
            return None
        channel = subscription.channel
        self._changes += 1
        lifetime = self._subscriptions.add(subscription, record, None if channel is None
                                           else id(channel))
        if lifetime.slot < 0:
            lifetime.slot = self._tally.take()
        return lifetime

    def _count_updates(self, chunk: Chunk) -> None:
        rows = chunk.rows(_UPDATE)
        if not len(rows):
            return
        slots = self._slots(chunk, rows)
        if slots is None:  # a subscription not met before (or finished)
            self._count_updates_by_id(chunk, rows)
            return
        counted = slots >= 0
        rows, slots = rows[counted], slots[counted]
        if not len(rows):
            return
        inverse, distinct, first = group(slots)
        last = np.zeros(len(first), dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(rows)))
        times = chunk.time[rows]
        self._tally.count(distinct, times[first], times[last],
                          np.bincount(inverse, minlength=len(first)),
                          np.bincount(inverse, weights=chunk.size_bytes[rows],
                                      minlength=len(first)).astype(np.int64))

    def _slots(self, chunk: Chunk, rows: np.ndarray) -> np.ndarray | None:
        """The tally slot of the subscription of each of ``rows`` (-1 for none: not
        counted); None if a subscription has no lifetime here. Records one at a time,
        updates in bulk through their run's slots (:meth:`_run_slots`)."""
        slots = np.full(chunk.size, -1, dtype=np.int64)
        by_id = self._subscriptions.by_id
        records = chunk.records
        mine = rows[chunk.is_record[rows]]
        for row in mine.tolist():
            subscription = records[row].subscription
            if subscription is not None:
                lifetime = by_id.get(id(subscription))
                if lifetime is None:
                    return None
                slots[row] = lifetime.slot
        for run, run_rows, indexes in chunk.runs:
            found = self._run_slots(run)[run.subscription[indexes]]
            if (found < 0).any():
                return None
            slots[run_rows] = found
        return slots[rows]

    def _run_slots(self, run: object) -> np.ndarray:
        """The tally slot of each subscription of a :class:`shark.extract.bulk.Run`
        (then -1, for its -1), -1 for those without a lifetime: looked up again only
        once lifetimes of subscriptions began or ended, or the run met more."""
        count = len(run.subscriptions)
        cached = self._run_slot_cache.get(run)
        if cached is not None and cached[0] == self._changes and cached[1] == count:
            return cached[2]
        by_id = self._subscriptions.by_id
        lifetimes = [by_id.get(id(subscription)) for subscription in run.subscriptions]
        slots = np.fromiter([-1 if lifetime is None else lifetime.slot
                             for lifetime in lifetimes] + [-1], np.int64, count + 1)
        self._run_slot_cache[run] = (self._changes, count, slots)
        return slots

    def _count_updates_by_id(self, chunk: Chunk, rows: np.ndarray) -> None:
        """:meth:`_count_updates` with subscriptions told apart by id, those met for
        the first time given lifetimes (from their first update's record)."""
        records = chunk.records
        inverse, ids, first = group(chunk.subscription_ids[rows])
        last = np.zeros(len(first), dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(rows)))
        by_id = self._subscriptions.by_id
        lifetimes = [by_id.get(key) for key in ids.tolist()]
        for index in [i for i, lifetime in enumerate(lifetimes) if lifetime is None]:
            # not met before (or finished): the record tells more
            record = records[rows[first[index]]]
            lifetimes[index] = self._add_subscription(record.subscription, record)
        slots = np.fromiter([-1 if lifetime is None else lifetime.slot
                             for lifetime in lifetimes], np.int64, len(lifetimes))
        known = slots >= 0
        times = chunk.time[rows]
        self._tally.count(
            slots[known], times[first[known]], times[last[known]],
            np.bincount(inverse, minlength=len(first))[known],
            np.bincount(inverse, weights=chunk.size_bytes[rows],
                        minlength=len(first)).astype(np.int64)[known])

    def _end_subscription(self, subscription: object, time: float | None, how: str | None
                          ) -> None:
        if subscription is None:  # the end of one never created: no row to end (the
            return  # message's row carries the session's anomaly, "response without request")
        channel = subscription.channel
        self._changes += 1
        lifetime = self._subscriptions.pop(subscription, None if channel is None
                                           else id(channel))
        if lifetime is not None:
            self._finished[SUBSCRIPTIONS.name].add(self._subscription_row(lifetime, time, how))
            self._tally.release(lifetime.slot)

    def _end_channel(self, channel: object) -> None:
        lifetime = self._channels.by_id.get(id(channel))
        if lifetime is None:
            return
        self._channels.pop(channel, lifetime.circuit)
        self._finished[CHANNELS.name].add(self._channel_row(lifetime))
        how = _ended(channel.state, channel.closed)
        for sub in self._subscriptions.members(id(channel)):
            self._end_subscription(sub.thing, _time(channel.closed), how)

    def _end_circuit(self, close: Record) -> None:
        """Once the session has closed a circuit, what was open on it ends with it;
        subscriptions of channels never seen created too."""
        for lifetime in self._channels.members(close.circuit):
            if lifetime.thing.state is ChannelState.DISCONNECTED:
                self._end_channel(lifetime.thing)
        how = "capture end" if close.reason == "end of capture" else "circuit closed"
        for lifetime in self._subscriptions.members(None):
            if lifetime.circuit == close.circuit and not lifetime.thing.active:
                self._end_subscription(lifetime.thing, close.time, how)

    @staticmethod
    def _channel_row(lifetime: _Lifetime) -> tuple:
        channel = lifetime.thing
        created = _time(channel.request.context) if channel.request is not None else None
        connected = _time(channel.connected)
        latency = None if created is None or connected is None else connected - created
        native = None if channel.native_type is None else dbr_name(channel.native_type)
        access = None if channel.access_rights is None else _ACCESS[channel.access_rights]
        return (*lifetime.where(), channel.name, channel.cid, channel.sid, native,
                channel.native_count, access, channel.access_changes, created, connected,
                latency, _time(channel.closed), _ended(channel.state, channel.closed))

    def _subscription_row(self, lifetime: _Lifetime, end: float | None, how: str | None
                          ) -> tuple:
        sub = lifetime.thing
        start = _time(sub.request.context) if sub.request is not None else None
        first, last, updates, size = self._tally.read(lifetime.slot)
        rate = (updates - 1) / (last - first) if first is not None and last > first else None
        mask = sub.mask
        events = None if mask is None else EventMask(mask).name or "NONE"
        return (*lifetime.where(), sub.channel.name if sub.channel else None,
                sub.subscriptionid, dbr_name(sub.data_type), sub.data_count, mask, events,
                start, first, last, end, updates, rate, size,
                None if start is None or first is None else first - start, how)

    def rows(self, name: str) -> Iterable[tuple]:
        yield from self._finished[name].rows
        if name == CHANNELS.name:
            yield from map(self._channel_row, self._channels.by_id.values())
        else:
            for lifetime in self._subscriptions.by_id.values():
                yield self._subscription_row(lifetime, None, None)
