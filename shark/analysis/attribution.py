"""Following a capture's state: which PV each message concerns, which request it answers.

A :class:`Session` takes the records of :class:`shark.extract.reader.CaReader` in order and
fills their attribution fields (:class:`shark.extract.record.Record`): it keeps one
:class:`decoder.Circuit` per TCP circuit and one :class:`decoder.Discovery` for UDP,
and hands each of them the record itself as the message's context, so that a
response finds its request record and the latency between the two.

Names where the capture began mid-circuit: a channel whose CREATE_CHAN was not
captured is known by SID (or CID) only. Its name is recovered when the capture
allows: libca searches with the channel's CID, so a UDP search from the client's
host with that CID names it once the CID is known (from CREATE_CHAN's reply,
ACCESS_RIGHTS, CLEAR_CHANNEL or an ERROR). Records that came before stay unnamed.

Every libca process numbers its channels from 1, so clients on one host search with
the same CIDs for different names. A circuit does not say which client socket it
belongs to; so when the clients of a host searched a CID for different names, the
latest search is taken only for a channel being created (CREATE_CHAN's reply and
ACCESS_RIGHTS follow the search reply at once), and otherwise the channel stays
unnamed rather than named after another client's channel.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from decoder import Circuit, Discovery, Role
from decoder import messages as m
from decoder.display import TEACHING_TYPES
from decoder.framing import DEFAULT_MAX_PAYLOAD
from shark.capture.files import read_blocks, read_frames
from shark.extract import reader as _reader
from shark.extract.bulk import UPDATES, Segment, UpdateBatch
from shark.extract.reader import CaReader
from shark.extract.record import CLOSE, MESSAGE, OPEN, Record

__all__ = ["Session", "read"]

_LIFECYCLE = (OPEN, CLOSE)
#: Search names remembered per (client host, CID) for naming mid-stream channels.
MAX_SEARCH_NAMES = 1_000_000
#: Client sockets remembered per (client host, CID): processes that searched it.
MAX_SEARCHERS = 16
#: Messages that come as a channel is created, right after its search was answered.
_CREATING = (m.CreateChanResponse, m.AccessRightsResponse)
#: Per DBR type (a header's 16 bits): whether a channel learns from a payload of it
#: how its values read (:mod:`decoder.display`).
_TEACHES = np.zeros(1 << 16, dtype=bool)
_TEACHES[sorted(TEACHING_TYPES)] = True
#: The least of them: a segment of updates of types below it all (most monitors) has
#: nothing to teach, told by its largest type, with no look per update.
_LEAST_TEACHING = min(TEACHING_TYPES)


class Session:
    """The state of everything a capture showed, updated record by record."""

    def __init__(self) -> None:
        #: The circuits not yet closed (a closed one is forgotten: memory stays bounded).
        self.circuits: dict[int, Circuit] = {}
        #: CLOSE records of circuits with one direction ended.
        self._half_closed: dict[int, Record] = {}
        self.discovery = Discovery()
        #: (client host, CID) -> {client socket: the name it searched}, latest last.
        self._search_names: dict[tuple[str, int], dict[str, str]] = {}
        #: Circuit number -> (the circuit, its ``subscriptions_changed``, subscription ids,
        #: their subscriptions) of the latest segment of updates whose subscriptions were
        #: all taken in bulk (:meth:`_resolve`): while the circuit's subscriptions stay as
        #: they were, a segment of the same ids has them all taken in bulk again.
        self._resolved: dict[int, tuple[Circuit, int, np.ndarray, list]] = {}

    def records(self, records: Iterable[Record], lifecycle: bool = False) -> Iterator[Record]:
        """Attribute each record and pass it on; OPEN and CLOSE records (which the
        session needs from the reader) only with ``lifecycle``."""
        attribute = self.attribute
        for record in self._starting(records):
            attribute(record)
            if lifecycle or record.kind not in _LIFECYCLE:
                yield record

    def batches(self, batches: Iterable[list[Record]], lifecycle: bool = False
                ) -> Iterator[Record]:
        """:meth:`records` for the lists of :meth:`shark.extract.reader.CaReader.batches`: each
        list is attributed, then its records passed on. Update batches of a bulk reader
        (:mod:`shark.extract.bulk`) are passed on as they are when the session could attribute
        them in bulk, as their records otherwise."""
        attributed = self._attributed
        for batch in self._starting(batches, batched=True):
            marks, split = attributed(batch)
            if split:  # (rare: most batches are taken in bulk, and the list stays as it is)
                batch = [item for record in batch for item in (
                    record.expanded if record.kind is UPDATES and not record.bulk
                    else (record,)) if lifecycle or item.kind not in _LIFECYCLE]
            elif marks and not lifecycle:
                batch = [r for r in batch if r.kind not in _LIFECYCLE]
            yield from batch

    def _starting(self, items: Iterable, batched: bool = False) -> Iterator:
        """``items`` as they are, having told the discovery state when the capture begins
        (its first record: libca's program start, for the beacon rules).

        A generator that lets go of the first item once passed on: the first list of a
        bulk reader can hold megabytes of a server's bytes, which a ``chain((first,),
        items)`` would keep alive until the end of the capture."""
        items = iter(items)
        for first in items:
            if not batched or first:  # (an empty batch stands for no record)
                self.discovery.start((first[0] if batched else first).time)
                yield first
                break
            yield first
        first = None
        yield from items

    def _updates(self, batch: UpdateBatch) -> bool:
        """Attribute an update batch: in bulk as far as its segment allows, the rest as
        its records (its ``expanded``). Whether it stays whole, taken in bulk."""
        segment = batch.segment
        if segment.unusable is None:
            self._resolve(segment)
        unusable = segment.unusable
        at = bisect_left(unusable, batch.start)
        whole = at == len(unusable) or unusable[at] >= batch.stop
        if whole:
            batch.bulk = True
            batch.read_as_now()
        else:
            batch.expanded = batch.split()
            self._attributed(batch.expanded, parts=True)
        if batch.stop_packet == segment.stop:
            segment.count_updates()
        return whole

    def _resolve(self, segment: Segment) -> None:
        """Decide which updates of a segment are attributed in bulk: those of known
        subscriptions of named channels, but for each subscription's first (it answers
        the EVENT_ADD request: see :mod:`shark.extract.bulk`)."""
        run = segment.run
        first, stop = int(run.bounds[segment.first]), int(run.bounds[segment.stop])
        circuit = self.circuits.get(segment.circuit)
        if circuit is None:
            segment.unusable = list(range(first, stop))  # (``run.subscription`` stays -1)
            return
        ids = run.parameter2[first:stop]
        distinct, inverse, counts = _distinct(ids)
        changed = circuit.subscriptions_changed
        # A subscription taken in bulk once is taken again while it is the circuit's:
        # its channel keeps its name, its count of updates only grows.
        resolved = self._resolved.get(segment.circuit)
        if (resolved is not None and resolved[0] is circuit and resolved[1] == changed
                and np.array_equal(resolved[2], distinct)):
            subscriptions = resolved[3]
            usable = None
        else:
            known = circuit.subscriptions.get
            subscriptions = [known(i) for i in distinct.tolist()]
            # Per subscription, in one pass: 0 unknown or of a channel with no name,
            # 1 known and updated before, 2 known and not yet updated.
            usable = np.fromiter(
                [0 if s is None or s.channel is None or s.channel.name is None
                 else 1 if s.updates else 2 for s in subscriptions], np.int8, len(distinct))
        offset = len(run.subscriptions)
        if usable is None or (usable == 1).all():  # the common case: all of them
            if usable is not None:
                self._resolved[segment.circuit] = (circuit, changed, distinct, subscriptions)
            unusable = None
            segment.updates = (subscriptions, counts)
            np.add(inverse, offset, out=run.subscription[first:stop], casting="unsafe")
            segment.unusable = []
        else:
            named = usable > 0
            unusable = ~named[inverse]
            fresh = usable == 2
            if fresh.any():  # (rare: the first updates after subscribing)
                unusable[np.unique(inverse, return_index=True)[1][fresh]] = True
            segment.updates = (subscriptions,
                               np.bincount(inverse[~unusable], minlength=len(distinct)))
            run.subscription[first:stop] = np.where(unusable, -1, inverse + offset)
            segment.unusable = (np.flatnonzero(unusable) + first).tolist()
        run.subscriptions += subscriptions
        kinds = run.data_type[first:stop]
        if not len(kinds) or int(kinds.max()) < _LEAST_TEACHING:
            return
        teaching = _TEACHES[kinds]
        if unusable is not None:
            teaching &= ~unusable
        if teaching.any():  # GR/CTRL updates: each subscription's last teaches its channel
            latest = np.full(len(distinct), -1, dtype=np.int64)
            np.maximum.at(latest, inverse[teaching], np.flatnonzero(teaching))
            taught = np.flatnonzero(latest >= 0)
            segment.teaching = (taught.tolist(), latest[taught] + first)

    def attribute(self, record: Record) -> None:
        """Fill ``record``'s pv, channel, subscription, request, latency and anomaly."""
        if record.kind is MESSAGE:
            self._attributed((record,))
        elif record.kind is CLOSE:
            self._close(record)

    def _circuit(self, number: int) -> Circuit:
        circuit = self.circuits.get(number)
        if circuit is None:
            circuit = self.circuits[number] = Circuit()
        return circuit

    def _attributed(self, records: Iterable[Record | UpdateBatch], parts: bool = False
                    ) -> tuple[bool, bool]:
        """Attribute ``records`` in order (:meth:`attribute`; an update batch by
        :meth:`_updates`, or with ``parts``, where they are the parts of one taken in
        bulk, by noting when). Whether an OPEN or CLOSE record was among them, and
        whether an update batch was split.

        A TCP message's attribution is written out in the loop, not called per record:
        it is most records (a storm of channels created and cleared gives some ten
        apiece)."""
        udp, updates, circuits = self._udp, self._updates, self.circuits
        client = Role.CLIENT
        marks = split = False
        for record in records:
            kind = record.kind
            if kind is MESSAGE:
                number = record.circuit
                if number is None:
                    udp(record)
                    continue
                message = record.message
                cls = type(message)
                expected = cls.sender
                sender = record.sender
                if sender is None:
                    sender = client if expected is None else expected
                circuit = circuits.get(number)
                if circuit is None:
                    circuit = self._circuit(number)
                attribution = circuit.handle(message, sender, record)
                # Record fields are None already: only what is known is set.
                channel = attribution.channel
                if channel is not None:
                    name = channel.name
                    if name is None and channel.cid is not None:
                        name = channel.name = self._searched(_host(record, sender), channel.cid,
                                                             cls in _CREATING)
                    record.pv = name
                    record.channel = channel
                    record.reading = channel.reading  # (after its own reply taught the channel)
                subscription = attribution.subscription
                if subscription is not None:
                    record.subscription = subscription
                anomaly = attribution.anomaly
                if anomaly is not None:
                    record.anomaly = anomaly
                request = attribution.request
                if request is not None:
                    context = request.context
                    if isinstance(context, Record):
                        record.request = context
                        record.latency = record.time - context.time
            elif kind is UPDATES:
                if parts:
                    record.read_as_now()
                elif not updates(record):
                    split = True
            else:
                if kind is CLOSE:
                    self._close(record)
                marks = marks or kind in _LIFECYCLE
        return marks, split

    def _udp(self, record: Record) -> None:
        message = record.message
        event = self.discovery.handle(message, record.src, record.dst, record, record.time,
                                      record.sender)
        search = event.search
        if search is None:
            return
        record.pv = search.name
        if type(message) is m.SearchRequest:
            key = (_host_of(record.src), message.cid)
            searchers = self._search_names.get(key)
            if searchers is None:
                if len(self._search_names) >= MAX_SEARCH_NAMES:
                    del self._search_names[next(iter(self._search_names))]
                searchers = self._search_names[key] = {}
            searchers.pop(record.src, None)  # re-inserted: the latest last
            if len(searchers) >= MAX_SEARCHERS:
                del searchers[next(iter(searchers))]
            searchers[record.src] = search.name
        elif isinstance(event.reply_to, Record):
            record.request = event.reply_to
            record.latency = record.time - event.reply_to.time

    def _searched(self, host: str, cid: int, creating: bool) -> str | None:
        """The name the clients of ``host`` searched with ``cid``: the only one, or
        while the channel is being created the latest (see the module documentation)."""
        searchers = self._search_names.get((host, cid))
        if not searchers:
            return None
        names = list(searchers.values())
        if creating or all(name == names[0] for name in names):
            return names[-1]
        return None

    def _close(self, record: Record) -> None:
        """A circuit ends when both directions have, or at the first reset."""
        number = record.circuit
        if record.reason != "rst" and self._half_closed.pop(number, None) is None:
            self._half_closed[number] = record
            return
        self._half_closed.pop(number, None)
        circuit = self.circuits.pop(number, None)
        self._resolved.pop(number, None)
        if circuit is not None:
            circuit.close(record)


