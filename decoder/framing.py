"""Cutting bytes into messages: a stream framer for TCP, a splitter for UDP.

Framing reads headers only; payloads are sliced, not decoded. A header may
claim any payload size up to 4 GiB: the framer never allocates for a claim,
it buffers the bytes that actually arrive, and refuses a claim above its
``max_payload`` with a :class:`DecodeError` as soon as the header is complete.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import DecodeError
from .messages import EXTENSION, HEADER, HEADER_SIZE, Message, decode_header, make_message
from .protocol import EXTENDED_HEADER_SIZE, EXTENDED_MARKER, Role

#: Largest payload accepted by default: 64 MiB is 8 million doubles, more than
#: EPICS_CA_MAX_ARRAY_BYTES is set to at most sites; pass a larger one if needed.
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024


class StreamFramer:
    """Frames one direction of a TCP circuit.

    Feed it bytes as they come, in chunks of any size; iterate
    :meth:`messages` (or use :meth:`feed`, which returns the messages the new
    bytes completed). A header may be split anywhere, the extended header too.
    After a :class:`DecodeError` the stream cannot be trusted: the caller
    decides whether to :meth:`clear` and resynchronise.
    """

    __slots__ = ("sender", "max_payload", "_buffer", "_start", "bytes_consumed")

    def __init__(self, sender: Role | None, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.sender = sender
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._start = 0
        #: Stream offset of the first byte not yet framed into a message.
        self.bytes_consumed = 0

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add bytes; return the messages they complete.

        A :class:`DecodeError` carries, as ``messages``, those completed before
        the bad header (they are consumed, so they would be lost otherwise).
        """
        self._buffer += data
        out: list[Message] = []
        try:
            out.extend(self.messages())
        except DecodeError as error:
            error.messages = out
            raise
        return out

    def messages(self) -> Iterator[Message]:
        """Yield every complete message in the buffer."""
        buf = self._buffer
        start = self._start
        end = len(buf)
        sender = self.sender
        unpack = HEADER.unpack_from
        try:
            while end - start >= HEADER_SIZE:
                command, size, data_type, count, p1, p2 = unpack(buf, start)
                header_size = HEADER_SIZE
                if size == EXTENDED_MARKER and count == 0:
                    if end - start < EXTENDED_HEADER_SIZE:
                        break
                    header_size = EXTENDED_HEADER_SIZE
                    size, count = EXTENSION.unpack_from(buf, start + HEADER_SIZE)
                if size > self.max_payload:
                    raise DecodeError(
                        f"header claims a payload of {size} bytes, more than the "
                        f"{self.max_payload} allowed",
                        self.bytes_consumed,
                    )
                body = start + header_size
                if end - body < size:
                    break
                payload = bytes(buf[body : body + size])
                msg = make_message(
                    command, sender, data_type, count, p1, p2, payload,
                    header_size == EXTENDED_HEADER_SIZE,
                )
                self.bytes_consumed += header_size + size
                start = body + size
                yield msg
        finally:
            self._compact(start)

    def _compact(self, start: int) -> None:
        """Drop framed bytes, cheaply: only once they are most of the buffer."""
        if start and start * 2 >= len(self._buffer):
            del self._buffer[:start]
            start = 0
        self._start = start

    def clear(self) -> bytes:
        """Forget buffered bytes (e.g. after a gap); return them."""
        rest = bytes(self._buffer[self._start :])
        self._buffer = bytearray()
        self._start = 0
        self.bytes_consumed += len(rest)
        return rest


def split_datagram(
    data: bytes | memoryview, sender: Role | None, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> list[Message]:
    """Split one UDP datagram into its messages.

    A datagram must hold whole messages. Bytes that do not raise a
    :class:`DecodeError` whose ``messages`` attribute holds those decoded before
    and whose ``offset`` is where the bad bytes start.
    """
    data = bytes(data)
    out: list[Message] = []
    offset = 0
    end = len(data)
    while offset < end:
        header = decode_header(data, offset)
        if header is None:
            _fail(f"{end - offset} trailing bytes, too short for a CA header", offset, out)
        command, size, data_type, count, p1, p2, header_size = header
        if size > max_payload:
            _fail(f"header claims a payload of {size} bytes", offset, out)
        body = offset + header_size
        if body + size > end:
            _fail(
                f"header claims a payload of {size} bytes, only {end - body} in the datagram",
                offset,
                out,
            )
        out.append(
            make_message(
                command, sender, data_type, count, p1, p2, data[body : body + size],
                header_size == EXTENDED_HEADER_SIZE,
            )
        )
        offset = body + size
    return out


def _fail(reason: str, offset: int, messages: list[Message]) -> None:
    error = DecodeError(f"bad datagram at byte {offset}: {reason}", offset)
    error.messages = messages
    raise error
