"""What a capture recorded, as a model a replay can act out.

A capture is a conversation; replaying one side needs it reorganised. Per server
(its TCP address), the PVs it served: native type and count (CREATE_CHAN replies),
write access (ACCESS_RIGHTS), metadata (GR/CTRL replies) and a timeline of values
(read replies, monitor updates and accepted writes, with their capture times). Per
client circuit, the operations in order (create channel, read, write, subscribe,
cancel, clear) each with the answer the server gave, so that they can be issued
again and the answers compared.

Built from :func:`shark.read`: the session's attribution (which PV, which request a
response answers) is what makes this a walk over records rather than a second
protocol state machine. Times are seconds since the capture's first record.

Why records, and not the batches of the ``messages`` table every view reads
(:mod:`shark.tables.stream`): a replay serves values again, byte for byte, in any DBR
type a client asks for, so it needs each reply's whole typed payload
(:class:`decoder.dbr.DBRValue`: the GR/CTRL limits, units, enum strings, every element).
The table holds what a person reads (a value, its text, the status) and not that; the
records are where the table's rows come from, attributed by the same session, so the
two agree on every PV, request and latency (``tests/test_differential.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntFlag
from itertools import pairwise
from math import nan
from pathlib import Path
from typing import Any, BinaryIO

from decoder import ECA, AccessRights, DecodeError, EventMask, Role
from decoder import messages as m
from decoder.dbr import DBRType, DBRValue, Family, dbr_name, layout
from shark.analysis.attribution import read
from shark.capture.files import CaptureError
from shark.extract.record import MESSAGE, Record
from shark.peers.convert import LIMITS, ConversionError, convert
from shark.peers.server import epics_stamp

__all__ = [
    "Answer",
    "Operation",
    "RecordedClient",
    "RecordedPV",
    "RecordedServer",
    "Recording",
    "Sample",
    "State",
    "flag_names",
    "load",
    "short",
]

#: Kinds of timeline samples; only ``update`` samples are posted to subscribers even
#: when the value did not change (a record processed again posts the same value).
READ, INITIAL, UPDATE, WRITE = "read", "initial", "update", "write"
#: DBR types whose payload holds no value of the PV: a class name, an alarm
#: acknowledgement is no sample of its timeline.
_NO_VALUE = frozenset({DBRType.PUT_ACKT, DBRType.PUT_ACKS, DBRType.CLASS_NAME})
#: The display and control fields of GR/CTRL replies a replay serves again.
_DISPLAY_FIELDS = ("units", "precision", "enum_strings", *LIMITS)
#: Limits an IOC reports as NaN when a record has none (no alarm severities), which
#: an integer DBR type can only carry as 0.
_NAN_LIMITS = frozenset(name for name in LIMITS if "alarm" in name or "warning" in name)
#: Kinds of client operations.
CREATE, READ_OP, WRITE_OP, WRITE_NOTIFY, SUBSCRIBE, CANCEL, CLEAR = (
    "create", "read", "write", "write_notify", "subscribe", "cancel", "clear")


@dataclass
class Sample:
    """A value a server was seen to hold: ``data`` as captured (any DBR type)."""

    time: float
    data: DBRValue
    kind: str
    #: The wall-clock time of the packet (Unix seconds), the timestamp of a value
    #: whose DBR type carries none.
    wall_time: float


@dataclass
class RecordedPV:
    """One PV of a captured server."""

    name: str
    native_type: int | None = None
    native_count: int | None = None
    writable: bool = True
    #: Units, precision, limits, enum strings: the fields GR/CTRL replies carried,
    #: each from the reply that tells it best (:func:`_merge_metadata`); the record
    #: type, when a DBR_CLASS_NAME reply told it.
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The DBR type of the GR/CTRL reply most of :attr:`metadata` comes from, None if
    #: none was captured.
    metadata_from: str | None = None
    #: The display and control fields of the last GR/CTRL reply of each DBR type, as
    #: it carried them: what a read in that very type is answered with again.
    metadata_by_type: dict[int, dict[str, Any]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    @property
    def servable(self) -> bool:
        """A value was captured (and so a native type is known)."""
        return bool(self.samples)

    @property
    def note(self) -> str:
        """What a replay has to make up for this PV, in words ("" when nothing)."""
        if not self.samples:
            return "no value captured: not served"
        if self.metadata_from is None and self.native_type != DBRType.STRING:
            return ("no GR/CTRL reply captured: default metadata (no units, precision 0, "
                    "limits 0 or NaN, no enum strings)")
        return ""

    def changes_on_its_own(self) -> bool:
        """The capture shows the PV change with no write before the change: a counter, a
        scanned input. What a client reads of such a PV depends on when it reads, so a
        replay's verdicts tell those differences apart from others."""
        return any(before.kind != WRITE and after.kind != WRITE
                   and (before.values, before.status, before.severity)
                   != (after.values, after.status, after.severity)
                   for before, after in pairwise(self.states()))

    def states(self) -> list[State]:
        """The timeline as the PV's successive states in its native type.

        A sample tells what its DBR type carries: a plain read no alarm, only a TIME
        type a timestamp. The rest is inferred: an alarm holds until the next one
        seen (and the first one seen holds from the start); a timestamp holds while
        the value does (backwards too, so that a plain read followed by a TIME read
        of the same value shares its timestamp); a read of the first elements of an
        array that shows what they were holds the rest; a new value with no timestamp seen
        gets the capture time of its packet. Samples whose values have no meaning in
        the native type (text that is no number) are left out.
        """
        states = [state for state in map(self._state, self.samples) if state is not None]
        for before, after in pairwise(states):  # forwards: what holds on
            shown = len(after.values)
            if shown < len(before.values) and after.values == before.values[:shown]:
                after.values = before.values  # a read of the first elements only
            if after.status is None:
                after.status, after.severity = before.status, before.severity
            if after.stamp is None and after.values == before.values:
                after.stamp = before.stamp
        for before, after in reversed(list(pairwise(states))):  # backwards
            if before.status is None:
                before.status, before.severity = after.status, after.severity
            if before.stamp is None and before.values == after.values:
                before.stamp = after.stamp
        for state in states:
            if state.stamp is None:
                state.stamp = epics_stamp(state.wall_time)
        return states

    def _state(self, sample: Sample) -> State | None:
        assert self.native_type is not None
        data = sample.data
        source = layout(data.dbr_type).native_type
        try:
            values = convert(data.values, source, self.native_type,
                             enum_strings=self.metadata.get("enum_strings", ()),
                             precision=self.metadata.get("precision", 0))
        except ConversionError:
            return None
        values = values.tolist() if hasattr(values, "tolist") else list(values)
        if not values and self.native_count == 1:
            return None
        stamp = None if data.seconds is None else (data.seconds, data.nanoseconds)
        return State(sample.time, values[: self.native_count], sample.kind, data.status,
                     data.severity, stamp, sample.wall_time)


