"""Monitor updates in bulk: a server's TCP bytes framed as arrays, for the tables.

A capture of monitored PVs is mostly EVENT_ADD responses, millions of them, and one
:class:`shark.extract.record.Record` and one :class:`decoder.Message` per update cost more
than everything else the tables do. So for the tables (``shark.open``, ``shark
export``, ``shark stats``) the reader can hold back what a server sends on a circuit
(:class:`shark.extract.reader.CaReader` with ``bulk=True``) and frame it later, many packets
at once, into the arrays of a :class:`Run`. Where the held packets are in capture
order stands an :class:`UpdateBatch` for each stretch of them that nothing else came
between, so that the order of everything stays the capture's.

Nothing about the result changes, only how it is computed:

* the held bytes are framed the moment anything else happens on the circuit (the
  client sends, a gap, the end), and every block of frames: no request is ever seen
  out of order with the responses around it;
* a packet whose messages are not all updates gets its records, made from the same
  bytes as :class:`decoder.StreamFramer` would make them; bytes that do not frame as
  CA send the whole held stretch down the ordinary path, resynchronisation included;
  the reader hands on the rest as batches of packets that hold updates only;
* the session (:class:`shark.analysis.attribution.Session`) lets updates stay a batch only when
  each belongs to a subscription already known, already updated once (the first
  update answers the EVENT_ADD request) and of a channel with a name: then
  attributing it changes nothing but an update count. The other updates become
  records, attributed one by one at their place, and the stretches between them stay
  batches (:meth:`UpdateBatch.split`).

An :class:`UpdateBatch` that reaches a consumer is such an attributed batch;
:meth:`UpdateBatch.records` gives its records should one be needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from decoder import Command, Role, dbr
from decoder.circuit import learned
from decoder.display import PRECISION_OFFSET, PRECISION_TYPES
from decoder.messages import (
    _SERVER_FORMS,
    EventAddResponse,
    EventCancelResponse,
    Message,
    decode_header,
    message_class,
)
from decoder.protocol import (
    EXTENDED_HEADER_SIZE,
    EXTENDED_MARKER,
    EXTENSION_LAYOUT,
    HEADER_LAYOUT,
    HEADER_SIZE,
)
from decoder.sizes import PAYLOAD, Payload, payload_bounds
from shark.extract.record import MESSAGE, UPDATES, Record

__all__ = ["UPDATES", "HeaderRoom", "Run", "Segment", "UpdateBatch", "frame_headers", "place",
           "placed"]

_EVENT_ADD = int(Command.EVENT_ADD)
#: Messages of one size checked at once when following the chain of messages.
_STRIDE_MESSAGES = 4096
#: The CA header (:data:`decoder.protocol.HEADER_LAYOUT`) as a numpy record.
_HEADER = HEADER_LAYOUT.numpy_dtype()
#: A header as raw bytes, to copy headers out of a buffer in one pass.
_ROW = np.dtype(f"V{HEADER_SIZE}")
#: What a run keeps of each header field, per message: as narrow as the field (a
#: run's arrays are most of what decoding holds), but for the payload size, which
#: goes into offsets in the buffer, and the data count, which the extended header
#: widens to 32 bits.
_FIELD_TYPES = {"command": np.uint16, "payload_size": np.int64, "data_type": np.uint16,
                "data_count": np.uint32, "parameter1": np.uint32, "parameter2": np.uint32}
_FIELD_DTYPES = [_FIELD_TYPES[name] for name in HEADER_LAYOUT.names]
#: Where the header's payload_size and data_count are, and the extension's payload size.
_SIZE_AT = HEADER_LAYOUT.offsets["payload_size"]
_COUNT_AT = HEADER_LAYOUT.offsets["data_count"]
_TYPE_AT = HEADER_LAYOUT.offsets["data_type"]
_EXTENDED_SIZE_AT = HEADER_SIZE + EXTENSION_LAYOUT.offsets["payload_size"]
_EXTENSION = EXTENSION_LAYOUT.struct


def _size_tables() -> tuple[np.ndarray, ...]:
    """The payload sizes a server's header allows (:mod:`decoder.sizes`), as arrays to
    check a run's headers all at once: per command id, the least and most bytes of a
    form whose size is fixed and whether it carries DBR data instead; per DBR type,
    where its first value starts and the size of each."""
    least = np.ones(1 << 16, dtype=np.int64)  # least > most: nothing fits
    most = np.zeros(1 << 16, dtype=np.int64)
    data = np.zeros(1 << 16, dtype=bool)
    for command, cls in _SERVER_FORMS.items():
        if PAYLOAD.get(cls) is Payload.DBR:
            data[command] = True
        else:
            least[command], most[command] = payload_bounds(cls, 0, 0)
    offsets = np.array([layout.value_offset for layout in dbr.LAYOUTS], dtype=np.int64)
    values = np.array([layout.value_size for layout in dbr.LAYOUTS], dtype=np.int64)
    return least, most, data, offsets, values


_LEAST, _MOST, _DBR_DATA, _VALUE_OFFSET, _VALUE_SIZE = _size_tables()
_CANCEL_LEAST, _CANCEL_MOST = payload_bounds(EventCancelResponse, 0, 0)
_DBR_TYPES = len(dbr.LAYOUTS)
#: Per DBR type (a header's 16 bits): whether its payload carries a display precision.
_PRECISION = np.zeros(1 << 16, dtype=bool)
_PRECISION[sorted(PRECISION_TYPES)] = True
_STRING = int(dbr.DBRType.STRING)


class Run:
    """The messages framed from one held stretch of a server's direction, as arrays
    with one entry per message (``starts``: where each begins in ``buffer``;
    ``bodies`` and ``sizes``: its payload), and ``bounds``: message ``bounds[k]`` to
    ``bounds[k + 1]`` are those packet ``k`` of the stretch completed, which was frame
    ``frames[k]``, captured at ``times[k]``. Its header fields are read from
    ``headers``, the messages' headers as :func:`frame_headers` copied them out while
    it framed the stretch (the buffer is not read for them again).

    The session fills ``subscriptions`` (the distinct ones met) and ``subscription``
    (per message, an index into them) for the updates it attributes in bulk."""

    __slots__ = ("buffer", "starts", "bodies", "sizes", "extended", "command", "data_type",
                 "data_count", "parameter1", "parameter2", "bounds", "frames", "times",
                 "subscriptions", "subscription", "_per_message", "__weakref__")

    def __init__(self, buffer: bytes, starts: np.ndarray, bounds: np.ndarray,
                 frames: list[int], times: list[float], headers: np.ndarray) -> None:
        self.buffer = buffer
        self.starts = starts
        self.bounds = bounds
        self.frames = frames
        self.times = times
        self._per_message: dict[str, np.ndarray] = {}
        fields = [headers[name].astype(dtype)
                  for name, dtype in zip(_HEADER.names, _FIELD_DTYPES, strict=True)]
        (self.command, self.sizes, self.data_type, self.data_count, self.parameter1,
         self.parameter2) = fields
        self.extended = (self.sizes == EXTENDED_MARKER) & (self.data_count == 0)
        self.bodies = starts + HEADER_SIZE
        for i in np.flatnonzero(self.extended).tolist():  # large arrays: rare
            at = int(starts[i]) + HEADER_SIZE
            self.sizes[i], self.data_count[i] = _EXTENSION.unpack_from(buffer, at)
            self.bodies[i] = int(starts[i]) + EXTENDED_HEADER_SIZE
        self.subscriptions: list[Any] = []
        self.subscription = np.full(len(starts), -1, dtype=np.int32)

    def sizes_fit(self) -> bool:
        """Whether every message's header is one a server sends (a known command) and
        claims a payload size its other fields allow (:mod:`decoder.sizes`, as
        :class:`decoder.StreamFramer` checks it with ``check_sizes``; an unknown command
        has no size that fits); if not, the stretch must go the way that reports the bad header
        and resynchronises. Worked out from the fields already read, all at once, for
        each message whose fields differ from those of the one before it (a
        subscription's updates repeat theirs: often most messages of a run)."""
        command, size, kinds, counts = self.command, self.sizes, self.data_type, self.data_count
        if len(command) > 1:
            differs = np.empty(len(command), dtype=bool)
            differs[0] = True
            np.not_equal(command[1:], command[:-1], out=differs[1:])
            differs[1:] |= size[1:] != size[:-1]
            differs[1:] |= kinds[1:] != kinds[:-1]
            differs[1:] |= counts[1:] != counts[:-1]
            if not differs.all():
                rows = np.flatnonzero(differs)
                command, size, kinds, counts = (command[rows], size[rows], kinds[rows],
                                                counts[rows])
        least, most = _LEAST[command], _MOST[command]
        cancel = (command == _EVENT_ADD) & (size == 0)
        values = _DBR_DATA[command] & ~cancel
        if cancel.any():
            least[cancel], most[cancel] = _CANCEL_LEAST, _CANCEL_MOST
        kind, count = kinds[values], counts[values]
        if len(kind):
            known = kind < _DBR_TYPES
            if not known.all():
                return False
            padded = -(-(_VALUE_OFFSET[kind] + _VALUE_SIZE[kind] * count) // 8) * 8
            short_string = (kind == _STRING) & (count == 1)
            least[values] = np.where(short_string, 1, padded)
            most[values] = padded
        return bool(((size >= least) & (size <= most)).all())

    def packet(self) -> np.ndarray:
        """Per message, the index of the packet that completed it."""
        return self.per_message("packet", _packet_indexes)

    def per_message(self, name: str, of_packets: Callable[[Run], np.ndarray]) -> np.ndarray:
        """Per message, the value its packet has in ``of_packets(run)`` (one per
        packet): worked out once per run, kept under ``name``."""
        values = self._per_message.get(name)
        if values is None:
            values = self._per_message[name] = np.repeat(of_packets(self), np.diff(self.bounds))
        return values

    def messages_at(self, rows: slice | np.ndarray) -> list[Any]:
        """The messages ``rows`` (a slice, or an array of indexes: those of many
        stretches of a run, made in one pass) as the stream framer makes them: the
        server's form of each command (every one is known: :meth:`sizes_fit` checked),
        its header fields as they are (``Message.from_wire``, called as a plain
        function: this runs once for every message of a run that is not an update
        taken in bulk)."""
        buffer = self.buffer
        forms = _SERVER_FORMS
        wire = Message.from_wire.__func__
        out = []
        append = out.append
        for command, data_type, count, parameter1, parameter2, body, size, extended in zip(
                *(field[rows].tolist() for field in (
                    self.command, self.data_type, self.data_count, self.parameter1,
                    self.parameter2, self.bodies, self.sizes, self.extended)), strict=True):
            cls = forms[command]
            if cls is EventAddResponse and not size:
                cls = EventCancelResponse
            append(wire(cls, data_type, count, parameter1, parameter2,
                        buffer[body : body + size], extended))
        return out

    def updates_only(self) -> np.ndarray:
        """Per packet: whether every message it completed is an update (an EVENT_ADD
        response with a payload; without one it is the EVENT_CANCEL reply). The other
        messages are few: each marks its packet (the last whose first message is at or
        before it), with no count over every message."""
        other = np.flatnonzero((self.command != _EVENT_ADD) | (self.sizes == 0))
        updates = np.ones(len(self.bounds) - 1, dtype=bool)
        updates[np.searchsorted(self.bounds, other, "right") - 1] = False
        return updates


def _packet_indexes(run: Run) -> np.ndarray:
    return np.arange(len(run.frames))


class Segment:
    """Consecutive packets of a run that hold updates only: the session decides which
    of their updates it can take in bulk, all at once when it meets the first."""

    __slots__ = ("run", "first", "stop", "circuit", "unusable", "updates", "teaching")

    def __init__(self, run: Run, first: int, circuit: int) -> None:
        self.run = run
        #: Its packets are the run's ``first`` to ``stop``.
        self.first = self.stop = first
        self.circuit = circuit
        #: Once resolved: the messages (indexes into the run, in order) that are not
        #: taken in bulk.
        self.unusable: list[int] | None = None
        #: The subscriptions met, and how many of their updates came in bulk.
        self.updates: tuple[list[Any], np.ndarray] = ([], np.zeros(0, dtype=np.int64))
        #: The last update taken in bulk of each subscription whose updates in bulk
        #: carry a precision or enum strings (DBR_GR_/CTRL_ ...): the subscriptions
        #: (indexes into those of :attr:`updates`) and the indexes of the messages in the
        #: run; None when there are none.
        self.teaching: tuple[list[int], np.ndarray] | None = None

    def count_updates(self) -> None:
        """Add the updates taken in bulk to their subscriptions' counts, and let their
        channels learn from the last GR/CTRL update of each (as
        :meth:`decoder.Circuit.handle` would have from each in turn): done after the
        segment's other packets, among which may be a subscription's first update,
        which only its own count can tell (and which came before its updates in bulk)."""
        subscriptions, counts = self.updates
        for subscription, count in zip(subscriptions, counts.tolist(), strict=True):
            if count:
                subscription.updates += count
        if self.teaching is None:
            return
        taught, indexes = self.teaching
        run = self.run
        kinds, bodies, sizes = run.data_type[indexes], run.bodies[indexes], run.sizes[indexes]
        # The precision of each payload that carries one, read all at once: learning
        # the precision a channel has already changes nothing
        # (:meth:`decoder.Channel.learn`), and is most of them by far.
        precise = _PRECISION[kinds] & (sizes >= PRECISION_OFFSET + 2)
        data = np.frombuffer(run.buffer, np.uint8)
        at = np.where(precise, bodies + PRECISION_OFFSET, 0)
        precisions = ((data[at].astype(np.uint16) << 8) | data[at + 1]).view(np.int16)
        buffer = memoryview(run.buffer)
        for k, kind, body, size, known, precision in zip(
                taught, kinds.tolist(), bodies.tolist(), sizes.tolist(), precise.tolist(),
                precisions.tolist(), strict=True):
            channel = subscriptions[k].channel
            if known and precision == channel.precision:
                continue
            channel.learn(kind, buffer[body : body + size])

    def add(self, batch: UpdateBatch) -> None:
        """Take the run's next packets (the segment's batches do not refer back to it:
        no reference cycle, so that they are freed as soon as they are used)."""
        self.stop = batch.stop_packet
        batch.segment = self


class UpdateBatch:
    """What consecutive packets of a held server direction completed: packets
    ``first_packet`` to ``stop_packet`` of ``run``, messages ``start`` to ``stop`` of
    it (``frame`` and ``time`` are the first packet's; ``size``: their bytes). Once
    the reader has framed the held bytes, the batch holds updates only and has its
    ``segment``, or ``expanded`` holds what stands in its place (records, and batches
    of the stretches of updates). Once the session has attributed it in bulk,
    ``bulk`` is True and it reaches consumers as it is; split, ``expanded`` holds its
    records and batches of the stretches taken in bulk."""

    __slots__ = ("frame", "time", "src", "dst", "circuit", "size", "run", "start", "stop",
                 "first_packet", "stop_packet", "segment", "expanded", "bulk", "learned")
    kind = UPDATES
    transport = "tcp"
    sender = Role.SERVER

    def __init__(self, frame: int, time: float, src: str, dst: str, circuit: int,
                 first_packet: int) -> None:
        self.frame = frame
        self.time = time
        self.src = src
        self.dst = dst
        self.circuit = circuit
        self.size = 0
        self.run: Run | None = None
        self.start = self.stop = 0
        self.first_packet = self.stop_packet = first_packet
        self.segment: Segment | None = None
        self.expanded: list[Record | UpdateBatch] | None = None
        self.bulk = False
        #: When it was attributed, on the clock of the channels' readings
        #: (:func:`decoder.circuit.learned`): its values read as their channels knew then.
        self.learned = 0

    def __len__(self) -> int:
        return self.stop - self.start

    def split(self) -> list[Record | UpdateBatch]:
        """The records of these messages, but for the stretches the session attributed
        in bulk (their ``run.subscription`` set), which stay batches of their own.

        A batch is split where the first updates of new subscriptions are (thousands
        of stretches when many subscribe at once): the stretches' bounds, packets and
        sizes are worked out all at once, and the records of all the stretches not in
        bulk in one pass."""
        run, start = self.run, self.start
        bulk = run.subscription[start : self.stop] >= 0
        if not bulk.any():
            return self.records()
        cuts = np.flatnonzero(bulk[1:] != bulk[:-1]) + 1
        starts = np.concatenate(([0], cuts)) + start
        stops = np.concatenate((cuts, [len(bulk)])) + start
        packets = run.packet()
        records = self._records(np.flatnonzero(~bulk) + start)
        out: list[Record | UpdateBatch] = []
        taken = 0
        in_bulk = bool(bulk[0])  # (the stretches alternate)
        for first, stop, first_packet, last_packet, size in zip(
                starts.tolist(), stops.tolist(), packets[starts].tolist(),
                packets[stops - 1].tolist(), self._sizes(starts, stops).tolist(),
                strict=True):
            if in_bulk:
                part = self._part(first, stop, first_packet, last_packet, size)
                part.bulk = True
                out.append(part)
            else:
                out += records[taken : taken + stop - first]
                taken += stop - first
            in_bulk = not in_bulk
        return out

    def read_as_now(self) -> None:
        """Note when it is attributed (:attr:`learned`): its values read as their
        channels knew then, whatever they learn later, as a record keeps its own."""
        self.learned = learned()

    def part(self, start: int, stop: int) -> UpdateBatch:
        """A batch of messages ``start`` to ``stop`` of the run (some of these),
        attributed as these are."""
        packets = self.run.packet()
        return self._part(start, stop, int(packets[start]), int(packets[stop - 1]),
                          int(self._sizes(start, stop)))

    def _sizes(self, start: Any, stop: Any) -> Any:
        """The bytes of the run's messages ``start`` to ``stop`` (or of each stretch
        of them, given arrays of bounds)."""
        run = self.run
        return run.bodies[stop - 1] + run.sizes[stop - 1] - run.starts[start]

    def _part(self, start: int, stop: int, first: int, last: int, size: int) -> UpdateBatch:
        """:meth:`part`, given the packets of its first and last messages and its size."""
        run = self.run
        part = UpdateBatch(run.frames[first], run.times[first], self.src, self.dst,
                           self.circuit, first)
        part.run, part.start, part.stop, part.stop_packet = run, start, stop, last + 1
        part.segment, part.bulk, part.learned = self.segment, self.bulk, self.learned
        part.size = size
        return part

    def records(self) -> list[Record]:
        """The records of these messages (attributed as the session did, if it did)."""
        if self.expanded is not None:
            return self.expanded
        out = self._records(slice(self.start, self.stop))
        if self.bulk:
            run = self.run
            subscriptions = run.subscriptions
            learned = self.learned
            for record, index in zip(out, run.subscription[self.start : self.stop].tolist(),
                                     strict=True):
                subscription = record.subscription = subscriptions[index]
                channel = record.channel = subscription.channel
                if channel.readings:
                    record.reading = channel.reading_at(learned)
                record.pv = subscription.channel.name
        return out

    def _records(self, rows: slice | np.ndarray) -> list[Record]:
        """The records, not attributed, of the run's messages ``rows`` (a slice, or
        indexes)."""
        run = self.run
        src, dst, circuit = self.src, self.dst, self.circuit
        frames, times = run.frames, run.times
        server = Role.SERVER
        return [Record(MESSAGE, frames[packet], times[packet], src, dst, "tcp", circuit,
                       server, message)
                for packet, message in zip(run.packet()[rows].tolist(),
                                           run.messages_at(rows), strict=True)]

    def __repr__(self) -> str:
        return (f"<UpdateBatch frame={self.frame} {self.src} -> {self.dst} "
                f"tcp#{self.circuit} {len(self)} messages>")


def place(batches: list[UpdateBatch], run: Run, circuit: int) -> None:
    """Give the batches of a held stretch their messages of ``run`` (framed from the
    stretch). A batch of packets that hold updates only joins a :class:`Segment`; in
    the place of any other, ``expanded`` holds the records of its packets that hold
    something else, and batches (in segments) of the stretches of packets between them.
    A batch whose packets completed no message stands for nothing."""
    bounds = run.bounds.tolist()
    other = (~run.updates_only()).tolist()
    segment = None
    for batch in batches:
        batch.run = run
        first, stop = batch.first_packet, batch.stop_packet
        batch.start, batch.stop = bounds[first], bounds[stop]
        if True not in other[first:stop]:  # the common case
            if batch.start == batch.stop:
                batch.expanded = []
                continue
            if segment is None:
                segment = Segment(run, first, circuit)
            segment.add(batch)
            continue
        pieces: list[Record | UpdateBatch] = []
        k = first
        while k < stop:
            end = k + 1
            if other[k]:
                segment = None
                pieces += batch.part(bounds[k], bounds[end]).records()
            else:
                while end < stop and not other[end]:
                    end += 1
                if bounds[k] < bounds[end]:
                    part = batch.part(bounds[k], bounds[end])
                    if segment is None:
                        segment = Segment(run, part.first_packet, circuit)
                    segment.add(part)
                    pieces.append(part)
            k = end
        batch.expanded = pieces


def placed(items: list[Any], batches: list[int]) -> list[Any]:
    """Records and batches (a new list) with what stands in the place of each batch
    that :func:`place` expanded put in it. ``batches``: where in ``items`` every batch
    is, ascending (the reader notes it as it adds them): only those are looked at, and
    the records between them are copied over as slices, not one by one."""
    out: list[Any] = []
    taken = 0
    for at in batches:
        expanded = items[at].expanded
        if expanded is not None:
            out += items[taken:at]
            out += expanded
            taken = at + 1
    out += items[taken:]
    return out


class HeaderRoom:
    """Room for the headers :func:`frame_headers` copies out, kept by a reader from one
    stretch it frames to the next: the pages of a new array each time cost some 5 ms
    on a capture of two million updates (the copy itself, not much more), and the
    headers are only read until the :class:`Run` is made (it keeps fields of its own)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows = np.empty(0, _ROW)

    def at_least(self, count: int) -> np.ndarray:
        """Rows for ``count`` headers (their contents whatever they were)."""
        if len(self.rows) < count:
            self.rows = np.empty(count, _ROW)
        return self.rows


def frame_headers(buffer: bytes, max_payload: int, room: HeaderRoom | None = None
                  ) -> tuple[np.ndarray, int, np.ndarray] | None:
    """Cut ``buffer`` (which starts at a message boundary) into messages as
    :class:`decoder.StreamFramer` would: (where each whole message starts, where the
    incomplete one at the end starts, the whole messages' headers as a :data:`_HEADER`
    array for :class:`Run`). None if a header claims a payload above
    ``max_payload``, or if that of the incomplete message is not one a server sends (an
    unknown command, a payload size its fields do not allow: :mod:`decoder.sizes`): the
    bytes must then go the way that reports and resynchronises. The whole messages'
    commands and sizes are :meth:`Run.sizes_fit`'s to check (it refuses a command a
    server does not send, as a size nothing fits), all at once.

    A subscription's updates all have one size, so where a message is followed by
    one of the same size, the headers of up to :data:`_STRIDE_MESSAGES` more at that
    stride are copied out at once and their sizes checked, and the chain is followed a
    message at a time only where the size changes. The headers go into an array as
    long as the most messages the buffer could hold (the pages never written are never
    mapped; in ``room``, if given, reused: the headers returned are then good until its
    next use), so that the run reads its fields from them without reading the buffer
    again."""
    pieces: list[np.ndarray] = []
    starts: list[int] = []
    append = starts.append
    position = 0
    end = len(buffer)
    most = end // HEADER_SIZE
    rows = np.empty(most, _ROW) if room is None else room.at_least(most)
    count_rows = 0
    size_at, count_at, extended_size_at = _SIZE_AT, _COUNT_AT, _EXTENDED_SIZE_AT
    while end - position >= HEADER_SIZE:
        high, low = buffer[position + size_at], buffer[position + size_at + 1]
        size = high << 8 | low
        body = HEADER_SIZE
        if size == EXTENDED_MARKER and not (buffer[position + count_at]
                                            or buffer[position + count_at + 1]):
            if end - position < EXTENDED_HEADER_SIZE:
                break
            size = int.from_bytes(
                buffer[position + extended_size_at : position + extended_size_at + 4], "big")
            body = EXTENDED_HEADER_SIZE
        elif size > max_payload:
            return None
        stride = body + size
        follow = position + stride
        if (body == HEADER_SIZE and size != EXTENDED_MARKER and end - follow >= stride
                and buffer[follow + size_at] == high and buffer[follow + size_at + 1] == low):
            count = min((end - position) // stride, _STRIDE_MESSAGES)
            if starts:
                count_rows = _copy_headers(buffer, starts, rows, count_rows)
                pieces.append(np.array(starts, dtype=np.int64))
                starts.clear()
            # The headers at that stride, copied out in one pass, and their sizes.
            stretch = rows[count_rows : count_rows + count]
            stretch[...] = np.ndarray((count,), _ROW, buffer, position, (stride,))
            same = stretch.view(_HEADER)["payload_size"] == size
            count = count if same.all() else int(same.argmin())
            pieces.append(position + stride * np.arange(count))
            count_rows += count
            position += count * stride
            continue
        if size > max_payload:
            return None
        if follow > end:
            break
        append(position)
        position = follow
    if starts:
        count_rows = _copy_headers(buffer, starts, rows, count_rows)
    pieces.append(np.array(starts, dtype=np.int64))
    at = np.concatenate(pieces)
    if end - position >= 2 and (buffer[position] << 8 | buffer[position + 1]) > max(Command):
        return None
    if end - position >= HEADER_SIZE:  # the incomplete message's header, if whole
        header = decode_header(buffer, position)
        if header is not None and not _header_fits(header):
            return None
    return at, position, rows[:count_rows].view(_HEADER)


def _copy_headers(buffer: bytes, starts: list[int], rows: np.ndarray, count: int) -> int:
    """Copy the headers at ``starts`` into ``rows`` from ``count`` on; the new count."""
    data = np.frombuffer(buffer, np.uint8)
    stop = count + len(starts)
    rows[count:stop] = sliding_window_view(data, HEADER_SIZE)[starts].view(_ROW).ravel()
    return stop


def _header_fits(header: tuple) -> bool:
    """Whether a server's header (:func:`decoder.messages.decode_header`) claims a
    payload size its other fields allow."""
    command, size, data_type, count = header[:4]
    least, most = payload_bounds(message_class(command, Role.SERVER, size), data_type, count)
    return least <= size <= most
