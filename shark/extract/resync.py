"""Finding where a CA message starts in bytes of unknown alignment.

A TCP direction loses its framing after a gap (bytes missing from the capture), after
bytes that do not frame as CA, or when the capture starts in the middle of a
connection. :func:`find_message_start` is the one heuristic that recovers it. The CA
header has no magic number, so it relies on how constrained real headers are.

*Plausible* header (:func:`plausible_header`), what every real header satisfies:

1. The command id is a 16-bit big-endian number of a command that travels over TCP
   (0-27 less the obsolete SNAPSHOT, BUILD, READ_BUILD, SIGNAL and the UDP-only
   RSRV_IS_UP, REPEATER_CONFIRM, REPEATER_REGISTER): the first byte is zero.
2. The payload size is a multiple of 8 (the protocol pads every payload) and at most
   ``max_payload``. The extended (24-byte) form is only used for sizes or counts that
   do not fit the 16-byte one.
3. The payload size is one that the client's or the server's form of the command
   allows with the header's data type and count: the table of :mod:`decoder.sizes`,
   which the framer checks too (no payload for VERSION, ECHO, CLEAR_CHANNEL ...; a
   data message's DBR data exactly, or EVENT_ADD's 16-byte subscription request;
   names and error texts at most :data:`MAX_OTHER_PAYLOAD` bytes).
4. Per command, the fields real peers send: VERSION has a priority below 100, a minor
   version 1-255 and parameter2 zero; ECHO, EVENTS_ON/OFF and READ_SYNC are all zeros
   but the command; CLEAR_CHANNEL, ACCESS_RIGHTS (rights 0-3), CREATE_CH_FAIL and
   SERVER_DISCONN have no data type or count; EVENT_CANCEL and the data messages
   (EVENT_ADD, READ, WRITE, READ_NOTIFY, WRITE_NOTIFY) name a DBR type 0-38;
   NOT_FOUND repeats the search id.

Headers without a payload are poor evidence: ids are small numbers, so 16 bytes seen
at a shift inside a run of pipelined requests look like another run of requests. The
first message accepted, the *anchor*, must therefore vouch for itself through its
payload: DBR data of exactly the size its type and count call for, a printable name
ending in a NUL (CREATE_CHAN, SEARCH, CLIENT_NAME, HOST_NAME), a subscription request
with a valid event mask, or an ERROR quoting a plausible request header. Messages
before the first anchor are skipped.

*Segments*: a TCP segment whose bytes are plausible messages end to end
(:func:`whole_messages`) is taken as starting on a boundary, anchor or not. Peers write
whole messages, and a client that only sends payload-less requests (reads, echoes) would
otherwise never give an anchor to resynchronise on.

*Confirmation*: an anchor is accepted when a plausible header follows its message. A
message longer than :data:`RESYNC_WINDOW` (only a data message can be) is accepted on
its own, so that confirming never needs more than that window buffered. At the end of
the stream an anchor whose message is complete is accepted without a successor, and so
is one whose message ends exactly where a TCP segment ended (peers write whole
messages): the message a bad header cut short is then reported with its own segment.

The scan for anchors runs as a regular expression over the bytes (command and size
bytes), so that arrays are skipped at C speed; each match is then checked in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from decoder import dbr
from decoder.framing import DEFAULT_MAX_PAYLOAD
from decoder.messages import decode_header, message_class
from decoder.protocol import EXTENDED_MARKER, Command, Role
from decoder.sizes import MAX_TEXT_PAYLOAD, payload_bounds

__all__ = [
    "MAX_OTHER_PAYLOAD", "RESYNC_WINDOW", "find_message_start", "misfit_length",
    "plausible_header", "whole_messages",
]

#: Largest message confirmed by its successor; longer ones must be data messages whose
#: size matches their DBR type and count, and are accepted on that evidence alone.
RESYNC_WINDOW = 64 * 1024
#: Largest payload of a message that carries no DBR data (PV names, error texts).
MAX_OTHER_PAYLOAD = MAX_TEXT_PAYLOAD

#: Commands without a payload whose header fields are all zero as well.
_ALL_ZERO = frozenset((Command.EVENTS_OFF, Command.EVENTS_ON, Command.READ_SYNC, Command.ECHO))
#: Commands without a payload whose data type and count are zero.
_IDS_ONLY = frozenset((
    Command.CLEAR_CHANNEL, Command.ACCESS_RIGHTS, Command.CREATE_CH_FAIL,
    Command.SERVER_DISCONN,
))
_DATA = frozenset((
    Command.EVENT_ADD, Command.READ, Command.WRITE, Command.READ_NOTIFY, Command.WRITE_NOTIFY,
))
_NOT_ON_TCP = frozenset((
    Command.SNAPSHOT, Command.BUILD, Command.READ_BUILD, Command.SIGNAL,
    Command.RSRV_IS_UP, Command.REPEATER_CONFIRM, Command.REPEATER_REGISTER,
))
_TCP_COMMANDS = frozenset(c for c in Command if c not in _NOT_ON_TCP)
_EVENT_ADD_REQUEST_SIZE = 16
_MAX_DBR_TYPE = max(dbr.DBRType)

_NAMED = frozenset((Command.SEARCH, Command.CREATE_CHAN, Command.CLIENT_NAME, Command.HOST_NAME))


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(b"\\x%02x" % value for value in sorted(values)) + b"]"


# Where an anchor can start, as a regular expression so that the scan runs in C: a
# command that can be one, then a payload size that is not zero and a multiple of 8
# (or the extended marker).
_ANCHOR_START = re.compile(
    b"\\x00" + _byte_class(_DATA | _NAMED | {Command.ERROR})
    + b"(?:[\\x00-\\xff]" + _byte_class(range(8, 256, 8)) + b"|[\\x01-\\xff]\\x00|\\xff\\xff)"
)
# Printable ASCII (and UTF-8 continuation/lead bytes) then a NUL, then zero padding.
_NAME = re.compile(rb"[\x20-\x7e\x80-\xff]+\x00", re.DOTALL)


def plausible_header(
    buf: bytes | bytearray | memoryview, offset: int = 0, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> int | None:
    """The length of the message whose header plausibly starts at ``offset`` (header and
    payload), 0 when ``buf`` ends before the header does, None if implausible."""
    header = decode_header(buf, offset)
    if header is None:
        return 0
    return _plausible(header, max_payload)


def _plausible(header: tuple, max_payload: int) -> int | None:
    command, size, data_type, count, p1, p2, header_size = header
    if command not in _TCP_COMMANDS or size % 8 or size > max_payload:
        return None
    if header_size != 16 and size < EXTENDED_MARKER - 8 and count < EXTENDED_MARKER:
        return None  # an extended header nobody would have needed
    if not _size_fits(command, size, data_type, count):
        return None
    if command == Command.VERSION:
        ok = data_type < 100 and 0 < count < 256 and not p2
    elif command in _ALL_ZERO:
        ok = not (data_type or count or p1 or p2)
    elif command in _IDS_ONLY:
        ok = not (data_type or count) and (command != Command.ACCESS_RIGHTS or p2 <= 3)
    elif command == Command.EVENT_CANCEL or command in _DATA:
        ok = data_type <= _MAX_DBR_TYPE
    elif command == Command.NOT_FOUND:
        ok = p1 == p2
    else:
        ok = True
    return header_size + size if ok else None


def _size_fits(command: int, size: int, data_type: int, count: int) -> bool:
    """Whether ``size`` is a payload size the client's or the server's form of
    ``command`` allows with these fields (:mod:`decoder.sizes`, the framer's rule)."""
    for sender in (Role.CLIENT, Role.SERVER):
        least, most = payload_bounds(message_class(command, sender, size), data_type, count)
        if least <= size <= most:
            return True
    return False


def _anchor(buf: bytes | bytearray | memoryview, header: tuple, body: int) -> bool | None:
    """Whether a plausible message vouches for itself (see the module documentation);
    None when that depends on payload bytes not in ``buf`` yet."""
    command, size, data_type, count, _p1, _p2, _header_size = header
    if not size:
        return False
    if command in _DATA:
        if command != Command.EVENT_ADD or size != _EVENT_ADD_REQUEST_SIZE:
            return True  # its size matches its DBR type and count
        if body + size > len(buf):
            return None
        mask = int.from_bytes(buf[body + 12 : body + 14], "big")
        return 0 < mask < 16 and buf[body + 14 : body + 16] == b"\0\0"
    if body + size > len(buf):
        return None
    if command in _NAMED:
        name = _NAME.match(buf, body, body + size)
        return name is not None and name.end() > body + size - 8 and not any(
            buf[name.end() : body + size]
        )
    if command == Command.ERROR:
        quoted = decode_header(buf[body : body + size], 0)
        return quoted is not None and quoted[0] in _TCP_COMMANDS
    return False


def whole_messages(data: bytes | bytearray | memoryview,
                   max_payload: int = DEFAULT_MAX_PAYLOAD, open_end: bool = False) -> bool:
    """Whether ``data`` (what one TCP segment carried) is one or more plausible messages
    end to end: peers write whole messages, so a segment that starts and ends on message
    boundaries is where framing resumes, even when none of its messages vouches for
    itself (a client's payload-less requests: READ_NOTIFY, EVENT_CANCEL, ECHO ...).
    With ``open_end`` the last message may go on past the end of ``data`` (its header,
    if whole, plausible)."""
    offset, end = 0, len(data)
    while offset < end:
        length = plausible_header(data, offset, max_payload)
        if length is None or not (length or open_end):
            return False
        if not length:
            return True  # a header cut by the end
        offset += length
    return (offset == end or open_end) and end > 0


def misfit_length(data: bytes | bytearray | memoryview, sender: Role,
                  max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """The length of the message whose header, at the start of ``data`` (the bytes
    from it to the end of a TCP segment), claims a payload size its other fields do
    not allow: the length those fields imply, or the one the size claims, whichever
    is followed by plausible messages to the end of ``data`` (or, for the implied one,
    by the end itself). 0 when neither is: then only a search finds the next message.
    The framer resumes there at once, so that a lying size or a flipped bit costs that
    one message, whatever follows."""
    header = decode_header(data)
    if header is None:
        return 0
    command, size, data_type, count, _p1, _p2, header_size = header
    least, most = payload_bounds(message_class(command, sender, size), data_type, count)
    end = len(data)
    if least == most and header_size + least == end:
        return end
    for length in dict.fromkeys((header_size + least if least == most else 0,
                                 header_size + size)):
        if header_size <= length < end and whole_messages(data[length:], max_payload,
                                                          open_end=True):
            return length
    return 0


def find_message_start(
    buf: bytes | bytearray | memoryview, final: bool = False,
    max_payload: int = DEFAULT_MAX_PAYLOAD, boundary: bool = False,
) -> tuple[int, bool]:
    """Where the first message that can be trusted starts in ``buf``.

    Returns ``(offset, True)`` when an anchor is found and confirmed (see the module
    documentation). Otherwise ``(offset, False)``: no byte before ``offset`` can start
    an anchor, and whether one starts at ``offset`` or later needs more bytes.
    ``final`` says no more bytes will come: then the answer is always decided, an
    offset of ``len(buf)`` meaning there is no anchor in ``buf``. ``boundary`` says
    ``buf`` ends where a TCP segment ended: peers write whole messages, so an anchor
    whose message ends exactly there is confirmed by that end.
    """
    end = len(buf)
    pos = 0
    while True:
        match = _ANCHOR_START.search(buf, pos)
        if match is None:
            # an anchor's first four bytes could still start in the last three
            return (end if final else max(pos, end - 3)), False
        offset = match.start()
        header = decode_header(buf, offset)
        if header is None:  # cut by the end of the buffer
            if final:
                pos = offset + 1
                continue
            return offset, False
        length = _plausible(header, max_payload)
        # (an implausible header is no anchor: not "undecided until more bytes come")
        anchor = _anchor(buf, header, offset + header[6]) if length else False
        if anchor is None and not final:
            return offset, False
        if not anchor:
            pos = offset + 1
            continue
        if length > RESYNC_WINDOW:
            return offset, True
        after = offset + length
        following = plausible_header(buf, after, max_payload) if after < end else 0
        if following or (final and following == 0 and after <= end) or (
                boundary and after == end):
            return offset, True
        if following == 0 and not final:
            return offset, False  # the successor is not in the buffer yet
        pos = offset + 1
