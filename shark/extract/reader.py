"""From a capture to CA messages: which traffic is CA, who sent it, and framing.

:class:`CaReader` turns frames into :class:`shark.extract.record.Record` objects: UDP datagrams
are split with :func:`decoder.split_datagram`, each direction of a TCP circuit is
reassembled (:mod:`shark.network.reassembly`) and framed by its own :class:`decoder.StreamFramer`.

Which traffic is CA
-------------------
*CA ports* are 5064 (server), 5065 (repeater), the ports given by the user, and every
server port learned from the capture: the TCP port in a UDP search reply
(``SearchResponse.port``) and a beacon's ``server_port``.

* TCP: a connection with a CA port other than 5065 at either end.
* UDP, in this order:

  1. a datagram with a CA port at either end, or to or from a *CA client socket*
     (an address and port that sent a datagram to a server port or to the repeater
     port): decoded; bytes that do not decode give an ERROR record;
  2. any other datagram, from or to a host that appeared in rule 1, that splits
     exactly into messages with known command ids: decoded, silently ignored
     otherwise. This catches what the CA repeater forwards from its ephemeral
     per-client sockets, and the VERSION a libca client sends itself on shutdown.

  A zero-length datagram (libca's registration with the repeater) carries no message.
  A datagram shaped exactly like a client's search (:func:`is_search_datagram`) to a
  port not yet known makes that port a server port: sites run IOCs on other ports,
  and their captures need not hold a beacon or reply that announces them.

Who sent it
-----------
TCP: the side that sent the SYN is the client; without the handshake, the side whose
port is a CA port is the server; otherwise the decoder guesses per message (the
record's ``sender`` is then the role of the decoded form). UDP: from a server port,
SERVER; to a server port, CLIENT; from the repeater port, REPEATER; to the repeater
port, per message (beacons are the server's, registrations the client's); to a client
socket registered with the repeater from elsewhere, REPEATER (forwarded beacons,
confirmations); from a CA client socket, CLIENT; otherwise guessed per message.

Framing errors
--------------
A TCP direction that starts mid-connection, follows a gap, or hits bytes that do not
frame as CA (a header claiming more than ``max_payload``, a payload size its other
fields do not allow (:mod:`decoder.sizes`), or a command id the protocol does not
define, checked as soon as a header is complete so that a garbage header cannot swallow
what follows as its payload) is resynchronised by
:func:`shark.extract.resync.find_message_start`; the bytes skipped to get there are reported as
one ERROR record, missing bytes as a GAP record. A bad header followed by plausible
messages where its fields (or its size) end it costs just that message
(:func:`shark.extract.resync.misfit_length`). A direction that ends inside a message
gives an ERROR record for the bytes left.

Bytes the reassembler will not deliver (:data:`shark.network.reassembly.DROPPED`: a
segment far outside the window, bytes after a direction's end) give an ERROR record
each, as does a fragmented UDP datagram of CA traffic given up before its fragments
all came (:class:`shark.network.packets.LostDatagram`; the record carries the frame and
time of its latest fragment, so it can come after records of later frames).

Memory: per TCP direction, a framer holding at most one incomplete message (or the
resynchronisation window), plus the reassembler's bounded out-of-order buffers. A
direction's state goes with its CLOSE, which the reassembler also gives connections
idle too long or in excess (:data:`shark.network.reassembly.IDLE_TIMEOUT`,
:data:`shark.network.reassembly.MAX_OPEN_CONNECTIONS`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from decoder import (
    Beacon,
    Command,
    DecodeError,
    Message,
    Role,
    SearchResponse,
    StreamFramer,
    UnknownCommand,
    split_datagram,
)
from decoder.framing import DEFAULT_MAX_PAYLOAD
from decoder.protocol import HEADER_LAYOUT, HEADER_SIZE, REPEATER_PORT, SERVER_PORT
from shark.capture.files import CaptureError, Frame, FrameBlock, read_frames
from shark.extract.bulk import HeaderRoom, Run, UpdateBatch, frame_headers, place, placed
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record
from shark.extract.resync import find_message_start, misfit_length, whole_messages
from shark.network.packets import TCP, UDP, LostDatagram, Packet, PacketDecoder, format_address
from shark.network.reassembly import Direction, TcpEvent, TcpEventKind, TcpReassembler
from shark.network.segments import tcp_segments

__all__ = ["CaReader", "read_records"]

_MAX_COMMAND = max(Command)
#: The kinds of TCP events, named apart from the record kinds they become.
_TCP_OPEN, _TCP_DATA, _TCP_GAP, _TCP_DROPPED, _TCP_CLOSE = (
    TcpEventKind.OPEN, TcpEventKind.DATA, TcpEventKind.GAP, TcpEventKind.DROPPED,
    TcpEventKind.CLOSE)
_NS_PER_S = 1_000_000_000
#: The messages that announce a server port (:meth:`CaReader._learn`).
_ANNOUNCING = frozenset((SearchResponse, Beacon))
#: With ``bulk``: packets per list of records, and bytes held back per direction at most.
BLOCK_PACKETS = 16384
HOLD_BYTES = 8 << 20
#: With ``bulk``: bytes of capture per block of frames read at a time
#: (:func:`shark.capture.files.read_blocks`), so per list of records at most. What a
#: list holds is alive at once (its updates' bytes and header fields, the records of
#: the rest): 8 MB of monitor updates are some 150 thousand, plenty to go fast with.
BLOCK_BYTES = 8 << 20
#: Records (or batches of updates) a list of a block holds at most: a block of small
#: messages (a client cancelling thousands of subscriptions and clearing their channels
#: at once, 16 bytes each) gives a record each, an object or three apiece, and these
#: are handed on before the rest of the block is read, not all alive at once.
BLOCK_RECORDS = 4096
#: Endpoints and hosts remembered (UDP rules, address strings): past this many, a
#: collection is emptied and learnt again, so that memory stays bounded.
_MAX_REMEMBERED = 65536


def read_records(
    source: str | Path | BinaryIO, ports: Iterable[int] = (),
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> Iterator[Record]:
    """The CA records of a capture file (path, ``"-"`` for stdin, or binary stream).

    Raises :class:`shark.capture.files.CaptureError` after the records that could be read
    when the capture is damaged or truncated.
    """
    return CaReader(ports, max_payload).records(read_frames(source))


class _DirectionState:
    """The CA side of one TCP direction: framer, identity, resynchronisation state."""

    __slots__ = (
        "framer", "src", "dst", "circuit", "sender", "resync", "skipped", "cause", "head",
        "batches", "batch", "frames", "times", "datas", "held_bytes",
    )

    def __init__(self, src: str, dst: str, circuit: int, sender: Role | None,
                 max_payload: int) -> None:
        self.framer = StreamFramer(sender, max_payload, check_sizes=True)
        self.src = src
        self.dst = dst
        self.circuit = circuit
        self.sender = sender
        #: Bytes buffered while looking for a message boundary; None when in sync.
        self.resync: bytearray | None = None
        #: Bytes given up since the loss of sync, and why sync was lost.
        self.skipped = 0
        self.cause = ""
        #: The first two bytes (the command) of the message the framer is completing.
        self.head = b""
        #: Packets held back to be framed in bulk (:mod:`shark.extract.bulk`): their frames,
        #: times and bytes, the batches that stand for them where they were captured
        #: (the latest, that may take more, apart), and how many bytes they hold.
        self.frames: list[int] = []
        self.times: list[float] = []
        self.datas: list[memoryview | bytes] = []
        self.batches: list[UpdateBatch] = []
        self.batch: UpdateBatch | None = None
        self.held_bytes = 0

    def lose_sync(self, cause: str, skipped: int = 0) -> None:
        """Start looking for a message boundary, giving up ``skipped`` bytes and those
        buffered: a partial message, or bytes that cannot be chained over a gap."""
        if self.resync is None:
            self.skipped += self.framer.pending
            self.framer.clear()
            self.cause = cause
        else:
            self.skipped += len(self.resync)
        self.skipped += skipped
        self.resync = bytearray()


class CaReader:
    """Turns frames into CA records. One instance reads one capture.

    ``ports`` are extra CA server ports; ``max_payload`` bounds the payload a TCP
    message may claim (larger claims are framing errors). With ``lifecycle``, OPEN and
    CLOSE records mark where each TCP circuit starts and each direction ends. With
    ``bulk``, what servers send comes as :class:`shark.extract.bulk.UpdateBatch` items, framed
    a few thousand packets at a time, for a :class:`shark.analysis.attribution.Session` to resolve.
    """

    def __init__(self, ports: Iterable[int] = (), max_payload: int = DEFAULT_MAX_PAYLOAD,
                 lifecycle: bool = False, bulk: bool = False) -> None:
        self.max_payload = max_payload
        self.lifecycle = lifecycle
        self.bulk = bulk
        #: Circuit number -> its server direction while that holds packets back.
        self._holding: dict[int, _DirectionState] = {}
        #: Where the headers of what is held go while it is framed (:func:`frame_headers`).
        self._header_room = HeaderRoom()
        #: Where the batches of held packets are in the list of records being filled
        #: (ascending): :meth:`_released` looks at those alone for what stands in
        #: their place, not at every record.
        self._batches_at: list[int] = []
        #: Ports CA servers listen on (TCP and UDP): 5064, the user's, learned ones.
        self.server_ports: set[int] = {SERVER_PORT, *ports}
        self._packets = PacketDecoder()
        self._tcp = TcpReassembler()
        self._states: dict[Direction, _DirectionState] = {}
        #: (ip, port) that sent UDP to a server port or the repeater port.
        self._client_sockets: set[tuple[bytes, int]] = set()
        #: Those of them that sent to the repeater port.
        self._registered: set[tuple[bytes, int]] = set()
        #: IP addresses seen on datagrams of UDP rule 1.
        self._hosts: set[bytes] = set()
        self._endpoints: dict[tuple[bytes, int], str] = {}

    def records(self, frames: Iterable[Frame]) -> Iterator[Record]:
        """Yield the records of ``frames``; at the end (or on a :class:`CaptureError`,
        re-raised afterwards) every open TCP direction is flushed."""
        for batch in self.batches(frames):
            yield from batch

    def batches(self, frames: Iterable[Frame | FrameBlock]) -> Iterator[list[Record]]:
        """The records of :meth:`records`, in lists: those each packet gave (if any),
        which are cheaper to hand over a list at a time than one by one; those of a
        whole block for a :class:`shark.capture.files.FrameBlock`. With ``bulk``, a list
        holds those of up to :data:`BLOCK_PACKETS` packets (or of a block), update
        batches too."""
        decode = self._packets.decode
        packet_records = self._packet
        bulk = self.bulk
        due = BLOCK_PACKETS
        out: list[Record] = []
        try:
            for frame in frames:
                if type(frame) is FrameBlock:
                    yield from self._block(frame, out)
                    if bulk:
                        out = self._released(out)
                    if out:
                        yield out
                        out = []
                    continue
                packet = decode(frame)
                if packet is None:
                    if self._packets.lost:  # fragments given up: an IP layer matter
                        self._lost_datagrams(self._packets.take_lost(), out)
                    continue
                packet_records(packet, out)
                if out and (not bulk or packet.frame >= due):
                    if bulk:
                        out = self._released(out)
                        due = packet.frame + BLOCK_PACKETS
                    yield out
                    out = []
        except CaptureError:
            out = self._flushed(out)
            if out:
                yield out
            raise
        out = self._flushed(out)
        if out:
            yield out

    def _flushed(self, out: list[Record]) -> list[Record]:
        """``out`` and the records of the end of the capture."""
        self._lost_datagrams(self._packets.flush(), out)
        for event in self._tcp.flush():
            out += self._tcp_event(event)
        return self._released(out)

    def _handed(self, out: list[Record]) -> list[Record]:
        """The records of ``out`` as a list to hand on now (those held released, as at
        the end of a block), ``out`` emptied for the next ones."""
        ready = self._released(out) if self.bulk else out[:]
        out.clear()
        return ready

    def _released(self, out: list[Record]) -> list[Record]:
        """``out`` with every packet held framed, and in the place of each batch what
        stands for it (:func:`shark.extract.bulk.place`)."""
        self._release_all()
        if not self.bulk:
            return out
        at, self._batches_at = self._batches_at, []
        return placed(out, at)

    def _packet(self, packet: Packet, out: list[Record]) -> None:
        """Add the records of a packet to ``out``."""
        if packet.transport != TCP:
            out += self._udp(packet)
            return
        server_ports = self.server_ports
        if packet.sport not in server_ports and packet.dport not in server_ports:
            return
        states = self._states
        for event in self._tcp.feed(packet):  # (most bare ACKs: no event)
            if event.kind is _TCP_DATA:  # most events
                state = states.get(event.direction)
                if state is not None:
                    if self.bulk:
                        if state.sender is Role.SERVER and state.resync is None:
                            self._hold(state, (event.frame,), (event.time,),
                                       (event.data,), out)
                            continue
                        if state.circuit in self._holding:
                            self._release(self._holding[state.circuit])
                    self._feed(state, event.data, event.frame, event.time, out)
                    continue
            out += self._tcp_event(event)

    def _block(self, block: FrameBlock, out: list[Record]) -> Iterator[list[Record]]:
        """Add the records of a block of frames to ``out``, yielding them as a list of
        their own (``out`` emptied) whenever it holds :data:`BLOCK_RECORDS`. With
        ``bulk``, a server's next segments in order (most frames of a capture of monitor
        updates) are held from the fields :func:`shark.network.segments.tcp_segments`
        read, with no packet object, a stretch of them at once; every other frame goes
        the general way."""
        decode = self._packets.decode
        segments = tcp_segments(block) if self.bulk else None
        if segments is None:
            for frame in block.frames():
                if len(out) >= BLOCK_RECORDS:
                    yield self._handed(out)
                packet = decode(frame)
                if packet is not None:
                    self._packet(packet, out)
                elif self._packets.lost:
                    self._lost_datagrams(self._packets.take_lost(), out)
            return
        tcp = self._tcp
        advance = tcp.advance
        addresses = segments.addresses
        directions = [tcp.direction(key) for key in addresses]
        index = {key: i for i, key in enumerate(addresses)}
        states = self._states
        view, first, stamps = block.view, block.first, block.time_ns
        connections, seqs, acks, flags = (segments.connection, segments.seq, segments.ack,
                                          segments.flags)
        starts, ends = segments.start, segments.end
        server = Role.SERVER
        stretches = segments.stretches
        for begin, stop in zip(stretches, stretches[1:], strict=False):
            if len(out) >= BLOCK_RECORDS:
                yield self._handed(out)
            connection = connections[begin]
            direction = directions[connection] if connection >= 0 else None
            if direction is not None:  # the next bytes of one direction, frame after frame?
                last = stop - 1
                size = sum(ends[begin:stop]) - sum(starts[begin:stop])
                time = stamps[last] / _NS_PER_S
                if not size:  # a bare ACK (a stretch of its own)
                    if advance(direction, seqs[begin], acks[begin], flags[begin], 0, first + begin,
                               time):
                        continue
                else:
                    state = states.get(direction)
                    if (state is not None and state.sender is server
                            and state.resync is None
                            and advance(direction, seqs[begin], acks[begin], flags[begin], size,
                                        first + last, time)):
                        self._hold(state, range(first + begin, first + stop),
                                   [ns / _NS_PER_S for ns in stamps[begin:stop]],
                                   [view[a:b] for a, b in zip(starts[begin:stop],
                                                              ends[begin:stop], strict=True)],
                                   out)
                        continue
            for i in range(begin, stop):  # the general way
                connection = connections[i]
                packet = decode(block.frame(i))
                if packet is None:
                    if self._packets.lost:
                        self._lost_datagrams(self._packets.take_lost(), out)
                    continue
                self._packet(packet, out)
                if packet.transport == TCP:  # it may have opened, closed or replaced one
                    if connection >= 0:
                        src, sport, dst, dport = addresses[connection]
                        for key in (addresses[connection], (dst, dport, src, sport)):
                            if key in index:
                                directions[index[key]] = tcp.direction(key)
                    else:
                        directions = [tcp.direction(key) for key in addresses]

    # -- bulk ------------------------------------------------------------------------

    def _hold(self, state: _DirectionState, frames: Sequence[int], times: Sequence[float],
              datas: Sequence[bytes | memoryview], out: list) -> None:
        """Hold a server's packets back, to be framed with the next ones: in the batch
        that ends ``out`` if it is this direction's, else in a new one."""
        batch = state.batch
        if batch is None or not out or out[-1] is not batch:
            if not state.frames:
                self._holding[state.circuit] = state
            batch = state.batch = UpdateBatch(frames[0], times[0], state.src, state.dst,
                                              state.circuit, len(state.frames))
            state.batches.append(batch)
            self._batches_at.append(len(out))
            out.append(batch)
        size = sum(map(len, datas))
        batch.stop_packet += len(frames)
        batch.size += size
        state.frames += frames
        state.times += times
        state.datas += datas
        state.held_bytes += size
        if state.held_bytes >= HOLD_BYTES:
            self._release(state)

    def _release_all(self) -> None:
        for state in list(self._holding.values()):
            self._release(state)

    def _release(self, state: _DirectionState) -> None:
        """Frame the packets held back, all at once (:mod:`shark.extract.bulk`)."""
        batches, frames, times, datas = (state.batches, state.frames, state.times,
                                         state.datas)
        state.batches, state.frames, state.times, state.datas = [], [], [], []
        state.batch = None
        state.held_bytes = 0
        del self._holding[state.circuit]
        framer = state.framer
        prefix = framer.detach()
        buffer = b"".join([prefix, *datas])
        framed = frame_headers(buffer, self.max_payload, self._header_room)
        run = None
        if framed is not None:
            starts, end, headers = framed
            packet_ends = np.cumsum([len(prefix), *map(len, datas)])[1:]
            message_ends = np.append(starts[1:], end) if len(starts) else starts
            bounds = np.concatenate(([0], np.searchsorted(message_ends, packet_ends, "right")))
            run = Run(buffer, starts, bounds, frames, times, headers)
            if not run.sizes_fit():
                run = None
        if run is None:  # not all CA: the ordinary way, which reports and resyncs
            framer.resume(0, prefix)
            for batch in batches:
                records: list[Record] = []
                for k in range(batch.first_packet, batch.stop_packet):
                    self._feed(state, datas[k], frames[k], times[k], records)
                batch.expanded = records
            return
        framer.resume(end, buffer[end:])
        state.head = buffer[end : end + 2]
        place(batches, run, state.circuit)

    # -- UDP ---------------------------------------------------------------------------

    def _udp(self, packet: Packet) -> list[Record]:
        sport, dport = packet.sport, packet.dport
        source, destination = (packet.src, sport), (packet.dst, dport)
        server_ports = self.server_ports
        clients = self._client_sockets
        to_server = dport in server_ports
        if to_server or dport == REPEATER_PORT:
            _remember(clients, source)
            if dport == REPEATER_PORT:
                _remember(self._registered, source)
        strict = (
            to_server or sport in server_ports or sport == REPEATER_PORT
            or dport == REPEATER_PORT or source in clients or destination in clients
        )
        if not strict and is_search_datagram(packet.payload):
            # A client searching a server on a port nobody announced: learn the port.
            server_ports.add(dport)
            _remember(clients, source)
            strict = True
        if strict:
            _remember(self._hosts, packet.src)
            _remember(self._hosts, packet.dst)
        elif packet.src not in self._hosts and packet.dst not in self._hosts:
            return []
        payload = packet.payload
        if not payload:
            return []
        role = self._udp_role(sport, dport, source, destination)
        error = None
        try:
            messages = split_datagram(payload, role, self.max_payload)
        except DecodeError as exc:
            if not strict:
                return []
            messages, error = exc.messages, exc
        if not strict and any(type(m) is UnknownCommand for m in messages):
            return []
        src, dst = self._endpoint(*source), self._endpoint(*destination)
        frame, time = packet.frame, packet.time
        out = [Record(MESSAGE, frame, time, src, dst, "udp", None,
                      type(message).sender if role is None else role, message)
               for message in messages]
        if not _ANNOUNCING.isdisjoint(map(type, messages)):
            for message in messages:
                self._learn(message)
        if error is not None:
            out.append(Record(ERROR, packet.frame, packet.time, src, dst, "udp", None, role,
                              None, len(payload) - (error.offset or 0), str(error)))
        return out

    def _lost_datagrams(self, lost: list[LostDatagram], out: list[Record]) -> None:
        """An ERROR record for each fragmented UDP datagram given up that UDP rule 1
        would have decoded (by its ports, or by its hosts when the first fragment, which
        holds the ports, did not come). TCP's missing bytes show as the circuit's GAP."""
        for datagram in lost:
            if datagram.protocol != UDP:
                continue
            src, dst, sport, dport = (datagram.src, datagram.dst, datagram.sport or 0,
                                      datagram.dport or 0)
            if datagram.sport is None:
                if src not in self._hosts and dst not in self._hosts:
                    continue
                role = None
            else:
                server_ports, clients = self.server_ports, self._client_sockets
                if not (sport in server_ports or dport in server_ports
                        or REPEATER_PORT in (sport, dport)
                        or (src, sport) in clients or (dst, dport) in clients):
                    continue
                role = self._udp_role(sport, dport, (src, sport), (dst, dport))
            size = "?" if datagram.size is None else datagram.size
            out.append(Record(
                ERROR, datagram.frame, datagram.time, self._endpoint(src, sport),
                self._endpoint(dst, dport), "udp", None, role, None, datagram.seen,
                f"incomplete IP fragments: {datagram.seen} of {size} bytes of the datagram "
                f"seen ({datagram.reason})"))

    def _udp_role(self, sport: int, dport: int, source: tuple[bytes, int],
                  destination: tuple[bytes, int]) -> Role | None:
        if sport in self.server_ports:
            return Role.SERVER
        if dport in self.server_ports:
            return Role.CLIENT
        if sport == REPEATER_PORT:
            return Role.REPEATER
        if dport == REPEATER_PORT:
            return None
        if destination in self._registered and source not in self._client_sockets:
            return Role.REPEATER
        if source in self._client_sockets:
            return Role.CLIENT
        return None

    def _learn(self, message: Message) -> None:
        """Note the server ports that search replies and beacons announce
        (:data:`_ANNOUNCING`)."""
        if type(message) is SearchResponse and message.port:
            self.server_ports.add(message.port)
        elif type(message) is Beacon and message.server_port:
            self.server_ports.add(message.server_port)

    # -- TCP ---------------------------------------------------------------------------

    def _tcp_event(self, event: TcpEvent) -> list[Record]:
        """Records for an event (DATA for an established direction is handled inline)."""
        kind = event.kind
        direction = event.direction
        if self._holding:
            held = self._holding.get(direction.connection.number)
            if held is not None:
                self._release(held)
        state = self._states.get(direction)
        out: list[Record] = []
        if kind is _TCP_OPEN:
            if not self.lifecycle:
                return out
            client = direction.connection.client or direction
            out.append(Record(OPEN, event.frame, event.time,
                              self._endpoint(client.src, client.sport),
                              self._endpoint(client.dst, client.dport), "tcp",
                              direction.connection.number, None, None,
                              reason="syn" if direction.connection.client else "mid-stream"))
            return out
        if kind is _TCP_DROPPED:  # bytes the stream will not have: reported, not framed
            if state is not None:
                src, dst, sender = state.src, state.dst, state.sender
            else:
                src = self._endpoint(direction.src, direction.sport)
                dst = self._endpoint(direction.dst, direction.dport)
                sender = self._sender(direction)
            out.append(Record(ERROR, event.frame, event.time, src, dst, "tcp",
                              direction.connection.number, sender, None, event.size,
                              f"{event.size} bytes dropped: {event.reason}"))
            return out
        if state is None:
            if kind is _TCP_CLOSE:
                if self.lifecycle:
                    out.append(Record(CLOSE, event.frame, event.time,
                                      self._endpoint(direction.src, direction.sport),
                                      self._endpoint(direction.dst, direction.dport), "tcp",
                                      direction.connection.number, None, None,
                                      reason=event.reason))
                return out
            state = self._state(direction)
        if kind is _TCP_DATA:
            self._feed(state, event.data, event.frame, event.time, out)
        elif kind is _TCP_GAP:
            out.append(Record(GAP, event.frame, event.time, state.src, state.dst, "tcp",
                              state.circuit, state.sender, None, event.size,
                              f"{event.size} bytes missing from the capture ({event.reason})"))
            state.lose_sync("after a gap")
        else:  # _TCP_CLOSE
            self._close(state, event, out)
            if self.lifecycle:
                out.append(Record(CLOSE, event.frame, event.time, state.src,
                                  state.dst, "tcp", state.circuit, state.sender,
                                  None, reason=event.reason))
            del self._states[direction]
        return out

    def _sender(self, direction: Direction) -> Role | None:
        """Who sends ``direction``: the SYN's side is the client; without the handshake,
        the side on a server port is the server; else unknown."""
        from_client = direction.from_client
        if from_client is None:  # no handshake seen: go by the ports
            server_ports = self.server_ports
            if direction.dport in server_ports and direction.sport not in server_ports:
                from_client = True
            elif direction.sport in server_ports and direction.dport not in server_ports:
                from_client = False
        return None if from_client is None else Role.CLIENT if from_client else Role.SERVER

    def _state(self, direction: Direction) -> _DirectionState:
        state = _DirectionState(
            self._endpoint(direction.src, direction.sport),
            self._endpoint(direction.dst, direction.dport),
            direction.connection.number, self._sender(direction), self.max_payload,
        )
        if direction.connection.client is None:  # no SYN seen: the first byte may be anywhere
            state.lose_sync("capture starts inside the connection")
        self._states[direction] = state
        return state

    def _feed(self, state: _DirectionState, data: bytes | memoryview, frame: int, time: float,
              out: list[Record]) -> None:
        """Frame ``data``; resynchronise first if needed, and again on framing errors."""
        sender = state.sender
        segment = state.resync is not None  # out of sync: ``data`` starts a segment
        if state.resync is None and sender is not None:
            # The common case first: in sync, known sender, whole messages of known
            # commands, one record each. Anything else takes the bytes back (messages
            # encode to their exact bytes) and goes the general way below.
            framer = state.framer
            try:
                messages = framer.feed(data)
            except DecodeError as exc:
                data = b"".join([m.to_bytes() for m in exc.messages]) + framer.clear()
            else:
                if UnknownCommand in map(type, messages):
                    data = b"".join([m.to_bytes() for m in messages]) + framer.clear()
                else:
                    src, dst, circuit = state.src, state.dst, state.circuit
                    out += [Record(MESSAGE, frame, time, src, dst, "tcp", circuit, sender,
                                   message) for message in messages]
                    if not framer.pending:
                        return
                    data = self._check_incomplete(state, data)
        while data:
            if state.resync is not None:
                data = self._resync(state, data, frame, time, out, False, segment)
                if not data:
                    return
            segment = False
            framer = state.framer
            fed, data = data, b""
            error = None
            try:
                messages = framer.feed(fed)
            except DecodeError as exc:
                # The messages completed before the bad header are good.
                messages, error = exc.messages, exc
            sender, src, dst, circuit = (
                state.sender, state.src, state.dst, state.circuit
            )
            if sender is not None and UnknownCommand not in map(type, messages):
                # The common case, one record per message, in one go.
                out += [Record(MESSAGE, frame, time, src, dst, "tcp", circuit, sender, message)
                        for message in messages]
                messages = ()
            for index, message in enumerate(messages):
                if type(message) is UnknownCommand:
                    # Out of sync: what was framed from here on is not to be trusted.
                    data = b"".join(m.to_bytes() for m in messages[index:]) + framer.clear()
                    data = data[1:]
                    state.lose_sync(f"unknown command {message.command}", 1)
                    break
                out.append(Record(
                    MESSAGE, frame, time, src, dst, "tcp", circuit,
                    sender if sender is not None else type(message).sender, message,
                ))
            else:
                if error is not None:
                    rest = framer.clear()
                    length = 0 if sender is None else misfit_length(rest, sender,
                                                                     self.max_payload)
                    if length:  # plausible messages follow the bad one: go on from there
                        out.append(Record(
                            ERROR, frame, time, src, dst, "tcp", circuit, sender, None, length,
                            f"bad header ({error}): skipped {length} bytes to the next message",
                        ))
                        data = rest[length:]
                    else:
                        # Give up the bad header's first byte and look again from the next.
                        data = rest[1:]
                        state.lose_sync(f"bad header ({error})", 1)
                elif framer.pending:
                    data = self._check_incomplete(state, fed)

    @staticmethod
    def _check_incomplete(state: _DirectionState, data: bytes | memoryview) -> bytes:
        """Check the command of the message the framer is waiting to complete, so that a
        garbage header cannot swallow the bytes that follow as the payload it claims.
        Returns the bytes to look for a message boundary in if it is not a CA command."""
        framer = state.framer
        pending = framer.pending
        if pending <= len(data):  # the incomplete message starts in ``data``
            start = len(data) - pending
            state.head = bytes(data[start : start + 2])
        elif len(state.head) < 2:  # its first byte came with the previous bytes
            state.head += bytes(data[: 2 - len(state.head)])
        else:
            return b""  # checked already
        command = int.from_bytes(state.head, "big")
        if len(state.head) < 2 or command <= _MAX_COMMAND:
            return b""
        rest = framer.clear()
        state.lose_sync(f"unknown command {command}", 1)
        return rest[1:]

    def _resync(self, state: _DirectionState, data: bytes | memoryview, frame: int, time: float,
                out: list[Record], final: bool, segment: bool = False) -> bytes:
        """Add bytes to the resynchronisation buffer; once a message boundary is found,
        report what was skipped and return the bytes from the boundary on. ``segment``:
        ``data`` is what a TCP segment carried, from its start (which is a boundary if
        it holds whole messages: :func:`shark.extract.resync.whole_messages`)."""
        buffer = state.resync
        held = len(buffer)
        buffer += data
        offset, found = find_message_start(buffer, final, self.max_payload, boundary=True)
        if (segment and (not found or offset > held)
                and whole_messages(data, self.max_payload)):
            # The segment starts a message; one confirmed in the bytes held before it
            # (the rest of a message cut short by a bad header) is kept all the same.
            offset, found = held, True
        state.skipped += offset
        if not found:
            del buffer[:offset]
            return b""
        rest = bytes(buffer[offset:])
        state.resync = None
        if state.skipped:
            out.append(Record(
                ERROR, frame, time, state.src, state.dst, "tcp", state.circuit,
                state.sender, None, state.skipped,
                f"{state.cause}: skipped {state.skipped} bytes to the next message",
            ))
        state.skipped = 0
        return rest

    def _close(self, state: _DirectionState, event: TcpEvent, out: list[Record]) -> None:
        """The direction ended: decode what a final resynchronisation finds, report the
        bytes left over."""
        while state.resync is not None:
            rest = self._resync(state, b"", event.frame, event.time, out, final=True)
            if state.resync is not None:
                break  # no message boundary in what was left
            self._feed(state, rest, event.frame, event.time, out)
        left = state.framer.pending + state.skipped
        if left:
            cause = state.cause if state.resync is not None else "stream ends"
            out.append(Record(
                ERROR, event.frame, event.time, state.src, state.dst, "tcp",
                state.circuit, state.sender, None, left,
                f"{cause}: {left} bytes left at the end ({event.reason}) that make no "
                "complete message",
            ))

    def _endpoint(self, address: bytes, port: int) -> str:
        key = (address, port)
        text = self._endpoints.get(key)
        if text is None:
            if len(self._endpoints) >= _MAX_REMEMBERED:
                self._endpoints.clear()
            host = format_address(address)
            text = f"{host}:{port}" if len(address) == 4 else f"[{host}]:{port}"
            self._endpoints[key] = text
        return text


