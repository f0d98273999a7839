"""TCP reassembly: the bytes each side of a connection sent, in order, once each.

:class:`TcpReassembler` takes TCP segments (:class:`shark.network.packets.Packet`) in capture
order and returns :class:`TcpEvent` records per :class:`Direction` of a connection,
of the kinds of :class:`TcpEventKind`:

* ``OPEN``: a connection was seen for the first time (with its SYN or mid-stream);
* ``DATA``: the next bytes of a direction, in sequence order, each byte once;
* ``GAP``: bytes of a direction that will never be seen (``size`` of them), after which
  ``DATA`` continues with the bytes that follow the hole;
* ``DROPPED``: bytes a segment brought that no ``DATA`` will deliver (``size`` of them),
  and why: a segment far outside the window (starting more than :data:`MAX_WINDOW`
  bytes ahead of the next expected byte, or wholly before it yet not a retransmission
  of bytes delivered since the stream's start or its latest gap), or bytes after the
  end of the direction (past its FIN, or after it closed);
* ``CLOSE``: a direction ended (FIN once every byte before it was delivered, RST, a new
  connection on the same addresses and ports, the end of the capture, or idleness).

Every payload byte fed is thus delivered once (retransmissions of delivered bytes are
not delivered again), or reported ``DROPPED``; ``GAP`` reports the bytes never fed.

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

Bounded state: a connection is forgotten once both directions closed (a bounded number
of closed ones is remembered, :data:`MAX_CLOSED_REMEMBERED`, to recognise their late
retransmissions). One whose end was not captured is closed (reason ``"idle"``) after
:data:`IDLE_TIMEOUT` seconds of capture time without a segment, and when more than
:data:`MAX_OPEN_CONNECTIONS` are open, the longest idle are closed (reason ``"state
limit"``); either is forgotten at once, so that a later segment opens it again as if
seen mid-stream. These checks run as a connection is opened, never per segment.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from enum import Enum
from typing import NamedTuple

from shark.network.packets import Packet, TcpFlags, format_address

__all__ = [
    "CLOSE",
    "DATA",
    "DROPPED",
    "GAP",
    "IDLE_TIMEOUT",
    "MAX_HELD_PER_DIRECTION",
    "MAX_HELD_TOTAL",
    "MAX_OPEN_CONNECTIONS",
    "MAX_WINDOW",
    "OPEN",
    "Connection",
    "Direction",
    "Half",
    "TcpEvent",
    "TcpEventKind",
    "TcpReassembler",
]



class TcpEventKind(Enum):
    """What a :class:`TcpEvent` tells (see the module documentation). Not strings, and
    not CA record kinds (:class:`shark.extract.record.RecordKind`): a TCP ``GAP`` is
    missing bytes, which the reader may report as a record ``GAP``, never the same thing.
    """

    OPEN = "open"
    DATA = "data"
    GAP = "gap"
    DROPPED = "dropped"
    CLOSE = "close"


OPEN, DATA, GAP, DROPPED, CLOSE = (TcpEventKind.OPEN, TcpEventKind.DATA, TcpEventKind.GAP,
                                   TcpEventKind.DROPPED, TcpEventKind.CLOSE)

#: Out-of-order bytes held for one direction before the hole before them is given up.
MAX_HELD_PER_DIRECTION = 4 * 1024 * 1024
#: Out-of-order bytes held for all connections together.
MAX_HELD_TOTAL = 64 * 1024 * 1024
#: Closed connections remembered, so that their late retransmissions are recognised as
#: such instead of looking like a new connection seen mid-stream.
MAX_CLOSED_REMEMBERED = 4096
#: The largest window TCP can announce (65535 scaled by 2**14): a segment that starts
#: further ahead of the next expected byte cannot be in any window, and is dropped
#: rather than held (holding it would make the stream jump over a gigabyte).
MAX_WINDOW = 65535 << 14
#: Seconds of capture time without a segment after which a connection is closed. A CA
#: circuit is never that quiet: a client sends an ECHO after 30 s of silence
#: (EPICS_CA_CONN_TMO), and the server answers.
IDLE_TIMEOUT = 300.0
#: Connections open at once; past this many, the longest idle are closed.
MAX_OPEN_CONNECTIONS = 16384

_MASK = 0xFFFFFFFF
_HALF_RANGE = 0x80000000
_SYN, _FIN, _RST, _ACK = TcpFlags.SYN, TcpFlags.FIN, TcpFlags.RST, TcpFlags.ACK
_SYN_FIN_RST = _SYN | _FIN | _RST
#: Named tuples built with ``tuple.__new__`` directly: half the cost of the class call.
_new = tuple.__new__


class TcpEvent(NamedTuple):
    kind: TcpEventKind
    direction: Direction
    #: Frame number and time of the segment that caused the event.
    frame: int
    time: float
    #: DATA: the bytes. Empty otherwise.
    data: bytes | memoryview
    #: DATA: len(data); GAP: the number of bytes missing; DROPPED: of bytes dropped; 0
    #: otherwise.
    size: int
    #: GAP, DROPPED and CLOSE: why ("hold limit", "fin", "rst", "reused", "end of
    #: capture", "idle", "state limit", "segment far outside the window", ...).
    reason: str = ""

    @property
    def half(self) -> Direction:
        """The old name of ``direction``."""
        return self.direction


class Direction:
    """One direction of a connection: the bytes one side sends, from (src, sport) to
    (dst, dport)."""

    __slots__ = (
        "connection", "peer", "src", "sport", "dst", "dport", "isn", "next_seq", "offset",
        "held", "held_bytes", "fin_offset", "closed", "last", "resumed",
    )

    def __init__(self, connection: Connection, src: bytes, sport: int, dst: bytes,
                 dport: int) -> None:
        self.connection = connection
        #: The other direction (set by the connection).
        self.peer: Direction = self
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
        #: Capture time of the latest segment sent this way (-inf: none yet).
        self.last = -float("inf")
        #: Stream offset from which every byte up to ``offset`` was delivered: the
        #: start, or the end of the latest gap. A segment wholly before ``offset`` is a
        #: retransmission if it starts there or later, dropped otherwise.
        self.resumed = 0

    @property
    def from_client(self) -> bool | None:
        """True if the client (the side that sent the SYN) sends this direction; None
        when the connection was seen without its handshake."""
        client = self.connection.client
        return None if client is None else client is self

    def __repr__(self) -> str:
        return (f"Direction({format_address(self.src)}:{self.sport} -> "
                f"{format_address(self.dst)}:{self.dport})")


class Connection:
    """A TCP connection: its two directions, and which one is the client's once known."""

    __slots__ = ("number", "directions", "client")

    def __init__(self, number: int, packet: Packet) -> None:
        #: 1-based, in order of first appearance.
        self.number = number
        self.directions = (
            Direction(self, packet.src, packet.sport, packet.dst, packet.dport),
            Direction(self, packet.dst, packet.dport, packet.src, packet.sport),
        )
        self.directions[0].peer, self.directions[1].peer = self.directions[1], self.directions[0]
        #: The direction the SYN came on (client to server), None until known.
        self.client: Direction | None = None

    @property
    def closed(self) -> bool:
        return self.directions[0].closed and self.directions[1].closed


