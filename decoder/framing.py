"""Cutting bytes into messages: a stream framer for TCP, a splitter for UDP.

Framing reads headers only; payloads are sliced, not decoded. A header may
claim any payload size up to 4 GiB: the framer never allocates for a claim,
it buffers the bytes that actually arrive, and refuses a claim above its
``max_payload`` with a :class:`DecodeError` as soon as the header is complete.
With ``check_sizes`` it refuses as early a claim that the header's own fields
contradict (:mod:`decoder.sizes`): a lying or corrupted size then costs one
message, not the stream it would swallow as its payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .errors import DecodeError
from .messages import (
    _CLIENT_FORMS,
    _SERVER_FORMS,
    EXTENSION,
    HEADER,
    HEADER_SIZE,
    EventAddResponse,
    EventCancelResponse,
    Message,
    decode_header,
    make_message,
    message_class,
)
from .protocol import EXTENDED_HEADER_SIZE, EXTENDED_MARKER, Role
from .sizes import describe, payload_bounds

#: The first 8 bytes of a 16-byte header (command, payload size, data type, count) as
#: one number, then its parameters.
_KEY = struct.Struct(">QII")
#: Per kind of framer (sender's forms, whether it checks sizes, largest payload): the
#: headers it met, by their first 8 bytes, with their form and fields; only those it
#: accepted. Most messages of a stream repeat a few headers: one lookup then stands for
#: decoding and checking the header. Shared by the framers of a kind (a direction costs
#: nothing more), each emptied when it grows past :data:`_MAX_KNOWN`.
_KNOWN: dict[tuple[bool, bool, int], dict[int, tuple[type[Message], int, int, int]]] = {}
_MAX_KNOWN = 4096


def _misfit_either(command: int, size: int, data_type: int, count: int) -> str | None:
    """Why a header of an unknown sender fits neither the client's form of its command
    nor the server's (None when one fits, or the command is unknown)."""
    reasons = []
    for sender in (Role.CLIENT, Role.SERVER):
        cls = message_class(command, sender, size)
        least, most = payload_bounds(cls, data_type, count)
        if least <= size <= most:
            return None
        reasons.append(describe(cls, data_type, count, size))
    return " / ".join(dict.fromkeys(reasons))


#: Largest payload accepted by default: 64 MiB is 8 million doubles, more than
#: EPICS_CA_MAX_ARRAY_BYTES is set to at most sites; pass a larger one if needed.
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024


