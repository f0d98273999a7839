"""The wire tap of the CA tools: every message the client exchanges, printed as ``shark
read`` prints it and saved as a capture ``shark read`` and Wireshark open.

The client's tap (:class:`shark.peers.client.WireEvent`) sees the bytes of each datagram
and TCP send or receive with their addresses and time. Each becomes the IPv4 packet
that carried it (UDP, or TCP with sequence numbers counted per direction, a handshake
when a circuit opens and FINs when it closes), a raw-IP frame (LINKTYPE_RAW). The frames
go through the very pipeline of ``shark read`` (reader, session, messages table, text
or JSON lines), on a thread of their own so that a monitor's lines come as they happen;
and, with ``--write``, into a pcapng file: reading that file back prints, by
construction, the same lines.
"""

from __future__ import annotations

import itertools
import queue
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from typing import BinaryIO

from shark.analysis.attribution import Session
from shark.capture.files import Frame, LinkType
from shark.capture.writer import PcapngWriter
from shark.extract.reader import CaReader
from shark.output.lines import JsonLines, TextLines
from shark.peers.client import WireEvent, WireKind
from shark.tables.stream import MessageStream, shown_rows

__all__ = ["WireTap", "frames_of"]

_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP_PROTO, _TCP_PROTO = 17, 6
_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10
#: The most payload one synthesised IPv4 packet carries (its length field is 16 bits).
_MAX_SEGMENT = 65000
_END = object()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Packets:
    """Builds the IPv4 packets of WireEvents, keeping the TCP sequence numbers."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        #: (source, destination) -> the next sequence number of that direction.
        self._seq: dict[tuple[tuple[str, int], tuple[str, int]], int] = {}

    def _ip(self, proto: int, source: tuple[str, int], destination: tuple[str, int],
            payload: bytes) -> bytes:
        src, dst = socket.inet_aton(source[0]), socket.inet_aton(destination[0])
        header = _IP.pack(0x45, 0, 20 + len(payload), next(self._ids) & 0xFFFF, 0x4000, 64,
                          proto, 0, src, dst)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return header + payload

    def udp(self, source: tuple[str, int], destination: tuple[str, int], data: bytes) -> bytes:
        return self._ip(_UDP_PROTO, source, destination,
                        _UDP.pack(source[1], destination[1], 8 + len(data), 0) + data)

    def tcp(self, source: tuple[str, int], destination: tuple[str, int], flags: int,
            data: bytes = b"") -> bytes:
        seq = self._seq.setdefault((source, destination), 1000)
        ack = self._seq.setdefault((destination, source), 1000)
        self._seq[source, destination] = seq + len(data) + (1 if flags & (_SYN | _FIN) else 0)
        header = _TCP.pack(source[1], destination[1], seq, ack if flags & _ACK else 0, 5 << 4,
                           flags, 65535, 0, 0)
        pseudo = (socket.inet_aton(source[0]) + socket.inet_aton(destination[0])
                  + struct.pack("!BBH", 0, _TCP_PROTO, len(header) + len(data)))
        checksum = _checksum(pseudo + header + data)
        header = header[:16] + struct.pack("!H", checksum) + header[18:]
        return self._ip(_TCP_PROTO, source, destination, header + data)

    def of(self, event: WireEvent) -> list[bytes]:
        """The packets of one event."""
        source, destination = event.source, event.destination
        if event.transport == "udp":
            return [self.udp(source, destination, event.data)]
        if event.kind is WireKind.OPEN:
            self._seq.pop((source, destination), None)
            self._seq.pop((destination, source), None)
            return [self.tcp(source, destination, _SYN), self.tcp(destination, source,
                                                                   _SYN | _ACK),
                    self.tcp(source, destination, _ACK)]
        if event.kind is WireKind.CLOSE:
            return [self.tcp(source, destination, _FIN | _ACK),
                    self.tcp(destination, source, _FIN | _ACK),
                    self.tcp(source, destination, _ACK)]
        data = event.data
        return [self.tcp(source, destination, _PSH | _ACK, data[i:i + _MAX_SEGMENT])
                for i in range(0, len(data), _MAX_SEGMENT)]


def frames_of(events: list[WireEvent]) -> list[Frame]:
    """The frames of ``events``, numbered from 1 (for tests and one-off use)."""
    packets = _Packets()
    frames = []
    for event in events:
        for packet in packets.of(event):
            frames.append(_frame(len(frames) + 1, event.time, packet))
    return frames


def _frame(number: int, when: float, packet: bytes) -> Frame:
    return Frame(number, when, int(when * 1e9), LinkType.RAW, memoryview(packet))


class WireTap:
    """The tap of a client: give it as ``Client(tap=...)``; :meth:`close` at the end.

    With ``show``, the messages are printed on ``out`` (stderr by default) as ``shark
    read`` prints them (``jsonl``: as its JSON lines); with ``write``, the frames are
    saved as pcapng to that path. ``ports`` are the servers' ports besides 5064.
    """

    def __init__(self, show: bool, write: str | None = None, jsonl: bool = False,
                 out: BinaryIO | None = None, ports: tuple[int, ...] = ()) -> None:
        self.show = show
        self.jsonl = jsonl
        self.ports = set(ports)
        self.out = out
        self.events: list[WireEvent] = []
        self._packets = _Packets()
        self._numbers = itertools.count(1)
        self._writer = PcapngWriter(write) if write else None  # OSError: the caller's
        if self._writer is not None:
            self._writer.add_interface(LinkType.RAW, "shark")
        self._frames: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.shown = 0

    def __call__(self, event: WireEvent) -> None:
        self.events.append(event)
        if event.kind is WireKind.OPEN or (event.transport == "udp"
                                           and event.kind is WireKind.DATA
                                           and self._thread is None):
            self.ports.add(event.destination[1])  # the server's (searches go to it)
        frames = [_frame(next(self._numbers), event.time, packet)
                  for packet in self._packets.of(event)]
        if self._writer is not None:
            for frame in frames:
                self._writer.write(frame)
        if self.show:
            if self._thread is None:
                self._thread = threading.Thread(target=self._print, name="shark-wire",
                                                daemon=True)
                self._thread.start()
            for frame in frames:
                self._frames.put(frame)

    def flush(self) -> None:
        """Ask for what is waiting to be printed now (the thread prints when idle anyway)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Print what is left, close the capture file."""
        if self._thread is not None:
            self._frames.put(_END)
            self._thread.join(timeout=30)
        if self._writer is not None:
            self._writer.close()

    # -- the printing thread -------------------------------------------------------

    def _print(self) -> None:
        stream = MessageStream((), lifecycle=True)
        lines: TextLines | JsonLines | None = JsonLines() if self.jsonl else None
        out = self.out if self.out is not None else getattr(sys.stderr, "buffer", None)
        if out is None:  # a text stream only (a test's)
            out = _TextOut(sys.stderr)
        pending: list = []

        def write() -> None:
            nonlocal lines
            if not pending:
                return
            batches = stream.take(pending)
            pending.clear()
            for whole in batches:
                batch, _ = shown_rows(whole, None, stream.first_time, ends=not self.jsonl)
                if not batch.num_rows:
                    continue
                if lines is None:
                    lines = TextLines("relative", stream.first_time)
                out.write(lines(batch))
                self.shown += batch.num_rows
            out.flush()

        reader = CaReader(sorted(self.ports), lifecycle=True)
        for record in Session().records(reader.records(self._incoming(write)),
                                        lifecycle=not self.jsonl):
            pending.append(record)
        write()

    def _incoming(self, idle: object) -> Iterator[Frame]:
        """The frames as they come; ``idle()`` whenever none is waiting."""
        while True:
            try:
                frame = self._frames.get_nowait()
            except queue.Empty:
                idle()  # type: ignore[operator]
                frame = self._frames.get()
            if frame is _END:
                return
            yield frame


class _TextOut:
    """A binary face for a text stream."""

    def __init__(self, stream: object) -> None:
        self.stream = stream

    def write(self, data: bytes | memoryview) -> None:
        self.stream.write(bytes(data).decode("utf-8", "replace"))  # type: ignore[attr-defined]

    def flush(self) -> None:
        self.stream.flush()  # type: ignore[attr-defined]
