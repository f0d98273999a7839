"""An asyncio Channel Access server built on the decoder.

It serves PVs held in memory (:class:`PV`): it answers UDP name searches,
sends beacons, and runs one TCP circuit per client, answering reads in any DBR
type the way an IOC converts them, applying writes, and posting subscription
updates when a value, an alarm or a property changes, whether through a
client's write or through :meth:`Server.set`. It exists to replay what a
capture shows and to be a controllable peer in tests, so it favours being
exact about the protocol over speed.

Each circuit frames what the client sends with ``StreamFramer(Role.CLIENT)``
and keeps its state in ``Circuit(strict=True, local=Role.SERVER)``, fed both
directions: which channels are open, by SID and CID, and their names are the
circuit's, and so are its subscriptions (id, DBR type, count, mask, channel);
this module keeps beside them only what the decoder has no word for: which PV a
subscription watches and which circuit posts its updates (:class:`_Watch`), the
updates held back and the sockets. Names are searched for over UDP and, from
clients of CA 4.12 on, over the circuit too.

A request wrong by itself (an id never given, a command a client may not send, a
DBR type no server has, a payload too short for what it claims:
:class:`RemoteProtocolError` among them) gets an ERROR message quoting it and
naming the channel's CID, with the status that says why, and the circuit goes on:
RSRV drops the circuit instead, which tells a client nothing. Two cases end it: bytes
that cannot be framed (after an ERROR saying so), and a READ_NOTIFY of a DBR type no
server has, closed without a word as RSRV does and conformance suites expect. A
breach by this server (:class:`LocalProtocolError`, a bug of ours) is logged and the
circuit closed cleanly. Other circuits go on. Nothing is bound but the host given,
and beacons go only where told (loopback by default, never broadcast).

A client that leaves abruptly (a reset, with thousands of subscriptions whose
updates are on their way) is no reason to log: nothing more is written to its
connection once it is lost, and what a client does wrong is noted once per client
host and kind in :attr:`Server.misbehaviour`, with a count told as the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

from decoder import (
    ECA,
    AccessRights,
    Circuit,
    DecodeError,
    EventMask,
    LocalProtocolError,
    RemoteProtocolError,
    Role,
    StreamFramer,
)
from decoder import messages as m
from decoder.circuit import Channel, Subscription
from decoder.dbr import EPICS_EPOCH_OFFSET, DBRType, DBRValue, encode, layout
from decoder.framing import split_datagram
from decoder.messages import decode_header, make_message
from decoder.protocol import (
    ADDRESS_OF_SENDER,
    EXTENDED_HEADER_SIZE,
    MINOR_VERSION,
    REPEATER_PORT,
    SERVER_PORT,
    SearchReply,
)
from shark.peers.convert import LIMITS, ConversionError, convert, from_python, to_dbr
from shark.peers.misbehaviour import Kind, Misbehaviours
from shark.peers.service import Service

__all__ = ["DEFAULT_BEACON_ADDRESS", "PV", "Server", "epics_stamp", "record_type_of"]

log = logging.getLogger(__name__)

#: Where beacons go unless told otherwise: the CA repeater on this host.
DEFAULT_BEACON_ADDRESS = ("127.0.0.1", REPEATER_PORT)
#: Bytes waiting in a circuit's send buffer beyond which subscription updates
#: are coalesced (only the latest per subscription is kept) until it drains.
HIGH_WATER = 1 << 20
_READ_CHUNK = 1 << 16
#: The CID of an ERROR about no channel.
_NO_CID = 0xFFFFFFFF
#: The last DBR type there is: a type beyond it is no type at all.
_LAST_TYPE = DBRType.CLASS_NAME
_UNSET: Any = object()
_PROPERTIES = ("units", "precision", "enum_strings", "record_type", *LIMITS)
#: Limits a PV has unless told: an EPICS 7 IOC reports the alarm and warning
#: limits of a record without alarm severities as NaN, the others as 0.
_DEFAULT_LIMITS = {
    name: math.nan if "alarm" in name or "warning" in name else 0.0 for name in LIMITS
}


class PV:
    """One process variable: native type, values and the metadata an IOC keeps.

    ``data_type`` is one of the seven native DBR types (``DBRType.DOUBLE`` ...);
    ``value`` a scalar or a sequence, converted to that type; ``count`` the
    largest number of elements (default: as many as ``value`` has), which CA
    clients see as the channel's native count. Limits are keyword arguments
    named as in ``db_access.h`` (``upper_disp_limit``, ``lower_alarm_limit``,
    ``upper_ctrl_limit`` ...); alarm and warning limits default to NaN, as an
    IOC reports them for a record without alarm severities, the others to 0.
    ``timestamp`` is in Unix seconds (default: now); ``stamp`` gives it exactly, as
    a TIME value carries it: (seconds since the EPICS epoch, nanoseconds).

    What the four special DBR types read and write: ``record_type`` is what
    DBR_CLASS_NAME reads (default: the type of record an IOC would most likely serve
    such a PV from, see :func:`record_type_of`); ``ackt`` (whether transient alarms
    must be acknowledged, DBR_PUT_ACKT) and ``acks`` (the highest severity not yet
    acknowledged, DBR_PUT_ACKS; default: ``severity``, an alarm nobody acknowledged)
    are what DBR_STSACK_STRING reads beside the alarm.
    """

    def __init__(
        self,
        name: str,
        data_type: int,
        value: Any = 0,
        *,
        count: int | None = None,
        units: str = "",
        precision: int = 0,
        enum_strings: Sequence[str] = (),
        status: int = 0,
        severity: int = 0,
        timestamp: float | None = None,
        stamp: tuple[int, int] | None = None,
        writable: bool = True,
        record_type: str | None = None,
        ackt: bool = True,
        acks: int | None = None,
        **limits: float,
    ) -> None:
        self.name = name
        self.data_type = DBRType(data_type)
        if self.data_type > DBRType.DOUBLE:
            raise ValueError(f"{self.data_type.dbr_name} is not a native value type")
        unknown = limits.keys() - set(LIMITS)
        if unknown:
            raise TypeError(f"unknown PV metadata: {', '.join(sorted(unknown))}")
        self.enum_strings = list(enum_strings)
        self.values = from_python(value, self.data_type, self.enum_strings)
        self.count = max(1, len(self.values)) if count is None else count
        if len(self.values) > self.count:
            raise ValueError(f"{len(self.values)} values for a PV of {self.count} elements")
        self.units = units
        self.precision = precision
        self.limits = {name: float(limits.get(name, _DEFAULT_LIMITS[name])) for name in LIMITS}
        self.status = status
        self._severity = severity
        if stamp is None:
            stamp = epics_stamp(time.time() if timestamp is None else timestamp)
        #: The timestamp as the wire carries it: (seconds since 1990, nanoseconds).
        self.stamp = stamp
        self.writable = writable
        self.record_type = record_type or record_type_of(self.data_type, self.count, writable)
        self.ackt = bool(ackt)
        self.acks = severity if acks is None else acks

    @property
    def severity(self) -> int:
        """The alarm severity. Setting it to another one does what an IOC does when a
        record's alarm changes: a severity at or above the one not yet acknowledged
        (:attr:`acks`) must be acknowledged in turn; without :attr:`ackt`, what is
        unacknowledged follows the severity down too."""
        return self._severity

    @severity.setter
    def severity(self, severity: int) -> None:
        if severity != self._severity and (not self.ackt or severity >= self.acks):
            self.acks = severity
        self._severity = severity

    @property
    def timestamp(self) -> float:
        """The timestamp in Unix seconds (:attr:`stamp` is the exact one)."""
        seconds, nanoseconds = self.stamp
        return seconds + EPICS_EPOCH_OFFSET + nanoseconds * 1e-9

    @timestamp.setter
    def timestamp(self, unix_seconds: float) -> None:
        self.stamp = epics_stamp(unix_seconds)

    @property
    def value(self) -> Any:
        """The value: a scalar for a one-element PV, else the list of values."""
        return self.values[0] if self.count == 1 and self.values else list(self.values)

    def metadata(self) -> dict[str, Any]:
        """Everything but the values, under the DBR field names."""
        seconds, nanoseconds = self.stamp
        return {
            "status": self.status, "severity": self.severity, "seconds": seconds,
            "nanoseconds": nanoseconds,
            "units": self.units, "precision": self.precision,
            "enum_strings": self.enum_strings, **self.limits,
            "record_type": self.record_type, "ackt": self.ackt, "acks": self.acks,
        }

    def metadata_for(self, data_type: int) -> dict[str, Any]:
        """The metadata a read in ``data_type`` gets: :meth:`metadata`, converted by
        :func:`~shark.peers.convert.to_dbr` to what the type carries. A subclass may
        answer per type (the replay gives what the capture showed for that type)."""
        return self.metadata()

    def read(self, data_type: int, count: int | None = None) -> DBRValue:
        """The value as a read in ``data_type`` gets it (a DBRValue of ``count``
        elements, all current ones by default). Raises ConversionError."""
        return to_dbr(data_type, self.values, self.data_type, self.metadata_for(data_type),
                      count)

    def update(
        self,
        value: Any = _UNSET,
        *,
        status: int | None = None,
        severity: int | None = None,
        timestamp: float | None = None,
        stamp: tuple[int, int] | None = None,
        **properties: Any,
    ) -> EventMask:
        """Change what is given; return the events this makes (VALUE|LOG for a new
        value, ALARM for a new status or severity, PROPERTY for new metadata).
        The timestamp becomes ``stamp`` or ``timestamp``, or now when a value or alarm
        is given."""
        unknown = properties.keys() - set(_PROPERTIES)
        if unknown:
            raise TypeError(f"unknown PV metadata: {', '.join(sorted(unknown))}")
        events = EventMask.NONE
        if properties:
            events |= self._set_properties(properties)
        if value is not _UNSET:
            events |= self._set_values(from_python(value, self.data_type, self.enum_strings))
        alarm = (self.status if status is None else status,
                 self.severity if severity is None else severity)
        if alarm != (self.status, self.severity):
            self.status, self.severity = alarm
            events |= EventMask.ALARM
        if stamp is not None:
            self.stamp = stamp
        elif timestamp is not None:
            self.timestamp = timestamp
        elif value is not _UNSET or status is not None or severity is not None:
            self.timestamp = time.time()
        return events

    def write(self, data: Any) -> EventMask:
        """Apply a client's write (a DBRValue of a plain type, or an alarm
        acknowledgement: DBR_PUT_ACKT, DBR_PUT_ACKS); return the events. Raises
        ConversionError when the values have no meaning in the native type or the type
        is one an IOC does not write. (The server itself takes acknowledgements and
        refuses the other types before calling this: a subclass's write sees values.)"""
        if data.dbr_type > DBRType.DOUBLE:
            return _acknowledge(self, data)
        source = layout(data.dbr_type).native_type
        values = convert(data.values, source, self.data_type, enum_strings=self.enum_strings,
                         precision=self.precision)
        events = self._set_values(_as_list(values))
        self.timestamp = time.time()
        return events

    def acknowledge(self, severity: int) -> EventMask:
        """Acknowledge alarms up to ``severity`` (a DBR_PUT_ACKS write): when it reaches
        the unacknowledged one, nothing is left to acknowledge (an ALARM event)."""
        if severity < self.acks:
            return EventMask.NONE
        self.acks = 0
        return EventMask.ALARM

    def acknowledge_transients(self, ackt: bool) -> EventMask:
        """Whether transient alarms must be acknowledged (a DBR_PUT_ACKT write); without,
        what is unacknowledged is at most the current severity (an ALARM event)."""
        if ackt == self.ackt:
            return EventMask.NONE
        self.ackt = ackt
        if not ackt and self.acks > self.severity:
            self.acks = self.severity
        return EventMask.ALARM

    def _set_values(self, values: list[Any]) -> EventMask:
        if len(values) > self.count:
            raise ConversionError(f"{len(values)} values for a PV of {self.count} elements")
        if self.count == 1 and not values:
            raise ConversionError("no value for a scalar PV")
        changed = values != self.values
        self.values = values
        return EventMask.VALUE | EventMask.LOG if changed else EventMask.NONE

    def _set_properties(self, properties: dict[str, Any]) -> EventMask:
        before = self.metadata()
        for name, new in properties.items():
            if name in LIMITS:
                self.limits[name] = float(new)
            else:
                setattr(self, name, list(new) if name == "enum_strings" else new)
        return EventMask.PROPERTY if self.metadata() != before else EventMask.NONE

    def __repr__(self) -> str:
        return f"PV({self.name!r}, {self.data_type.dbr_name}, {self.value!r})"


#: The record types :func:`record_type_of` names, by native type: (input, output).
_RECORD_TYPES = {
    DBRType.STRING: ("stringin", "stringout"), DBRType.SHORT: ("longin", "longout"),
    DBRType.FLOAT: ("ai", "ao"), DBRType.ENUM: ("mbbi", "mbbo"),
    DBRType.CHAR: ("longin", "longout"), DBRType.LONG: ("longin", "longout"),
    DBRType.DOUBLE: ("ai", "ao"),
}


def record_type_of(data_type: int, count: int = 1, writable: bool = True) -> str:
    """The record type an IOC most likely serves a PV of this native type, count and
    writability from (what DBR_CLASS_NAME reads when nothing better is known):
    ``waveform`` for an array, else an output record for a writable PV (``ao``,
    ``longout``, ``mbbo``, ``stringout``) and an input record otherwise."""
    if count > 1:
        return "waveform"
    return _RECORD_TYPES[DBRType(data_type)][bool(writable)]


def epics_stamp(unix_seconds: float) -> tuple[int, int]:
    """Unix seconds as (seconds since the EPICS epoch, nanoseconds); none before it."""
    seconds = unix_seconds - EPICS_EPOCH_OFFSET
    whole = max(0, int(seconds))
    return whole, min(999_999_999, max(0, int((seconds - whole) * 1e9)))


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _read_payload(pv: PV, data_type: int, count: int) -> tuple[int, int, bytes]:
    """(status, data_count, payload) of a read of ``count`` elements (0: all current
    ones). A failed conversion gives ECA_GETFAIL and zeros, as rsrv does."""
    wanted = len(pv.values) if count == 0 else count
    try:
        return ECA.ECA_NORMAL, wanted, encode(data_type, pv.read(data_type, wanted), wanted)
    except ConversionError:
        return ECA.ECA_GETFAIL, count, bytes(layout(data_type).size(count))


def _write(pv: PV, data: DBRValue) -> EventMask:
    """A client's write as an IOC takes it: a plain type is the PV's to apply
    (:meth:`PV.write`, which a subclass may refine); DBR_PUT_ACKT and DBR_PUT_ACKS
    acknowledge alarms, any other type cannot be written (ConversionError:
    ECA_PUTFAIL)."""
    if data.dbr_type > DBRType.DOUBLE:
        return _acknowledge(pv, data)
    return pv.write(data)


def _acknowledge(pv: PV, data: DBRValue) -> EventMask:
    """A write of other than a plain type: DBR_PUT_ACKT and DBR_PUT_ACKS acknowledge
    alarms; the STS to CTRL families, DBR_STSACK_STRING and DBR_CLASS_NAME cannot be
    written (ConversionError)."""
    if data.dbr_type not in (DBRType.PUT_ACKT, DBRType.PUT_ACKS):
        raise ConversionError(f"{data.dbr_type.dbr_name} cannot be written")
    if not len(data.values):
        raise ConversionError(f"no value in a {data.dbr_type.dbr_name} write")
    value = int(data.values[0])
    if data.dbr_type == DBRType.PUT_ACKT:
        return pv.acknowledge_transients(bool(value))
    return pv.acknowledge(value)


class _Refused(Exception):
    """A request that ends its circuit (the stream cannot be framed past it): answered
    by an ERROR message, then closed."""

    def __init__(self, request: m.Message, status: int, text: str,
                 payload_size: int | None = None) -> None:
        super().__init__(text)
        self.request = request
        self.status = status
        self.payload_size = payload_size


class _Dropped(Exception):
    """A request that ends its circuit without a word: a READ_NOTIFY of a DBR type no
    CA server has, which RSRV (and conformance suites with it) answer by closing."""


class _Watch:
    """A subscription as the server fans updates out: the PV it watches and the
    circuit that posts them. All else (id, DBR type, count, mask, channel, whether it
    is still live) is the decoder's :class:`Subscription`, the very object the
    circuit's state keeps, so there is one account of it."""

    __slots__ = ("circuit", "pv", "subscription")

    def __init__(self, circuit: _ServerCircuit, pv: PV, subscription: Subscription) -> None:
        self.circuit = circuit
        self.pv = pv
        self.subscription = subscription


class Server(Service):
    """A CA server for ``pvs``. Use ``async with Server(...) as server`` or
    :meth:`start` / :meth:`stop`.

    ``port`` is the UDP port searches come to (0: any free one); ``tcp_port``
    the one circuits connect to (default: the same number as ``port``; 0: any
    free one). Both are known after start as :attr:`udp_port` and
    :attr:`tcp_port`. Beacons go to ``beacon_address`` (None: no beacons), at
    intervals doubling from 20 ms up to ``beacon_period`` seconds.
    """

    def __init__(
        self,
        pvs: Iterable[PV],
        *,
        host: str = "127.0.0.1",
        port: int = SERVER_PORT,
        tcp_port: int | None = None,
        beacon_address: tuple[str, int] | None = DEFAULT_BEACON_ADDRESS,
        beacon_period: float = 15.0,
    ) -> None:
        self.pvs: dict[str, PV] = {pv.name: pv for pv in pvs}
        self.host = host
        self._port = port
        self._tcp_port = port if tcp_port is None else tcp_port
        self.beacon_address = beacon_address
        self.beacon_period = beacon_period
        self.udp_port = 0
        self.tcp_port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._beacons: asyncio.Task | None = None
        self._circuits: dict[_ServerCircuit, asyncio.Task] = {}
        #: The watches of each PV by name, each by its decoder subscription: whom an
        #: update of the PV goes to.
        self._watches: dict[str, dict[Subscription, _Watch]] = {}
        self._next_sid = 1
        #: What clients do wrong, told once per client and kind.
        self.misbehaviour = Misbehaviours(log)

    async def start(self) -> None:
        """Bind the UDP and TCP ports and start beaconing."""
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _SearchResponder(self), local_addr=(self.host, self._port)
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        try:
            self._tcp = await asyncio.start_server(self._serve, self.host, self._tcp_port)
        except OSError:
            await self.stop()
            raise
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        if self.beacon_address is not None:
            self._beacons = asyncio.create_task(self._beacon_loop())

    async def stop(self) -> None:
        """Close every circuit and socket; return when all is closed."""
        if self._beacons is not None:
            self._beacons.cancel()
        if self._tcp is not None:
            self._tcp.close()
        # Aborting the transport ends a circuit's reader at once; cancelling its task
        # instead would trip asyncio's stream server, which expects callbacks to finish.
        for circuit in list(self._circuits):
            circuit.writer.transport.abort()
        if self._circuits:
            await asyncio.wait(list(self._circuits.values()), timeout=2.0)
        if self._beacons is not None:
            await asyncio.gather(self._beacons, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._udp is not None:
            self._udp.close()
            await self._udp.get_protocol().closed  # the port is free once this is done
        self.misbehaviour.close()

    @property
    def circuit_count(self) -> int:
        """How many clients are connected."""
        return len(self._circuits)

    def add(self, pv: PV) -> None:
        """Serve ``pv`` too (or instead of a PV of the same name)."""
        self.remove(pv.name)
        self.pvs[pv.name] = pv

    def remove(self, name: str) -> None:
        """Stop serving ``name``: its channels get SERVER_DISCONN (clients search again)."""
        pv = self.pvs.pop(name, None)
        if pv is not None:
            for circuit in list(self._circuits):
                circuit.disconnect(pv)

    def set(self, name: str, value: Any = _UNSET, *, force: bool = False, **changes: Any) -> None:
        """Change a PV from outside (value, ``status``, ``severity``, ``timestamp`` or
        ``stamp``, ``units``, limits ...) and post the updates this makes to subscribers.
        ``force`` posts a value and alarm update even when nothing changed, as a
        record processed with a monitor deadband of -1 does."""
        pv = self.pvs[name]
        events = pv.update(value, **changes)
        if force:
            events |= EventMask.VALUE | EventMask.LOG | EventMask.ALARM
        self._post(pv, events)

    # -- what a subclass may watch ----------------------------------------------------

    def opened(self, peer: Any) -> None:
        """A client's circuit is open (``peer``: its address). Nothing by default."""

    def closed(self, peer: Any) -> None:
        """A client's circuit is closed. Nothing by default."""

    def requested(self, peer: Any, request: m.Message, pv: PV | None) -> None:
        """A request the circuit of ``peer`` accepted, before it is answered (``pv``:
        the PV of its channel, None for one not connected yet). Nothing by default: a
        replay moves its timeline here."""

    # -- inside --------------------------------------------------------------------

    def _new_sid(self) -> int:
        sid = self._next_sid
        self._next_sid = (sid + 1) & 0xFFFFFFFF
        return sid

    def _post(self, pv: PV, events: EventMask) -> None:
        """Send an update to every subscription of ``pv`` whose mask takes ``events``."""
        if not events:
            return
        encoded: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        for watch in list(self._watches.get(pv.name, {}).values()):
            sub = watch.subscription
            if sub.mask & events:
                key = (sub.data_type, sub.data_count)
                if key not in encoded:
                    encoded[key] = _read_payload(pv, sub.data_type, sub.data_count)
                watch.circuit.post(sub, *encoded[key])

    def _watch(self, watch: _Watch) -> None:
        """Post the updates of ``watch.pv`` to it too. Filed under its channel's name, which
        is its PV's (a channel is created by the name the PV is served under)."""
        name = watch.subscription.channel.name  # type: ignore[union-attr]
        self._watches.setdefault(name, {})[watch.subscription] = watch

    def _unwatch(self, subscription: Subscription) -> None:
        """Forget the watch of ``subscription``, if it has one (a subscription refused
        for its count never had)."""
        name = subscription.channel.name if subscription.channel is not None else None
        watches = self._watches.get(name)
        if watches is None:
            return
        watches.pop(subscription, None)
        if not watches:
            del self._watches[name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        circuit = _ServerCircuit(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._circuits[circuit] = task
        self.opened(circuit.peer)
        try:
            await circuit.run()
        finally:
            del self._circuits[circuit]
            self.closed(circuit.peer)

    async def _beacon_loop(self) -> None:
        assert self._udp is not None and self.beacon_address is not None
        address = self._udp.get_extra_info("sockname")[0]
        address = int.from_bytes(socket.inet_aton(address), "big")
        interval, beaconid = 0.02, 0
        while True:
            beacon = m.Beacon(server_port=self.tcp_port, beaconid=beaconid, address=address)
            self._udp.sendto(beacon.to_bytes(), self.beacon_address)
            beaconid = (beaconid + 1) & 0xFFFFFFFF
            await asyncio.sleep(interval)
            interval = min(interval * 2, self.beacon_period)


class _SearchResponder(asyncio.DatagramProtocol):
    """Answers UDP searches for the names the server has, and only those: over UDP
    an unknown name gets no answer even when the search asks for one (DO_REPLY), as
    RSRV does: a search goes to every server, and all but one would answer NOT_FOUND."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            requests = split_datagram(data, Role.CLIENT)
        except DecodeError as error:
            requests = error.messages
        version = m.VersionResponse()
        replies: list[m.Message] = []
        for request in requests:
            if isinstance(request, m.VersionRequest):
                version = m.VersionResponse(priority=request.priority,
                                            sequence_number=request.sequence_number)
            elif isinstance(request, m.SearchRequest):
                if request.name in self.server.pvs:
                    replies.append(m.SearchResponse(
                        port=self.server.tcp_port, ip=ADDRESS_OF_SENDER, cid=request.cid,
                        version=MINOR_VERSION))
        if replies and self.transport is not None:
            self.transport.sendto(b"".join(r.to_bytes() for r in [version, *replies]), addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("search socket: %s", exc)


class _ServerCircuit:
    """One client's TCP circuit."""

    def __init__(self, server: Server, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        #: How the client is named where its misbehaviour is noted: by host, so that
        #: one opening connection after connection is still told once per kind.
        self.who = f"client {self.peer[0]}" if self.peer else "client ?"
        self.framer = StreamFramer(Role.CLIENT)
        self.state = Circuit(strict=True, local=Role.SERVER)
        #: Set once this server broke the protocol on the circuit (a bug), to close it.
        self.broken: LocalProtocolError | None = None
        #: Updates held back (events off, or a full send buffer), latest per subscription.
        self._held: dict[int, m.Message] = {}
        self._flush = asyncio.Event()
        # Reader and flusher both wait for the send buffer; Python 3.10's streams
        # allow only one waiter at a time.
        self._drain_lock = asyncio.Lock()
        self._handlers = {
            m.VersionRequest: _ignore, m.ClientNameRequest: _ignore,
            m.HostNameRequest: _ignore, m.EventsOffRequest: _ignore,
            m.ReadSyncRequest: _ignore, m.EventsOnRequest: self._events_on,
            m.CreateChanRequest: self._create_channel, m.ClearChannelRequest: self._clear,
            m.ReadNotifyRequest: self._read_notify, m.ReadRequest: self._read,
            m.WriteRequest: self._write, m.WriteNotifyRequest: self._write_notify,
            m.EventAddRequest: self._event_add, m.EventCancelRequest: self._event_cancel,
            m.EchoRequest: self._echo, m.SearchRequest: self._search,
        }

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_held())
        try:
            self._send(m.VersionResponse())
            await self._receive()
        except _Refused as refusal:
            self.server.misbehaviour.note(self.who, Kind.PROTOCOL,
                                          f"a circuit closed: {refusal}")
            self._send(m.ErrorResponse(
                cid=self._cid_of(refusal.request), status=refusal.status,
                original_request=refusal.request, error_message=str(refusal),
                original_payload_size=refusal.payload_size))
        except _Dropped as dropped:
            self.server.misbehaviour.note(self.who, Kind.PROTOCOL,
                                          f"a circuit closed: {dropped}")
        except LocalProtocolError as error:
            self._broke(error)
        except OSError as error:  # the client went away while we wrote
            log.debug("circuit of %s: %s", self.peer, error)
        finally:
            flusher.cancel()
            await self._close()

    def _broke(self, error: LocalProtocolError) -> None:
        """This server broke the protocol (a bug): say so once and end the circuit."""
        if self.broken is None:
            self.broken = error
            log.error("closing circuit of %s: this server broke the protocol: %s",
                      self.peer, error)
        self.writer.transport.close()

    async def _receive(self) -> None:
        while data := await self.reader.read(_READ_CHUNK):
            try:
                requests = self.framer.feed(data)
            except DecodeError as error:
                for request in error.messages:
                    self._handle(request)
                raise self._unframeable(error) from None
            for request in requests:
                if self._gone():  # the rest would be answered to nobody
                    return
                self._handle(request)
            await self._drain()

    def _gone(self) -> bool:
        """The connection is lost (or being closed): nothing more can be sent."""
        return self.writer.transport.is_closing()

    def _unframeable(self, error: DecodeError) -> _Refused:
        """The refusal of a header claiming more than the framer accepts."""
        rest = self.framer.clear()
        command, size, data_type, count, p1, p2, header_size = decode_header(rest)
        request = make_message(command, Role.CLIENT, data_type, count, p1, p2, b"",
                               header_size == EXTENDED_HEADER_SIZE)
        return _Refused(request, ECA.ECA_TOLARGE, str(error), size)

    def _handle(self, request: m.Message) -> None:
        """Answer one request. One that is wrong by itself (an id never given, a
        command a client may not send, a payload too short for what it claims) gets
        an ERROR naming it, and the circuit goes on: the framing is intact."""
        handler = self._handlers.get(type(request))
        if handler is None:
            self._refuse(request, ECA.ECA_INTERNAL,
                         f"{request.command_name} is not a request a client may send")
            return
        try:
            attribution = self.state.handle(request, Role.CLIENT)
        except RemoteProtocolError as error:
            self._refuse(request, self._status_of_breach(request), str(error))
            return
        try:
            pv = self._pv(attribution.channel)
            self.server.requested(self.peer, request, pv)
            handler(request, pv)
        except DecodeError as error:
            self._refuse(request, ECA.ECA_INTERNAL, str(error))

    def _refuse(self, request: m.Message, status: int, text: str) -> None:
        """Answer a request that is wrong by itself with an ERROR; the circuit goes on."""
        self.server.misbehaviour.note(self.who, Kind.REFUSED, f"a request refused: {text}")
        self._send(m.ErrorResponse(cid=self._cid_of(request), status=status,
                                   original_request=request, error_message=text))

    def _status_of_breach(self, request: m.Message) -> int:
        """The ECA status of a request the circuit's state refused: an unknown channel
        (ECA_BADCHID), an unknown or reused subscription id (ECA_BADMONID), else
        ECA_INTERNAL."""
        sid = getattr(request, "sid", None)
        if sid is not None and sid not in self.state.channels_by_sid:
            return ECA.ECA_BADCHID
        if isinstance(request, (m.EventAddRequest, m.EventCancelRequest)):
            return ECA.ECA_BADMONID
        return ECA.ECA_INTERNAL

    def _cid_of(self, request: m.Message) -> int:
        """The CID an ERROR about ``request`` names: that of the channel its SID names,
        the one it carries itself (CREATE_CHAN, CLEAR_CHANNEL, SEARCH), else
        0xFFFFFFFF (no channel), as RSRV does."""
        sid = getattr(request, "sid", None)
        channel = self.state.channels_by_sid.get(sid) if sid is not None else None
        if channel is not None and channel.cid is not None:
            return channel.cid
        cid = getattr(request, "cid", None)
        return _NO_CID if cid is None else cid

    def _pv(self, channel: Channel | None) -> PV | None:
        """The PV a connected channel serves (the circuit knows its name)."""
        if channel is None or channel.sid is None:
            return None
        return self.server.pvs.get(channel.name)

    def _send(self, message: m.Message) -> None:
        """Send ``message``; one the protocol forbids raises LocalProtocolError unsent.
        Once the connection is lost it is only counted: asyncio would log each write."""
        if self._gone():
            self.server.misbehaviour.note(
                self.who, Kind.WENT_AWAY, "went away; what was still to send is dropped")
            return
        self.state.handle(message, Role.SERVER)
        self.writer.write(message.to_bytes())

    def _error(self, request: m.Message, status: int, text: str) -> None:
        self._send(m.ErrorResponse(cid=self._cid_of(request), status=status,
                                   original_request=request, error_message=text))

    # -- requests ------------------------------------------------------------------

    def _create_channel(self, request: m.CreateChanRequest, _: PV | None) -> None:
        pv = self.server.pvs.get(request.name)
        if pv is None:
            self._send(m.CreateChFailResponse(cid=request.cid))
            return
        sid = self.server._new_sid()
        rights = AccessRights.READ | (AccessRights.WRITE if pv.writable else AccessRights.NONE)
        self._send(m.AccessRightsResponse(cid=request.cid, access_rights=rights))
        self._send(m.CreateChanResponse(data_type=pv.data_type, data_count=pv.count,
                                        cid=request.cid, sid=sid))

    def _clear(self, request: m.ClearChannelRequest, _: PV | None) -> None:
        # Before the reply: sending it makes the decoder forget the channel's subscriptions.
        self._drop_all(self.state.channels_by_sid[request.sid])
        self._send(m.ClearChannelResponse(sid=request.sid, cid=request.cid))

    def _readable(self, request: m.Message, pv: PV) -> bool:
        """Check a read's type and count: a type no DBR has or a count beyond the PV's
        gets an ERROR message (ECA_BADTYPE, ECA_BADCOUNT), but for a READ_NOTIFY of a
        type no DBR has, which ends the circuit without a word, as RSRV does."""
        if not 0 <= request.data_type <= _LAST_TYPE:
            text = f"no DBR type {request.data_type} to read {pv.name} as"
            if isinstance(request, m.ReadNotifyRequest):
                raise _Dropped(text)
            self._error(request, ECA.ECA_BADTYPE, text)
            return False
        if request.data_count > pv.count:
            self._error(request, ECA.ECA_BADCOUNT,
                        f"{pv.name} has {pv.count} elements, {request.data_count} asked for")
            return False
        return True

    def _read_notify(self, request: m.ReadNotifyRequest, pv: PV) -> None:
        if self._readable(request, pv):
            status, count, payload = _read_payload(pv, request.data_type, request.data_count)
            self._send(m.ReadNotifyResponse(data_type=request.data_type, data_count=count,
                                            status=status, ioid=request.ioid, payload=payload))

    def _read(self, request: m.ReadRequest, pv: PV) -> None:
        if self._readable(request, pv):
            status, count, payload = _read_payload(pv, request.data_type, request.data_count)
            if status != ECA.ECA_NORMAL:
                self._error(request, status, f"{pv.name} cannot be read as DBR type "
                                             f"{request.data_type}")
                return
            self._send(m.ReadResponse(data_type=request.data_type, data_count=count,
                                      sid=request.sid, ioid=request.ioid, payload=payload))

    def _apply_write(self, request: m.WriteRequest | m.WriteNotifyRequest, pv: PV) -> int:
        """Write; the status: ECA_BADTYPE for a type no DBR has, ECA_BADCOUNT for more
        elements than the PV has or the payload holds, ECA_PUTFAIL for a type an IOC
        does not write (STS to CTRL, STSACK_STRING, CLASS_NAME) or values that mean
        nothing in the PV's type."""
        if not pv.writable:
            return ECA.ECA_NOWTACCESS
        if not 0 <= request.data_type <= _LAST_TYPE:
            return ECA.ECA_BADTYPE
        if request.data_count > pv.count:
            return ECA.ECA_BADCOUNT
        try:
            data = request.data
        except DecodeError as error:
            log.debug("write to %s refused: %s", pv.name, error)
            return ECA.ECA_BADCOUNT
        try:
            events = _write(pv, data)
        except ConversionError as error:
            log.debug("write to %s refused: %s", pv.name, error)
            return ECA.ECA_PUTFAIL
        self.server._post(pv, events)
        return ECA.ECA_NORMAL

    def _write(self, request: m.WriteRequest, pv: PV) -> None:
        status = self._apply_write(request, pv)
        if status != ECA.ECA_NORMAL:
            self._error(request, status, f"write to {pv.name} failed")

    def _write_notify(self, request: m.WriteNotifyRequest, pv: PV) -> None:
        status = self._apply_write(request, pv)
        self._send(m.WriteNotifyResponse(data_type=request.data_type,
                                         data_count=request.data_count, status=status,
                                         ioid=request.ioid))

    def _event_add(self, request: m.EventAddRequest, pv: PV) -> None:
        sub = self.state.subscriptions[request.subscriptionid]  # the request made it
        if sub.mask is None:  # a payload too short to hold one: the request says why
            _ = request.mask  # raises DecodeError
        if not self._readable(request, pv):
            return
        self.server._watch(_Watch(self, pv, sub))
        self.post(sub, *_read_payload(pv, sub.data_type, sub.data_count))

    def _event_cancel(self, request: m.EventCancelRequest, _: PV | None) -> None:
        # Before the reply: sending it makes the decoder forget the subscription.
        self._drop(self.state.subscriptions[request.subscriptionid])
        self._send(m.EventCancelResponse(data_type=request.data_type,
                                         data_count=request.data_count, sid=request.sid,
                                         subscriptionid=request.subscriptionid))

    def disconnect(self, pv: PV) -> None:
        """Drop the channels of a PV the server no longer has (SERVER_DISCONN)."""
        served = [channel for channel in self.state.channels_by_sid.values()
                  if channel.name == pv.name and channel.cid is not None]
        try:
            for channel in served:
                self._drop_all(channel)
                self._send(m.ServerDisconnResponse(cid=channel.cid))
        except LocalProtocolError as error:
            self._broke(error)

    def _echo(self, request: m.EchoRequest, _: PV | None) -> None:
        self._send(m.EchoResponse())

    def _search(self, request: m.SearchRequest, _: PV | None) -> None:
        """A name search on the circuit (clients of CA 4.12 and later; older ones are
        answered too): the reply for a name served, NOT_FOUND echoing the request for
        one not served when asked for, silence otherwise."""
        if request.name in self.server.pvs:
            self._send(m.SearchResponse(port=self.server.tcp_port, ip=ADDRESS_OF_SENDER,
                                        cid=request.cid))
        elif request.reply == SearchReply.DO_REPLY:
            self._send(m.NotFoundResponse(reply=request.reply, version=request.version,
                                          cid=request.cid, parameter2=request.parameter2))
        else:
            self.state.forget_search(request.cid)

    def _events_on(self, request: m.EventsOnRequest, _: PV | None) -> None:
        self._flush.set()

    # -- subscription updates ------------------------------------------------------

    def post(self, sub: Subscription, status: int, count: int, payload: bytes) -> None:
        """Send an update now, or hold it (replacing an older one) while events are
        off or the client is not reading fast enough."""
        update = m.EventAddResponse(data_type=sub.data_type, data_count=count, status=status,
                                    subscriptionid=sub.subscriptionid, payload=payload)
        if self.broken is not None:
            return
        if self._gone():
            self._send(update)  # counted, not sent
            return
        if self.state.events_on and not self._held and self._buffered() < HIGH_WATER:
            try:
                self._send(update)
            except LocalProtocolError as error:
                self._broke(error)
        else:
            self._held[sub.subscriptionid] = update
            self._flush.set()

    async def _drain(self) -> None:
        async with self._drain_lock:
            await self.writer.drain()

    def _buffered(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def _flush_held(self) -> None:
        with contextlib.suppress(OSError):  # the client went away: the reader sees it too
            try:
                while True:
                    await self._flush.wait()
                    self._flush.clear()
                    while self._held and self.state.events_on and not self._gone():
                        if self._buffered() >= HIGH_WATER:
                            await self._drain()
                            continue
                        subid = next(iter(self._held))
                        self._send(self._held.pop(subid))
            except LocalProtocolError as error:
                self._broke(error)

    def _drop(self, sub: Subscription) -> None:
        """No more updates for ``sub``: its watch and any update held back go."""
        self._held.pop(sub.subscriptionid, None)
        self.server._unwatch(sub)

    def _drop_all(self, channel: Channel) -> None:
        """Drop the subscriptions of ``channel``, as the decoder's channel knows them."""
        for sub in list(channel.subscriptions.values()):
            self._drop(sub)

    async def _close(self) -> None:
        for sub in list(self.state.subscriptions.values()):
            self._drop(sub)
        self._held.clear()
        self.state.close()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout=1.0)
        except (asyncio.TimeoutError, OSError):
            self.writer.transport.abort()


def _ignore(request: m.Message, _: PV | None) -> None:
    """Requests whose only effect is on the circuit state (names, flow control)."""