class StreamFramer:
    """Frames one direction of a TCP circuit.

    Feed it bytes as they come, in pieces of any size; :meth:`feed` returns the
    messages the new bytes completed (:meth:`messages` yields those the buffer
    holds). A header may be split anywhere, the extended header too. After a
    :class:`DecodeError` the stream cannot be trusted: the caller decides whether
    to :meth:`clear` and resynchronise.

    Only the bytes of an incomplete message are buffered between calls. Complete
    messages are cut from the bytes fed (or from the incomplete message and them,
    joined once it is complete), each payload one slice of those bytes.
    """

    __slots__ = ("sender", "max_payload", "check_sizes", "_buffer", "_need", "_forms",
                 "_known", "bytes_consumed")

    def __init__(self, sender: Role | None, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 check_sizes: bool = False) -> None:
        self.sender = sender
        self.max_payload = max_payload
        #: Refuse a header whose payload size is not one its other fields allow
        #: (:mod:`decoder.sizes`), as soon as the header is whole: what an observer of
        #: untrusted bytes wants. Off, any size up to ``max_payload`` is framed (a
        #: peer answers such a message itself, with the reason).
        self.check_sizes = check_sizes
        #: The bytes of the incomplete message at the end of what was fed.
        self._buffer = bytearray()
        #: Its whole length once its header is in, else 0.
        self._need = 0
        #: command -> message class for the known sender (None: guessed per message).
        self._forms = None if sender is None else (
            _CLIENT_FORMS if sender == Role.CLIENT else _SERVER_FORMS)
        #: Headers met by framers of this kind (:data:`_KNOWN`); None if the sender is
        #: unknown (its form is guessed per message, from the payload too).
        self._known = None if sender is None else _KNOWN.setdefault(
            (sender == Role.CLIENT, check_sizes, max_payload), {})
        #: Stream offset of the first byte not yet framed into a message.
        self.bytes_consumed = 0

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add bytes; return the messages they complete.

        A :class:`DecodeError` carries, as ``messages``, those completed before
        the bad header (they are consumed, so they would be lost otherwise).
        """
        pending = self._buffer
        if pending:
            need = self._need
            if not need:  # the incomplete message's header is not whole yet
                data = b"".join((pending, data))
                self._buffer = bytearray()
                return self._frame(data)
            if len(pending) + len(data) < need:
                pending += data  # still incomplete: no framing, no copy but this one
                return []
            # These bytes complete the message: it is cut from the buffer itself (a large
            # array is copied once more, into its payload, not joined with them first).
            view = memoryview(data)
            missing = need - len(pending)
            pending += view[:missing]
            rest = view[missing:]
            self._buffer = bytearray()
            self._need = 0
            first = self._complete(pending)
            if not rest:
                return [first]
            try:
                out = self._frame(bytes(rest))
            except DecodeError as error:
                error.messages.insert(0, first)
                raise
            out.insert(0, first)
            return out
        if type(data) is not bytes:
            data = bytes(data)
        return self._frame(data)

    def _complete(self, buf: bytearray) -> Message:
        """The message that ``buf`` holds exactly (its header was checked already)."""
        command, size, data_type, count, p1, p2 = HEADER.unpack_from(buf, 0)
        body = HEADER_SIZE
        if size == EXTENDED_MARKER and count == 0:
            size, count = EXTENSION.unpack_from(buf, HEADER_SIZE)
            body = EXTENDED_HEADER_SIZE
        with memoryview(buf) as view:
            payload = bytes(view[body : body + size])
        self.bytes_consumed += body + size
        return make_message(command, self.sender, data_type, count, p1, p2, payload,
                            body == EXTENDED_HEADER_SIZE)

    def messages(self) -> Iterator[Message]:
        """Yield every complete message in the buffer."""
        pending, self._buffer = self._buffer, bytearray()
        yield from self._frame(bytes(pending))

    def _frame(self, buf: bytes) -> list[Message]:
        """Cut ``buf`` into messages; keep the incomplete one at its end."""
        out: list[Message] = []
        append = out.append
        unpack = HEADER.unpack_from
        forms = self._forms
        max_payload = self.max_payload
        wire = Message.from_wire.__func__  # (a plain function: no lookup per message)
        check = self.check_sizes
        known = self._known
        known_get = None if known is None else known.get
        unpack_key = _KEY.unpack_from
        start = 0
        end = len(buf)
        need = 0
        while end - start >= HEADER_SIZE:
            if known_get is not None:
                # A header met before (its first 8 bytes): its form and fields, checked.
                key, p1, p2 = unpack_key(buf, start)
                entry = known_get(key)
                if entry is not None:
                    cls, size, data_type, count = entry
                    body = start + HEADER_SIZE
                    stop = body + size
                    if stop > end:
                        need = stop - start
                        break
                    append(wire(cls, data_type, count, p1, p2, buf[body:stop], False))
                    start = stop
                    continue
            command, size, data_type, count, p1, p2 = unpack(buf, start)
            if size == EXTENDED_MARKER and count == 0:
                if end - start < EXTENDED_HEADER_SIZE:
                    break
                size, count = EXTENSION.unpack_from(buf, start + HEADER_SIZE)
                body = start + EXTENDED_HEADER_SIZE
                extended = True
            else:
                body = start + HEADER_SIZE
                extended = False
            if size > max_payload:
                self._refuse(buf, start, out, f"header claims a payload of {size} bytes, more "
                             f"than the {max_payload} allowed")
            stop = body + size
            if forms is not None:
                cls = forms.get(command)
                if cls is not None:
                    if cls is EventAddResponse and not size:
                        cls = EventCancelResponse
                    if check:
                        least, most = payload_bounds(cls, data_type, count)
                        if not least <= size <= most:
                            self._refuse(buf, start, out, describe(cls, data_type, count, size))
                    if not extended:
                        if len(known) >= _MAX_KNOWN:
                            known.clear()
                        known[unpack_key(buf, start)[0]] = (cls, size, data_type, count)
            else:
                cls = None
                if check:
                    misfit = _misfit_either(command, size, data_type, count)
                    if misfit is not None:
                        self._refuse(buf, start, out, misfit)
            if stop > end:
                need = stop - start
                break
            if cls is None:  # sender unknown, or a command this protocol lacks
                msg = make_message(command, self.sender, data_type, count, p1, p2,
                                   buf[body:stop], extended)
            else:  # a header not met before
                msg = cls.from_wire(data_type, count, p1, p2, buf[body:stop], extended)
            append(msg)
            start = stop
        self.bytes_consumed += start
        if start < end:
            self._buffer = bytearray(memoryview(buf)[start:])
        self._need = need
        return out

    def _refuse(self, buf: bytes, start: int, out: list[Message], reason: str) -> None:
        """Stop at the header at ``start``, which cannot be trusted: keep it and what
        follows buffered, consume the messages before it (carried by the error)."""
        self._buffer = bytearray(memoryview(buf)[start:])
        self._need = 0
        self.bytes_consumed += start
        error = DecodeError(reason, self.bytes_consumed)
        error.messages = out
        raise error

    def detach(self) -> bytes:
        """Hand over the buffered bytes (an incomplete message) to a caller that frames
        them with what follows itself; :meth:`resume` takes back what it leaves."""
        rest = bytes(self._buffer)
        self._buffer = bytearray()
        self._need = 0
        return rest

    def resume(self, consumed: int, rest: bytes) -> None:
        """Go on after a caller framed ``consumed`` bytes of whole messages from the
        bytes :meth:`detach` handed over and more, leaving ``rest``: the start of a
        message (whose header, if whole, was checked by the caller)."""
        self.bytes_consumed += consumed
        self._buffer = bytearray(rest)
        header = decode_header(rest)
        self._need = 0 if header is None else header[-1] + header[1]

    def clear(self) -> bytes:
        """Forget buffered bytes (e.g. after a gap); return them."""
        rest = bytes(self._buffer)
        self._buffer = bytearray()
        self._need = 0
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
    append = out.append
    offset = 0
    end = len(data)
    # The sender's forms, for the message objects made here (by Message.from_wire);
    # an unknown command, EVENT_ADD's two forms and a sender to be guessed
    # go by make_message.
    forms = None if sender is None else _CLIENT_FORMS if sender == Role.CLIENT else _SERVER_FORMS
    wire = Message.from_wire.__func__
    while offset < end:
        header = decode_header(data, offset)
        if header is None:
            _fail(f"{end - offset} trailing bytes, too short for a CA header", offset, out)
        command, size, data_type, count, p1, p2, header_size = header
        if size > max_payload:
            _fail(f"header claims a payload of {size} bytes", offset, out)
        body = offset + header_size
        extended = header_size == EXTENDED_HEADER_SIZE
        if body + size > end:
            _fail(
                f"header claims a payload of {size} bytes, only {end - body} in the datagram",
                offset,
                out,
            )
        cls = None if forms is None else forms.get(command)
        if cls is None or cls is EventAddResponse:
            append(make_message(command, sender, data_type, count, p1, p2,
                                data[body : body + size], extended))
        else:
            append(wire(cls, data_type, count, p1, p2, data[body : body + size], extended))
        offset = body + size
    return out


def _fail(reason: str, offset: int, messages: list[Message]) -> None:
    error = DecodeError(f"bad datagram at byte {offset}: {reason}", offset)
    error.messages = messages
    raise error
