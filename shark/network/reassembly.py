"""TCP reassembly: the bytes each side of a connection sent, in order, once each.

:class:`TcpReassembler` takes TCP segments (:class:`shark.network.packets.Packet`) in capture
order and returns :class:`TcpEvent` records per connection direction (a
:class:`Half`):

* ``OPEN``: a connection was seen for the first time (with its SYN or mid-stream);
* ``DATA``: the next bytes of a direction, in sequence order, each byte once;
* ``GAP``: bytes of a direction that will never be seen (``size`` of them), after which
  ``DATA`` continues with the bytes that follow the hole;
* ``CLOSE``: a direction ended (FIN once every byte before it was delivered, RST, a new
  connection on the same addresses and ports, or the end of the capture).

Sequence numbers are mapped to a per-direction stream offset counted from the SYN's
ISN, or from the first byte seen when the capture starts mid-connection, with
wraparound handled by taking the 32-bit difference to the next expected sequence
number as signed. Bytes before that point are retransmissions or overlaps and are
dropped; segments after it are held until the bytes in between arrive.

A hole is declared a gap as soon as the receiver acknowledges bytes beyond it: it got
them, so the sender will not send them again, and the capture missed them for good.
Otherwise (acknowledgements not captured) a hole is declared when holding gets too
large: past :data:`MAX_HELD_PER_DIRECTION` bytes in one direction, or
:data:`MAX_HELD_TOTAL` over all connections; on RST; and at the end of the capture.
Segments are expected in capture order; a capture that shows an acknowledgement before
the data it acknowledges (which a capture point between the two hosts cannot) would
make that data look lost.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import NamedTuple

from shark.network.packets import Packet, TcpFlags, format_address

__all__ = [
    "CLOSE",
    "DATA",
    "GAP",
    "MAX_HELD_PER_DIRECTION",
    "MAX_HELD_TOTAL",
    "OPEN",
    "Connection",
    "Half",
    "TcpEvent",
    "TcpReassembler",
]

OPEN, DATA, GAP, CLOSE = "open", "data", "gap", "close"

#: Out-of-order bytes held for one direction before the hole before them is given up.
MAX_HELD_PER_DIRECTION = 4 * 1024 * 1024
#: Out-of-order bytes held for all connections together.
MAX_HELD_TOTAL = 64 * 1024 * 1024
#: Closed connections remembered, so that their late retransmissions are recognised as
#: such instead of looking like a new connection seen mid-stream.
MAX_CLOSED_REMEMBERED = 4096

_MASK = 0xFFFFFFFF
_HALF_RANGE = 0x80000000
_SYN, _FIN, _RST, _ACK = TcpFlags.SYN, TcpFlags.FIN, TcpFlags.RST, TcpFlags.ACK
_SYN_FIN_RST = _SYN | _FIN | _RST
#: Named tuples built with ``tuple.__new__`` directly: half the cost of the class call.
_new = tuple.__new__


class TcpEvent(NamedTuple):
    kind: str
    half: Half
    #: Frame number and time of the segment that caused the event.
    frame: int
    time: float
    #: DATA: the bytes. Empty otherwise.
    data: bytes | memoryview
    #: DATA: len(data); GAP: the number of bytes missing; 0 otherwise.
    size: int
    #: GAP and CLOSE: why ("hold limit", "fin", "rst", "reused", "end of capture").
    reason: str = ""


class Half:
    """One direction of a connection: from (src, sport) to (dst, dport)."""

    __slots__ = (
        "connection", "peer", "src", "sport", "dst", "dport", "isn", "next_seq", "offset",
        "held", "held_bytes", "fin_offset", "closed",
    )

    def __init__(self, connection: Connection, src: bytes, sport: int, dst: bytes,
                 dport: int) -> None:
        self.connection = connection
        #: The other direction (set by the connection).
        self.peer: Half = self
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport
        #: The ISN from this direction's SYN, if seen.
        self.isn: int | None = None
        #: Sequence number of the next byte expected; None before the first segment.
        self.next_seq: int | None = None
        #: Stream offset of that byte: bytes delivered plus bytes declared missing.
        self.offset = 0
        #: Out-of-order segments, a heap of (stream offset, frame, bytes, time).
        self.held: list[tuple[int, int, bytes, float]] = []
        self.held_bytes = 0
        #: Stream offset of the FIN, once seen.
        self.fin_offset: int | None = None
        self.closed = False

    @property
    def from_client(self) -> bool | None:
        """True if the client (the side that sent the SYN) sends this direction; None
        when the connection was seen without its handshake."""
        client = self.connection.client
        return None if client is None else client is self

    def __repr__(self) -> str:
        return (f"Half({format_address(self.src)}:{self.sport} -> "
                f"{format_address(self.dst)}:{self.dport})")


class Connection:
    """A TCP connection: two halves, and which one is the client's once known."""

    __slots__ = ("number", "halves", "client")

    def __init__(self, number: int, packet: Packet) -> None:
        #: 1-based, in order of first appearance.
        self.number = number
        self.halves = (
            Half(self, packet.src, packet.sport, packet.dst, packet.dport),
            Half(self, packet.dst, packet.dport, packet.src, packet.sport),
        )
        self.halves[0].peer, self.halves[1].peer = self.halves[1], self.halves[0]
        #: The half the SYN came on (client to server), None until known.
        self.client: Half | None = None

    @property
    def closed(self) -> bool:
        return self.halves[0].closed and self.halves[1].closed