#: The old name of :class:`Direction`.
Half = Direction


class TcpReassembler:
    """Reassembles every TCP connection it is fed. See the module documentation."""

    def __init__(self, max_held: int = MAX_HELD_PER_DIRECTION,
                 max_held_total: int = MAX_HELD_TOTAL, idle_timeout: float = IDLE_TIMEOUT,
                 max_open: int = MAX_OPEN_CONNECTIONS) -> None:
        self.max_held = max_held
        self.max_held_total = max_held_total
        self.idle_timeout = idle_timeout
        self.max_open = max_open
        #: Capture time from which the next connection opened first closes idle ones.
        self._sweep_at = -float("inf")
        self._directions: dict[tuple[bytes, int, bytes, int], Direction] = {}
        self._closed: OrderedDict[tuple[bytes, int, bytes, int], Direction] = OrderedDict()
        self._held_total = 0
        self._connections = 0
        #: The frame and time of the latest segment, which end-of-capture events carry.
        self._last = (0, 0.0)

    def direction(self, key: tuple[bytes, int, bytes, int]) -> Direction | None:
        """The open direction from (src, sport) to (dst, dport), if there is one."""
        return self._directions.get(key)

    @property
    def open_connections(self) -> int:
        """Connections not yet forgotten (not both directions closed)."""
        return len({d.connection for d in self._directions.values()})

    @property
    def remembered_closed(self) -> int:
        """Directions of closed connections remembered (:data:`MAX_CLOSED_REMEMBERED`)."""
        return len(self._closed)

    def advance(self, direction: Direction, seq: int, ack: int, flags: int, size: int, frame: int,
                time: float) -> bool:
        """The common case of :meth:`feed`, for a reader that has a segment's fields
        but no :class:`Packet`: if the segment is the next of an established direction,
        in order, from a side that has seen all the other sent, take it and return True
        (its ``size`` payload bytes, if any, are the direction's next DATA). False: the
        segment is to be fed."""
        if (direction.next_seq == seq and not direction.held and not flags & _SYN_FIN_RST
                and not direction.closed and direction.peer.next_seq == ack):
            self._last = (frame, time)
            direction.last = time
            if size:
                direction.offset += size
                direction.next_seq = (seq + size) & _MASK
            return True
        return False

    def feed(self, packet: Packet) -> list[TcpEvent]:
        """Process one segment; return the events it caused, in order."""
        frame, time, src, sport, dst, dport, _transport, seq, ack, flags, payload = packet
        key = (src, sport, dst, dport)
        direction = self._directions.get(key)
        if direction is not None and self.advance(direction, seq, ack, flags, len(payload), frame,
                                                  time):
            # (a bare ACK: nothing at all)
            return [_new(TcpEvent, (DATA, direction, frame, time, payload, len(payload), ""))
                    ] if payload else []
        self._last = (frame, time)
        events: list[TcpEvent] = []
        if direction is None:
            direction = self._closed.get(key)
            if direction is not None and flags & _SYN and not _is_repeat_syn(direction, packet.seq):
                self._forget(direction.connection)
                direction = None
            if direction is None:
                if not (flags & _SYN or packet.payload):
                    return events  # a lone ACK/FIN/RST of a connection we never saw
                direction = self._open(packet, events)
        elif (flags & _SYN and direction.next_seq is not None
              and not _is_repeat_syn(direction, packet.seq)):
            # The addresses and ports are reused by a new connection.
            self._finish(direction.connection, packet.frame, packet.time, "reused", events)
            self._forget(direction.connection)
            direction = self._open(packet, events)
        direction.last = time
        if flags & _RST:
            if not direction.connection.closed:
                self._finish(direction.connection, packet.frame, packet.time, "rst", events)
            return events
        peer = direction.peer
        if flags & _ACK and peer.next_seq is not None and not peer.closed:
            self._acknowledged(peer, packet, events)
        if direction.closed:
            if payload:  # a retransmission after the FIN, or bytes past it
                self._after_end(direction, seq, payload, frame, time, events)
            return events
        seq = packet.seq
        if flags & _SYN:
            if direction.next_seq is None:
                direction.isn = seq
                direction.next_seq = (seq + 1) & _MASK
                connection = direction.connection
                if connection.client is None:
                    connection.client = direction.peer if flags & _ACK else direction
            seq = (seq + 1) & _MASK
        elif direction.next_seq is None:
            direction.next_seq = seq  # seen mid-stream: start at the first byte seen
        payload = packet.payload
        if payload:
            self._segment(direction, seq, payload, packet, events)
        if flags & _FIN and direction.fin_offset is None:
            direction.fin_offset = (direction.offset + _signed(seq - direction.next_seq)
                                    + len(payload))
            self._close_if_done(direction, packet.frame, packet.time, events)
        return events

    def flush(self) -> list[TcpEvent]:
        """End of capture: declare every remaining hole and close every direction."""
        events: list[TcpEvent] = []
        frame, time = self._last
        for direction in list(self._directions.values()):
            if not direction.connection.closed:
                self._finish(direction.connection, frame, time, "end of capture", events)
        self._directions.clear()
        self._closed.clear()
        return events

    # -- internals ---------------------------------------------------------------------

    def _open(self, packet: Packet, events: list[TcpEvent]) -> Direction:
        if packet.time >= self._sweep_at or len(self._directions) >= 2 * self.max_open:
            self._expire(packet.frame, packet.time, events)
        self._connections += 1
        connection = Connection(self._connections, packet)
        for direction in connection.directions:
            key = (direction.src, direction.sport, direction.dst, direction.dport)
            self._directions[key] = direction
        direction = connection.directions[0]
        events.append(TcpEvent(OPEN, direction, packet.frame, packet.time, b"", 0))
        return direction

    def _expire(self, frame: int, time: float, events: list[TcpEvent]) -> None:
        """Close and forget the connections idle for :attr:`idle_timeout`, then, past
        :attr:`max_open`, the longest idle down to three quarters of it."""
        self._sweep_at = time + self.idle_timeout / 4
        connections = {d.connection: max(d.last, d.peer.last)
                       for d in self._directions.values()}
        expired = [c for c, last in connections.items() if last < time - self.idle_timeout]
        reasons = dict.fromkeys(expired, "idle")
        if len(connections) - len(expired) >= self.max_open:
            rest = sorted((c for c in connections if c not in reasons), key=connections.get)
            reasons.update(dict.fromkeys(
                rest[: len(connections) - len(expired) - self.max_open * 3 // 4],
                "state limit"))
        for connection, reason in reasons.items():
            self._finish(connection, frame, time, reason, events)
            self._forget(connection)

    def _segment(self, direction: Direction, seq: int, payload: memoryview, packet: Packet,
                 events: list[TcpEvent]) -> None:
        ahead = _signed(seq - direction.next_seq)
        if ahead > 0:
            if ahead > MAX_WINDOW:
                events.append(TcpEvent(
                    DROPPED, direction, packet.frame, packet.time, b"", len(payload),
                    f"segment far outside the window ({ahead} bytes after the next "
                    "expected byte)"))
                return
            self._hold(direction, direction.offset + ahead, payload, packet, events)
            return
        if ahead < 0:
            if len(payload) <= -ahead:
                if direction.offset + ahead < direction.resumed:
                    events.append(TcpEvent(
                        DROPPED, direction, packet.frame, packet.time, b"", len(payload),
                        f"segment far outside the window ({-ahead} bytes before the next "
                        "expected byte, not a retransmission of bytes delivered)"))
                return  # else a retransmission of bytes already delivered
            payload = payload[-ahead:]
        self._deliver(direction, payload, packet.frame, packet.time, events)
        if direction.held:
            self._drain(direction, events)
        if direction.fin_offset is not None:
            self._close_if_done(direction, packet.frame, packet.time, events)

    def _after_end(self, direction: Direction, seq: int, payload: memoryview, frame: int,
                   time: float, events: list[TcpEvent]) -> None:
        """A segment of a closed direction: silent if it only repeats bytes delivered."""
        if direction.next_seq is not None:
            ahead = _signed(seq - direction.next_seq)
            if ahead + len(payload) <= 0 and direction.offset + ahead >= direction.resumed:
                return
        events.append(TcpEvent(DROPPED, direction, frame, time, b"", len(payload),
                               "segment after the end of the stream"))

    def _deliver(self, direction: Direction, data: bytes | memoryview, frame: int, time: float,
                 events: list[TcpEvent]) -> None:
        size = len(data)
        direction.offset += size
        direction.next_seq = (direction.next_seq + size) & _MASK
        events.append(_new(TcpEvent, (DATA, direction, frame, time, data, size, "")))

    def _drain(self, direction: Direction, events: list[TcpEvent]) -> None:
        """Deliver held segments that the stream has reached."""
        held = direction.held
        while held and held[0][0] <= direction.offset:
            offset, frame, data, time = heapq.heappop(held)
            direction.held_bytes -= len(data)
            self._held_total -= len(data)
            skip = direction.offset - offset
            if skip < len(data):
                self._deliver(direction, memoryview(data)[skip:], frame, time, events)

    def _hold(self, direction: Direction, offset: int, payload: memoryview, packet: Packet,
              events: list[TcpEvent]) -> None:
        data = bytes(payload)  # a copy: the frame's buffer is not ours to keep
        heapq.heappush(direction.held, (offset, packet.frame, data, packet.time))
        direction.held_bytes += len(data)
        self._held_total += len(data)
        if direction.held_bytes > self.max_held:
            self._skip_hole(direction, packet.frame, packet.time, "hold limit", events)
        while self._held_total > self.max_held_total:
            fullest = max(self._directions.values(), key=lambda h: h.held_bytes)
            self._skip_hole(fullest, packet.frame, packet.time, "hold limit", events)

    def _acknowledged(self, direction: Direction, packet: Packet, events: list[TcpEvent]) -> None:
        """The peer of ``direction`` acknowledges ``packet.ack``: bytes of ``direction`` up to there
        that were not captured never will be."""
        ahead = _signed(packet.ack - direction.next_seq)
        if ahead <= 0:
            return
        end = direction.offset + ahead
        if direction.fin_offset is not None:
            end = min(end, direction.fin_offset)  # the FIN takes a sequence number too
        if direction.held:
            end = min(end, direction.held[0][0])
        self._skip(direction, end - direction.offset, packet.frame, packet.time,
                   "acknowledged by the receiver", events)

    def _skip_hole(self, direction: Direction, frame: int, time: float, reason: str,
                   events: list[TcpEvent]) -> None:
        """Give up the bytes missing before the first held segment, then deliver on."""
        self._skip(direction, direction.held[0][0] - direction.offset, frame, time, reason, events)

    def _skip(self, direction: Direction, missing: int, frame: int, time: float, reason: str,
              events: list[TcpEvent]) -> None:
        """Declare the next ``missing`` bytes of ``direction`` lost and deliver what follows."""
        if missing > 0:
            direction.offset += missing
            direction.resumed = direction.offset
            direction.next_seq = (direction.next_seq + missing) & _MASK
            events.append(TcpEvent(GAP, direction, frame, time, b"", missing, reason))
            self._drain(direction, events)
        if direction.fin_offset is not None:
            self._close_if_done(direction, frame, time, events)

    def _close_if_done(self, direction: Direction, frame: int, time: float,
                       events: list[TcpEvent]) -> None:
        """Close a direction whose FIN was seen once every byte before it is in."""
        if not direction.closed and direction.offset >= direction.fin_offset:
            self._close(direction, frame, time, "fin", events)

    def _close(self, direction: Direction, frame: int, time: float, reason: str,
               events: list[TcpEvent]) -> None:
        direction.closed = True
        if direction.held:  # bytes claimed to follow the FIN: nothing will deliver them
            events.append(TcpEvent(DROPPED, direction, frame, time, b"",
                                   direction.held_bytes, "segment after the end of the stream"))
            self._held_total -= direction.held_bytes
            direction.held, direction.held_bytes = [], 0
        events.append(TcpEvent(CLOSE, direction, frame, time, b"", 0, reason))
        if direction.connection.closed:
            self._retire(direction.connection)

    def _finish(self, connection: Connection, frame: int, time: float, reason: str,
                events: list[TcpEvent]) -> None:
        """Close both directions now, declaring any hole still open."""
        for direction in connection.directions:
            while direction.held and not direction.closed:
                self._skip_hole(direction, frame, time, reason, events)
            if not direction.closed:
                self._close(direction, frame, time, reason, events)

    def _retire(self, connection: Connection) -> None:
        """Move a closed connection to the bounded memory of closed ones."""
        for direction in connection.directions:
            key = (direction.src, direction.sport, direction.dst, direction.dport)
            if self._directions.get(key) is direction:
                del self._directions[key]
            direction.closed = True
            self._closed[key] = direction
        while len(self._closed) > MAX_CLOSED_REMEMBERED:
            self._closed.popitem(last=False)

    def _forget(self, connection: Connection) -> None:
        for direction in connection.directions:
            key = (direction.src, direction.sport, direction.dst, direction.dport)
            self._closed.pop(key, None)
            if self._directions.get(key) is direction:
                del self._directions[key]


def _signed(difference: int) -> int:
    """A 32-bit sequence number difference as a signed number."""
    return ((difference + _HALF_RANGE) & _MASK) - _HALF_RANGE


def _is_repeat_syn(direction: Direction, seq: int) -> bool:
    """True for a retransmitted SYN of the connection ``direction`` belongs to."""
    return direction.isn == seq
