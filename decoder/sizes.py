"""The payload size a header implies, per message form: declared once, here.

A CA header carries its payload size, but for most commands that size follows from
the other fields: VERSION, ECHO, CLEAR_CHANNEL, ACCESS_RIGHTS, EVENT_CANCEL, a
CREATE_CHAN or WRITE_NOTIFY reply carry nothing; data messages carry ``data_count``
elements of DBR type ``data_type``, padded to 8 bytes (:func:`decoder.dbr.layout`).
A header whose size disagrees with what its own fields imply is not trusted: one
flipped bit or a lying size would otherwise swallow the messages after it as its
payload. The stream framer (:class:`decoder.StreamFramer`), the resynchronisation
heuristic and the bulk framer of shark all ask this one table.

What real peers send, and the table allows:

* data replies (EVENT_ADD, READ, READ_NOTIFY) carry the actual count, and exactly
  its padded size: a count of 0 (an empty dynamic array) leaves the metadata only;
* a one-element DBR_STRING may be shorter than its 40 bytes: libca writes only the
  string and its NUL, rsrv answers the same way;
* an EVENT_ADD request carries its 16-byte deadbands and mask; an EVENT_ADD reply
  without payload is the EVENT_CANCEL reply (its own form, which carries nothing);
* names (CREATE_CHAN, SEARCH, CLIENT_NAME, HOST_NAME) and an ERROR's quoted header and
  text have no size of their own: at most :data:`MAX_TEXT_PAYLOAD` bytes;
* commands a circuit never carries (the obsolete SNAPSHOT, BUILD, READ_BUILD,
  SIGNAL, and the UDP-only beacon and repeater messages) fit no size on a circuit.
"""

from __future__ import annotations

from enum import Enum

from . import dbr
from . import messages as m

__all__ = ["MAX_TEXT_PAYLOAD", "PAYLOAD", "Payload", "describe", "payload_bounds"]

#: Largest payload of a message that carries no DBR data (PV names, error texts).
MAX_TEXT_PAYLOAD = 16 * 1024
#: Bounds no size fits.
_NONE_FITS = (1, 0)


class Payload(Enum):
    """What a message form's payload is, which bounds its size."""

    EMPTY = "no payload"
    #: ``data_count`` elements of ``data_type``, padded to 8 bytes.
    DBR = "DBR data of its type and count"
    #: EVENT_ADD's low, high, to deadbands and mask.
    SUBSCRIPTION = "a 16-byte subscription request"
    #: A NUL-terminated name, or an ERROR's quoted header and text.
    TEXT = "a name or text"
    #: A search reply's minor version (8 bytes over UDP, nothing over TCP).
    SEARCH_REPLY = "at most 8 bytes"
    #: Not a message a circuit carries: no size fits.
    NOT_ON_CIRCUIT = "nothing: not sent on a circuit"


#: Message form -> what its payload is.
PAYLOAD: dict[type[m.Message], Payload] = {
    m.VersionRequest: Payload.EMPTY,
    m.VersionResponse: Payload.EMPTY,
    m.EventAddRequest: Payload.SUBSCRIPTION,
    m.EventAddResponse: Payload.DBR,
    m.EventCancelResponse: Payload.EMPTY,
    m.EventCancelRequest: Payload.EMPTY,
    m.ReadRequest: Payload.EMPTY,
    m.ReadResponse: Payload.DBR,
    m.WriteRequest: Payload.DBR,
    m.SearchRequest: Payload.TEXT,
    m.SearchResponse: Payload.SEARCH_REPLY,
    m.EventsOffRequest: Payload.EMPTY,
    m.EventsOnRequest: Payload.EMPTY,
    m.ReadSyncRequest: Payload.EMPTY,
    m.ErrorResponse: Payload.TEXT,
    m.ClearChannelRequest: Payload.EMPTY,
    m.ClearChannelResponse: Payload.EMPTY,
    m.NotFoundResponse: Payload.EMPTY,
    m.ReadNotifyRequest: Payload.EMPTY,
    m.ReadNotifyResponse: Payload.DBR,
    m.CreateChanRequest: Payload.TEXT,
    m.CreateChanResponse: Payload.EMPTY,
    m.WriteNotifyRequest: Payload.DBR,
    m.WriteNotifyResponse: Payload.EMPTY,
    m.ClientNameRequest: Payload.TEXT,
    m.HostNameRequest: Payload.TEXT,
    m.AccessRightsResponse: Payload.EMPTY,
    m.EchoRequest: Payload.EMPTY,
    m.EchoResponse: Payload.EMPTY,
    m.CreateChFailResponse: Payload.EMPTY,
    m.ServerDisconnResponse: Payload.EMPTY,
    m.Beacon: Payload.NOT_ON_CIRCUIT,
    m.RepeaterConfirmResponse: Payload.NOT_ON_CIRCUIT,
    m.RepeaterRegisterRequest: Payload.NOT_ON_CIRCUIT,
    m.SnapshotRequest: Payload.NOT_ON_CIRCUIT,
    m.BuildRequest: Payload.NOT_ON_CIRCUIT,
    m.ReadBuildRequest: Payload.NOT_ON_CIRCUIT,
    m.SignalRequest: Payload.NOT_ON_CIRCUIT,
}

_BOUNDS = {
    Payload.EMPTY: (0, 0),
    Payload.SUBSCRIPTION: (16, 16),
    Payload.TEXT: (0, MAX_TEXT_PAYLOAD),
    Payload.SEARCH_REPLY: (0, 8),
    Payload.NOT_ON_CIRCUIT: _NONE_FITS,
}
_STRING = int(dbr.DBRType.STRING)


def dbr_bounds(data_type: int, data_count: int) -> tuple[int, int]:
    """The payload sizes ``data_count`` elements of DBR type ``data_type`` may take
    (none for a type that does not exist)."""
    if not 0 <= data_type < len(dbr.LAYOUTS):
        return _NONE_FITS
    padded = -(-dbr.LAYOUTS[data_type].size(data_count) // 8) * 8
    if data_type == _STRING and data_count == 1:
        return 1, padded  # only the string and its NUL
    return padded, padded


def payload_bounds(cls: type[m.Message], data_type: int, data_count: int) -> tuple[int, int]:
    """``(least, most)`` payload bytes a message of form ``cls`` with these header
    fields may carry on a circuit; ``least > most`` when no size fits. Forms this
    table does not know (an unknown command) are not bounded here."""
    kind = PAYLOAD.get(cls)
    if kind is Payload.DBR:
        return dbr_bounds(data_type, data_count)
    if kind is None:
        return 0, 1 << 32
    return _BOUNDS[kind]


def describe(cls: type[m.Message], data_type: int, data_count: int, size: int) -> str:
    """Why ``size`` does not fit a header of form ``cls`` (for an error record)."""
    kind = PAYLOAD.get(cls)
    name = cls.__name__
    if kind is Payload.DBR:
        least, most = dbr_bounds(data_type, data_count)
        if least > most:
            return f"{name} header claims {size} payload bytes for unknown DBR type {data_type}"
        what = f"{dbr.dbr_name(data_type)} x {data_count} takes "
        what += f"{most}" if least == most else f"{least} to {most}"
        return f"{name} header claims {size} payload bytes; {what}"
    if kind is None:
        return f"{name} header claims {size} payload bytes"
    return f"{name} header claims {size} payload bytes; it carries {kind.value}"