class TcpReassembler:
    """Reassembles every TCP connection it is fed. See the module documentation."""

    def __init__(self, max_held: int = MAX_HELD_PER_DIRECTION,
                 max_held_total: int = MAX_HELD_TOTAL) -> None:
        self.max_held = max_held
        self.max_held_total = max_held_total
        self._halves: dict[tuple[bytes, int, bytes, int], Half] = {}
        self._closed: OrderedDict[tuple[bytes, int, bytes, int], Half] = OrderedDict()
        self._held_total = 0
        self._connections = 0
        #: The frame and time of the latest segment, which end-of-capture events carry.
        self._last = (0, 0.0)

    def half(self, key: tuple[bytes, int, bytes, int]) -> Half | None:
        """The open direction from (src, sport) to (dst, dport), if there is one."""
        return self._halves.get(key)

    def advance(self, half: Half, seq: int, ack: int, flags: int, size: int, frame: int,
                time: float) -> bool:
        """The common case of :meth:`feed`, for a reader that has a segment's fields
        but no :class:`Packet`: if the segment is the next of an established direction,
        in order, from a side that has seen all the other sent, take it and return True
        (its ``size`` payload bytes, if any, are the direction's next DATA). False: the
        segment is to be fed."""
        if (half.next_seq == seq and not half.held and not flags & _SYN_FIN_RST
                and not half.closed and half.peer.next_seq == ack):
            self._last = (frame, time)
            if size:
                half.offset += size
                half.next_seq = (seq + size) & _MASK
            return True
        return False

    def feed(self, packet: Packet) -> list[TcpEvent]:
        """Process one segment; return the events it caused, in order."""
        frame, time, src, sport, dst, dport, _transport, seq, ack, flags, payload = packet
        key = (src, sport, dst, dport)
        half = self._halves.get(key)
        if half is not None and self.advance(half, seq, ack, flags, len(payload), frame, time):
            # (a bare ACK: nothing at all)
            return [_new(TcpEvent, (DATA, half, frame, time, payload, len(payload), ""))
                    ] if payload else []
        self._last = (frame, time)
        events: list[TcpEvent] = []
        if half is None:
            half = self._closed.get(key)
            if half is not None and flags & _SYN and not _is_repeat_syn(half, packet.seq):
                self._forget(half.connection)
                half = None
            if half is None:
                if not (flags & _SYN or packet.payload):
                    return events  # a lone ACK/FIN/RST of a connection we never saw
                half = self._open(packet, events)
        elif flags & _SYN and half.next_seq is not None and not _is_repeat_syn(half, packet.seq):
            # The addresses and ports are reused by a new connection.
            self._finish(half.connection, packet.frame, packet.time, "reused", events)
            self._forget(half.connection)
            half = self._open(packet, events)
        if flags & _RST:
            if not half.connection.closed:
                self._finish(half.connection, packet.frame, packet.time, "rst", events)
            return events
        peer = half.peer
        if flags & _ACK and peer.next_seq is not None and not peer.closed:
            self._acknowledged(peer, packet, events)
        if half.closed:
            return events  # a retransmission after the FIN
        seq = packet.seq
        if flags & _SYN:
            if half.next_seq is None:
                half.isn = seq
                half.next_seq = (seq + 1) & _MASK
                connection = half.connection
                if connection.client is None:
                    connection.client = half.peer if flags & _ACK else half
            seq = (seq + 1) & _MASK
        elif half.next_seq is None:
            half.next_seq = seq  # seen mid-stream: start at the first byte seen
        payload = packet.payload
        if payload:
            self._segment(half, seq, payload, packet, events)
        if flags & _FIN and half.fin_offset is None:
            half.fin_offset = half.offset + _signed(seq - half.next_seq) + len(payload)
            self._close_if_done(half, packet.frame, packet.time, events)
        return events

    def flush(self) -> list[TcpEvent]:
        """End of capture: declare every remaining hole and close every direction."""
        events: list[TcpEvent] = []
        frame, time = self._last
        for half in list(self._halves.values()):
            if not half.connection.closed:
                self._finish(half.connection, frame, time, "end of capture", events)
        self._halves.clear()
        self._closed.clear()
        return events

    # -- internals ---------------------------------------------------------------------

    def _open(self, packet: Packet, events: list[TcpEvent]) -> Half:
        self._connections += 1
        connection = Connection(self._connections, packet)
        for half in connection.halves:
            self._halves[(half.src, half.sport, half.dst, half.dport)] = half
        half = connection.halves[0]
        events.append(TcpEvent(OPEN, half, packet.frame, packet.time, b"", 0))
        return half

    def _segment(self, half: Half, seq: int, payload: memoryview, packet: Packet,
                 events: list[TcpEvent]) -> None:
        ahead = _signed(seq - half.next_seq)
        if ahead > 0:
            self._hold(half, half.offset + ahead, payload, packet, events)
            return
        if ahead < 0:
            if len(payload) <= -ahead:
                return  # a retransmission of bytes already delivered
            payload = payload[-ahead:]
        self._deliver(half, payload, packet.frame, packet.time, events)
        if half.held:
            self._drain(half, events)
        if half.fin_offset is not None:
            self._close_if_done(half, packet.frame, packet.time, events)

    def _deliver(self, half: Half, data: bytes | memoryview, frame: int, time: float,
                 events: list[TcpEvent]) -> None:
        size = len(data)
        half.offset += size
        half.next_seq = (half.next_seq + size) & _MASK
        events.append(_new(TcpEvent, (DATA, half, frame, time, data, size, "")))

    def _drain(self, half: Half, events: list[TcpEvent]) -> None:
        """Deliver held segments that the stream has reached."""
        held = half.held
        while held and held[0][0] <= half.offset:
            offset, frame, data, time = heapq.heappop(held)
            half.held_bytes -= len(data)
            self._held_total -= len(data)
            skip = half.offset - offset
            if skip < len(data):
                self._deliver(half, memoryview(data)[skip:], frame, time, events)

    def _hold(self, half: Half, offset: int, payload: memoryview, packet: Packet,
              events: list[TcpEvent]) -> None:
        data = bytes(payload)  # a copy: the frame's buffer is not ours to keep
        heapq.heappush(half.held, (offset, packet.frame, data, packet.time))
        half.held_bytes += len(data)
        self._held_total += len(data)
        if half.held_bytes > self.max_held:
            self._skip_hole(half, packet.frame, packet.time, "hold limit", events)
        while self._held_total > self.max_held_total:
            fullest = max(self._halves.values(), key=lambda h: h.held_bytes)
            self._skip_hole(fullest, packet.frame, packet.time, "hold limit", events)

    def _acknowledged(self, half: Half, packet: Packet, events: list[TcpEvent]) -> None:
        """The peer of ``half`` acknowledges ``packet.ack``: bytes of ``half`` up to there
        that were not captured never will be."""
        ahead = _signed(packet.ack - half.next_seq)
        if ahead <= 0:
            return
        end = half.offset + ahead
        if half.fin_offset is not None:
            end = min(end, half.fin_offset)  # the FIN takes a sequence number too
        if half.held:
            end = min(end, half.held[0][0])
        self._skip(half, end - half.offset, packet.frame, packet.time,
                   "acknowledged by the receiver", events)

    def _skip_hole(self, half: Half, frame: int, time: float, reason: str,
                   events: list[TcpEvent]) -> None:
        """Give up the bytes missing before the first held segment, then deliver on."""
        self._skip(half, half.held[0][0] - half.offset, frame, time, reason, events)

    def _skip(self, half: Half, missing: int, frame: int, time: float, reason: str,
              events: list[TcpEvent]) -> None:
        """Declare the next ``missing`` bytes of ``half`` lost and deliver what follows."""
        if missing > 0:
            half.offset += missing
            half.next_seq = (half.next_seq + missing) & _MASK
            events.append(TcpEvent(GAP, half, frame, time, b"", missing, reason))
            self._drain(half, events)
        if half.fin_offset is not None:
            self._close_if_done(half, frame, time, events)

    def _close_if_done(self, half: Half, frame: int, time: float,
                       events: list[TcpEvent]) -> None:
        """Close a direction whose FIN was seen once every byte before it is in."""
        if not half.closed and half.offset >= half.fin_offset:
            self._close(half, frame, time, "fin", events)

    def _close(self, half: Half, frame: int, time: float, reason: str,
               events: list[TcpEvent]) -> None:
        half.closed = True
        if half.held:  # bytes claimed to follow the FIN: nothing will deliver them
            self._held_total -= half.held_bytes
            half.held, half.held_bytes = [], 0
        events.append(TcpEvent(CLOSE, half, frame, time, b"", 0, reason))
        if half.connection.closed:
            self._retire(half.connection)

    def _finish(self, connection: Connection, frame: int, time: float, reason: str,
                events: list[TcpEvent]) -> None:
        """Close both directions now, declaring any hole still open."""
        for half in connection.halves:
            while half.held and not half.closed:
                self._skip_hole(half, frame, time, reason, events)
            if not half.closed:
                self._close(half, frame, time, reason, events)

    def _retire(self, connection: Connection) -> None:
        """Move a closed connection to the bounded memory of closed ones."""
        for half in connection.halves:
            key = (half.src, half.sport, half.dst, half.dport)
            if self._halves.get(key) is half:
                del self._halves[key]
            half.closed = True
            self._closed[key] = half
        while len(self._closed) > MAX_CLOSED_REMEMBERED:
            self._closed.popitem(last=False)

    def _forget(self, connection: Connection) -> None:
        for half in connection.halves:
            key = (half.src, half.sport, half.dst, half.dport)
            self._closed.pop(key, None)
            if self._halves.get(key) is half:
                del self._halves[key]


def _signed(difference: int) -> int:
    """A 32-bit sequence number difference as a signed number."""
    return ((difference + _HALF_RANGE) & _MASK) - _HALF_RANGE


def _is_repeat_syn(half: Half, seq: int) -> bool:
    """True for a retransmitted SYN of the connection ``half`` belongs to."""
    return half.isn == seq
