"""What the capture layer yields: one :class:`Record` per CA message, gap or error."""

from __future__ import annotations

from enum import Enum

from decoder import Message, Role

__all__ = ["CLOSE", "ERROR", "GAP", "MESSAGE", "OPEN", "UPDATES", "Record", "RecordKind"]


class RecordKind(str, Enum):
    """What a :class:`Record` (or an item standing for records) is.

    The values are the strings the kinds were before they were an Enum, and the
    members are those strings (``RecordKind.GAP == "gap"``), so that code comparing
    with the strings keeps working; compare with the members, by identity
    (``record.kind is GAP``). TCP reassembly has kinds of its own
    (:class:`shark.network.reassembly.TcpEventKind`), which equal none of these.
    """

    #: A decoded CA message (``record.message``).
    MESSAGE = "message"
    #: Bytes of a TCP direction missing from the capture (``record.size`` of them).
    GAP = "gap"
    #: Bytes that could not be decoded as CA (``record.size`` of them, ``record.reason``).
    ERROR = "error"
    #: A TCP circuit was first seen (``src`` is the client when the handshake was seen).
    OPEN = "open"
    #: One direction of a TCP circuit ended (``reason``: fin, rst, reused, end of capture).
    CLOSE = "close"
    #: Not a record: a :class:`shark.extract.bulk.UpdateBatch`, which stands for the
    #: records of many updates.
    UPDATES = "updates"

    # Printed as the value, as the strings were (and as ``StrEnum`` does, on 3.11).
    __str__ = str.__str__
    __format__ = str.__format__


#: The kinds by their old module-level names (``shark.GAP`` ...), for comparisons.
MESSAGE = RecordKind.MESSAGE
GAP = RecordKind.GAP
ERROR = RecordKind.ERROR
OPEN = RecordKind.OPEN
CLOSE = RecordKind.CLOSE
UPDATES = RecordKind.UPDATES


class Record:
    """A CA message, or a gap or error, with where and when it was seen.

    ``frame`` and ``time`` are those of the packet that completed the message (for a
    message spread over TCP segments, the last one). ``src`` and ``dst`` are
    ``"ip:port"`` (IPv6 as ``"[ip]:port"``). ``circuit`` numbers the TCP connections
    on CA ports from 1 in order of first appearance (None for UDP). ``sender`` is who
    sent it (:class:`decoder.Role`), None if unknown.

    The attribution fields are filled by :class:`shark.analysis.attribution.Session`: ``pv`` (None
    where the capture does not tell), the ``channel`` and ``subscription``
    (:mod:`decoder.circuit` objects), the ``request`` record a response answers and
    its ``latency`` in seconds, and an ``anomaly`` the circuit state saw.
    """

    __slots__ = (
        "kind", "frame", "time", "src", "dst", "transport", "circuit", "sender", "message",
        "_size", "reason", "pv", "channel", "subscription", "request", "latency", "anomaly",
        "reading",
    )

    def __init__(
        self,
        kind: RecordKind,
        frame: int,
        time: float,
        src: str,
        dst: str,
        transport: str,
        circuit: int | None,
        sender: Role | None,
        message: Message | None,
        size: int = 0,
        reason: str = "",
    ) -> None:
        self.kind = kind
        self.frame = frame
        self.time = time
        self.src = src
        self.dst = dst
        #: "tcp" or "udp".
        self.transport = transport
        self.circuit = circuit
        self.sender = sender
        #: The decoded message (MESSAGE records), else None.
        self.message = message
        self._size = size
        #: Why, for GAP and ERROR records.
        self.reason = reason
        self.pv: str | None = None
        self.channel = None
        self.subscription = None
        self.request: Record | None = None
        self.latency: float | None = None
        self.anomaly = None
        #: What the channel knew of how its values read when this record's came
        #: (:class:`decoder.display.Reading`), None when nothing.
        self.reading = None

    @property
    def size(self) -> int:
        """Bytes on the wire (MESSAGE), missing (GAP) or not decodable (ERROR)."""
        return self._size if self.message is None else self.message.size

    @property
    def command(self) -> int | None:
        return None if self.message is None else self.message.command

    @property
    def command_name(self) -> str:
        """The message's command name; ``GAP``, ``OPEN``, ``CLOSE``, or ``UNDECODED`` for
        undecodable bytes (not ``ERROR``, which is a CA command of its own)."""
        if self.message is not None:
            return self.message.command_name
        return "UNDECODED" if self.kind is ERROR else self.kind.name

    def __repr__(self) -> str:
        where = f"{self.transport}"
        if self.circuit is not None:
            where += f"#{self.circuit}"
        sender = "?" if self.sender is None else self.sender.name
        what = repr(self.message) if self.message is not None else (
            f"{self.command_name}({self.size} bytes: {self.reason})"
        )
        return (f"<Record frame={self.frame} {self.src} -> {self.dst} {where} {sender} "
                f"{what}>")