def _distinct(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of non-negative ``ids``, sorted, the index of each id's among
    them (int32, as a run's ``subscription``), and how many times each occurs.
    Subscription ids are small numbers handed out in order: a count per number up to
    the largest does it without the sort of ``np.unique``, and tells the distinct ones."""
    top = int(ids.max()) if len(ids) else 0
    if top > 4 * len(ids) + 4096:  # sparse: sort them
        distinct, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
        return distinct, inverse.astype(np.int32), counts
    ids = ids.astype(np.intp)  # (once: indexing by them would convert them each time)
    counts = np.bincount(ids, minlength=top + 1)
    distinct = np.flatnonzero(counts)
    index = np.zeros(top + 1, dtype=np.int32)
    index[distinct] = np.arange(len(distinct), dtype=np.int32)
    return distinct, index[ids], counts[distinct]


def _host_of(endpoint: str) -> str:
    return endpoint.rpartition(":")[0]


def _host(record: Record, sender: Role) -> str:
    """The client's host of a TCP record."""
    return _host_of(record.src if sender == Role.CLIENT else record.dst)


def read(
    source: str | Path | BinaryIO, ports: Iterable[int] = (), lifecycle: bool = False,
    max_payload: int = DEFAULT_MAX_PAYLOAD, bulk: bool = False,
    block_bytes: int | None = _reader.BLOCK_BYTES,
) -> Iterator[Record | UpdateBatch]:
    """The attributed records of a capture (a path, ``"-"`` for stdin, or a stream);
    with ``bulk``, monitor updates come in :class:`shark.extract.bulk.UpdateBatch` items where
    they can (for the tables, which take them as columns).

    With ``bulk``, the capture is decoded a block of frames at a time, and what a block
    decodes to is alive at once (the bytes of its updates, their header fields, the
    records of everything else): ``block_bytes`` bounds a block's bytes
    (:data:`shark.extract.reader.BLOCK_BYTES` unless told; None: only by its frames)."""
    reader = CaReader(ports, max_payload, lifecycle=True, bulk=bulk)
    frames = (read_blocks(source, _reader.BLOCK_PACKETS, block_bytes) if bulk
              else read_frames(source))
    return Session().batches(reader.batches(frames), lifecycle)