@dataclass
class State:
    """A PV's value, alarm and timestamp from a time on; ``stamp`` is the timestamp as
    a TIME value carries it (seconds since the EPICS epoch, nanoseconds)."""

    time: float
    values: list[Any]
    kind: str
    status: int | None
    severity: int | None
    stamp: tuple[int, int] | None
    wall_time: float


@dataclass
class RecordedServer:
    address: str
    pvs: dict[str, RecordedPV] = field(default_factory=dict)

    def pv(self, name: str) -> RecordedPV:
        found = self.pvs.get(name)
        if found is None:
            found = self.pvs[name] = RecordedPV(name)
        return found


@dataclass
class Answer:
    """What the server answered to an operation (or one update of a subscription).

    ``status`` is the ECA code (ECA_NORMAL for answers that carry none); ``data`` the
    value of a read or update; for a created channel, ``native_type``,
    ``native_count`` and ``access`` (None when the server refused the channel).
    """

    time: float
    latency: float | None = None
    status: int = ECA.ECA_NORMAL
    data: DBRValue | None = None
    native_type: int | None = None
    native_count: int | None = None
    access: AccessRights | None = None


@dataclass
class Operation:
    """A client's request. ``data`` is the value of a write; ``updates`` the updates of
    a subscription (the first is its ``answer``); ``subscription`` the subscribe
    operation a cancel ends."""

    kind: str
    time: float
    pv: str
    data_type: int | None = None
    count: int | None = None
    data: DBRValue | None = None
    mask: int | None = None
    answer: Answer | None = None
    updates: list[Answer] = field(default_factory=list)
    subscription: Operation | None = None

    def describe(self) -> str:
        """The operation in one line, as a replay sends it."""
        text = f"{self.kind} {self.pv}"
        if self.data_type is not None:
            text += f" {dbr_name(self.data_type)}[{self.count}]"
        if self.data is not None:
            text += f" {short(self.data.values)}"
        if self.mask is not None:
            text += f" mask={flag_names(EventMask, self.mask)}"
        return text