#: Two headers (:data:`decoder.protocol.HEADER_LAYOUT`) in one unpack.
_VERSION_THEN_SEARCH = struct.Struct(HEADER_LAYOUT.format + HEADER_LAYOUT.format[1:])
_TWO_HEADERS = 2 * HEADER_SIZE


def is_search_datagram(payload: bytes | memoryview) -> bool:
    """Whether a UDP payload is a CA client's search datagram: a VERSION message with
    no payload, then a SEARCH request with a NUL-terminated name in a padded payload,
    its reply flag, and its search id in both parameters. Specific enough to tell CA
    searches to servers on ports that no beacon or reply in the capture announced."""
    if len(payload) < _TWO_HEADERS:
        return False
    (version, version_size, _, _, _, _,
     search, size, reply, _, cid, cid_again) = _VERSION_THEN_SEARCH.unpack_from(payload)
    return (
        version == Command.VERSION and version_size == 0 and search == Command.SEARCH
        and 0 < size <= len(payload) - _TWO_HEADERS and size % 8 == 0 and reply in (5, 10)
        and cid == cid_again and payload[_TWO_HEADERS + size - 1] == 0
    )


def _remember(collection: set, item: object) -> None:
    if item not in collection:
        if len(collection) >= _MAX_REMEMBERED:
            collection.clear()
        collection.add(item)