@dataclass
class RecordedClient:
    """One client circuit (``circuit`` numbered as :class:`shark.extract.record.Record` does)
    from ``address`` to ``server``: its operations in the order they were sent, and
    the time of its last message."""

    circuit: int
    address: str
    server: str
    end: float = 0.0
    operations: list[Operation] = field(default_factory=list)


@dataclass
class Recording:
    """A capture's servers and clients; ``start`` is the Unix time of its first record
    (every time in the model counts from it), ``duration`` that of its last."""

    source: str
    start: float = 0.0
    duration: float = 0.0
    servers: dict[str, RecordedServer] = field(default_factory=dict)
    clients: list[RecordedClient] = field(default_factory=list)
    #: What the capture does not tell, in words (messages it cannot attribute ...).
    notes: list[str] = field(default_factory=list)


def load(source: str | Path | BinaryIO, ports: Iterable[int] = ()) -> Recording:
    """The recording of a capture (a path, ``"-"`` or a binary stream). A capture cut
    short (tcpdump killed mid-write) gives what came before, with a note; one that
    holds nothing readable raises :class:`shark.CaptureError`."""
    builder = _Builder(str(source))
    try:
        for record in read(source, ports):
            builder.add(record)
    except CaptureError as error:
        if builder.start is None:
            raise
        builder.recording.notes.append(f"capture damaged: {error}: what came before is kept")
    return builder.finish()


class _Builder:
    """Walks the attributed records once, in capture order."""

    def __init__(self, source: str) -> None:
        self.recording = Recording(source)
        self.start: float | None = None
        self.clients: dict[int, RecordedClient] = {}
        #: Operations waiting for their answer, by request record.
        self.pending: dict[Record, Operation] = {}
        #: Subscribe operations by the decoder's subscription object.
        self.subscriptions: dict[Any, Operation] = {}
        self.unnamed = 0
        self.undecodable = 0

    def add(self, record: Record) -> None:
        if self.start is None:
            self.start = record.time
        self.recording.duration = record.time - self.start
        if record.kind is not MESSAGE or record.circuit is None:
            return
        if record.pv is None:
            self.unnamed += record.channel is not None
            return
        client_side = record.sender == Role.CLIENT or (
            record.sender is None and type(record.message).sender == Role.CLIENT)
        server = record.dst if client_side else record.src
        client = self._client(record, server, record.src if client_side else record.dst)
        client.end = self._time(record)
        handler = _HANDLERS.get(type(record.message))
        if handler is None:
            return
        try:
            handler(self, record, client, self.recording.servers[client.server].pv(record.pv))
        except DecodeError:  # a payload that does not decode: the message says nothing
            self.undecodable += 1

    def _client(self, record: Record, server: str, address: str) -> RecordedClient:
        client = self.clients.get(record.circuit)
        if client is None:
            client = self.clients[record.circuit] = RecordedClient(record.circuit, address,
                                                                   server)
            self.recording.clients.append(client)
            self.recording.servers.setdefault(server, RecordedServer(server))
        return client

    def _time(self, record: Record) -> float:
        assert self.start is not None
        return record.time - self.start

    def _operation(self, record: Record, client: RecordedClient, kind: str,
                   **fields: Any) -> Operation:
        op = Operation(kind, self._time(record), record.pv, **fields)
        client.operations.append(op)
        self.pending[record] = op
        return op

    def _answered(self, record: Record) -> Operation | None:
        return None if record.request is None else self.pending.pop(record.request, None)

    def _answer(self, record: Record, **fields: Any) -> Answer:
        return Answer(self._time(record), record.latency, **fields)

    def _sample(self, pv: RecordedPV, record: Record, data: DBRValue, kind: str) -> None:
        if data.dbr_type in _NO_VALUE:
            _take_metadata(pv, data)
            return
        pv.samples.append(Sample(self._time(record), data, kind, record.time))
        if pv.native_type is None:  # the CREATE_CHAN reply was not captured
            pv.native_type = layout(data.dbr_type).native_type
        if pv.native_count is None or data.count > pv.native_count:
            pv.native_count = max(1, data.count)
        _take_metadata(pv, data)

    # -- one method per message kind -----------------------------------------------

    def create(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        self._operation(record, client, CREATE)

    def created(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        pv.native_type, pv.native_count = message.data_type, message.data_count
        access = record.channel.access_rights if record.channel is not None else None
        if access is not None:
            pv.writable = bool(access & AccessRights.WRITE)
        op = self._answered(record)
        if op is not None:
            op.answer = self._answer(record, native_type=message.data_type,
                                     native_count=message.data_count, access=access)

    def refused(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        op = self._answered(record)
        if op is not None:
            op.answer = self._answer(record, status=ECA.ECA_UKNCHAN)

    def read(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        self._operation(record, client, READ_OP, data_type=message.data_type,
                        count=message.data_count)

    def read_reply(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        status = getattr(message, "status", ECA.ECA_NORMAL)
        data = message.data if status == ECA.ECA_NORMAL else None
        op = self._answered(record)
        if op is not None:
            op.answer = self._answer(record, status=status, data=data)
        if data is not None:
            self._sample(pv, record, data, READ)

    def write(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        notify = isinstance(message, m.WriteNotifyRequest)
        self._operation(record, client, WRITE_NOTIFY if notify else WRITE_OP,
                        data_type=message.data_type, count=message.data_count,
                        data=message.data)
        if not notify:  # nothing says whether it took: assume it did
            self._sample(pv, record, message.data, WRITE)

    def write_reply(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        op = self._answered(record)
        status = record.message.status
        if op is None:
            return
        op.answer = self._answer(record, status=status)
        if status == ECA.ECA_NORMAL and op.data is not None:
            self._sample(pv, record, op.data, WRITE)

    def subscribe(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        op = self._operation(record, client, SUBSCRIBE, data_type=message.data_type,
                             count=message.data_count, mask=message.mask)
        if record.subscription is not None:
            self.subscriptions[record.subscription] = op

    def update(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        message = record.message
        op = self.subscriptions.get(record.subscription)
        data = message.data if message.status == ECA.ECA_NORMAL else None
        if op is not None:
            answer = self._answer(record, status=message.status, data=data)
            op.updates.append(answer)
            if op.answer is None:
                op.answer = answer
                self.pending.pop(record.request, None)
        if data is not None:
            first = op is not None and len(op.updates) == 1
            self._sample(pv, record, data, INITIAL if first else UPDATE)

    def cancel(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        """A cancel of a subscription whose EVENT_ADD the capture missed is left out:
        a replay could not make it."""
        subscription = self.subscriptions.get(record.subscription)
        if subscription is not None:
            message = record.message
            self._operation(record, client, CANCEL, data_type=message.data_type,
                            count=message.data_count, subscription=subscription)

    def clear(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        self._operation(record, client, CLEAR)

    def closed(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        """The reply to EVENT_CANCEL or CLEAR_CHANNEL."""
        op = self._answered(record)
        if op is not None:
            op.answer = self._answer(record)

    def error(self, record: Record, client: RecordedClient, pv: RecordedPV) -> None:
        op = self._answered(record)
        if op is not None and op.answer is None:
            op.answer = self._answer(record, status=record.message.status)

    def finish(self) -> Recording:
        recording = self.recording
        recording.start = self.start or 0.0
        for server in recording.servers.values():
            for pv in server.pvs.values():
                _name_states(pv)
        if self.undecodable:
            recording.notes.append(f"{self.undecodable} messages with undecodable payloads: "
                                   "left out")
        if self.unnamed:
            recording.notes.append(f"{self.unnamed} messages of channels created before the "
                                   "capture began: their PVs are unknown")
        return recording


def _take_metadata(pv: RecordedPV, data: DBRValue) -> None:
    """Keep the display and control fields of a GR/CTRL value (and the record type a
    DBR_CLASS_NAME value names)."""
    if data.dbr_type == DBRType.CLASS_NAME:
        if len(data.values) and data.values[0]:
            pv.metadata["record_type"] = data.values[0]
        return
    lay = layout(data.dbr_type)
    if lay.family not in (Family.GR, Family.CTRL) or lay.native_type == DBRType.STRING:
        return
    fields = data.metadata()
    pv.metadata_by_type[lay.dbr_type] = {
        name: fields[name] for name in _DISPLAY_FIELDS if name in fields}
    _merge_metadata(pv)


def _merge_metadata(pv: RecordedPV) -> None:
    """:attr:`RecordedPV.metadata` from the replies of every GR/CTRL type captured, each
    field from the one that tells it best: a DOUBLE type, then a FLOAT one (limits as
    the IOC holds them, NaN included), then the PV's native type, then the others.
    An alarm or warning limit of 0 in an integer type is what the IOC's NaN (no such
    limit) becomes there too: it is taken as NaN, the IOC's default, unless a float
    type told otherwise."""
    def rank(dbr_type: int) -> tuple[int, int]:
        native = layout(dbr_type).native_type
        order = {DBRType.DOUBLE: 0, DBRType.FLOAT: 1, pv.native_type: 2}
        return order.get(native, 3), -dbr_type  # CTRL (more fields) before GR

    sources = sorted(pv.metadata_by_type, key=rank)
    merged: dict[str, Any] = {}
    for dbr_type in reversed(sources):  # the best last, to have the last word
        floats = layout(dbr_type).native_type in (DBRType.FLOAT, DBRType.DOUBLE)
        for name, value in pv.metadata_by_type[dbr_type].items():
            if name in LIMITS:
                value = float(value)
                if not floats and value == 0 and name in _NAN_LIMITS:
                    value = nan
            merged[name] = value
    record_type = pv.metadata.get("record_type")
    pv.metadata = {**merged, **({"record_type": record_type} if record_type else {})}
    pv.metadata_from = dbr_name(sources[0])


def _name_states(pv: RecordedPV) -> None:
    """The names of an enum PV's states, when no GR/CTRL reply told them but a read
    as a string did: the text read (or written) next to the index read (or written),
    with no other write between them (a replay then answers a read as a string with
    the name, not the number, and takes a write of the name).
    States no read named are named by their number, as an IOC names an unnamed one."""
    if pv.native_type != DBRType.ENUM or pv.metadata.get("enum_strings"):
        return
    names: dict[int, str] = {}
    index: int | None = None
    text: str | None = None
    for sample in pv.samples:
        native = layout(sample.data.dbr_type).native_type
        if not len(sample.data.values):
            continue
        value = sample.data.values[0]
        if native == DBRType.STRING:
            if sample.kind == WRITE:
                index = None  # the state written by its name: a read of its index names it
            text = str(value)
        elif native != DBRType.CHAR:
            number = int(value)
            if (index is not None and number != index) or sample.kind == WRITE:
                text = None
            index = number
        if index is not None and text is not None and 0 <= index < 16:
            names.setdefault(index, text)
    if names:
        pv.metadata["enum_strings"] = [names.get(i, str(i)) for i in range(max(names) + 1)]


def flag_names(flags: type[IntFlag], value: int) -> str:
    """``READ|WRITE``: the names of the flags set in ``value`` (the same on every
    Python: 3.10 gives combined flags no name)."""
    return "|".join(flag.name or "" for flag in flags if flag and flag & value) or "NONE"


def short(values: Any) -> str:
    """DBR values in a few characters, for listings: a lone value as itself."""
    items = [v.item() if hasattr(v, "item") else v for v in values]
    if len(items) == 1:
        return repr(items[0])
    shown = ", ".join(map(repr, items[:4]))
    return f"[{shown}{', ...' if len(items) > 4 else ''}] ({len(items)})"


_HANDLERS = {
    m.CreateChanRequest: _Builder.create,
    m.CreateChanResponse: _Builder.created,
    m.CreateChFailResponse: _Builder.refused,
    m.ReadNotifyRequest: _Builder.read,
    m.ReadRequest: _Builder.read,
    m.ReadNotifyResponse: _Builder.read_reply,
    m.ReadResponse: _Builder.read_reply,
    m.WriteRequest: _Builder.write,
    m.WriteNotifyRequest: _Builder.write,
    m.WriteNotifyResponse: _Builder.write_reply,
    m.EventAddRequest: _Builder.subscribe,
    m.EventAddResponse: _Builder.update,
    m.EventCancelRequest: _Builder.cancel,
    m.EventCancelResponse: _Builder.closed,
    m.ClearChannelRequest: _Builder.clear,
    m.ClearChannelResponse: _Builder.closed,
    m.ErrorResponse: _Builder.error,
}
