"""One class per Channel Access message form.

A message is a header (command, data_type, data_count, parameter1, parameter2)
and a payload. Each class names the header fields as the protocol specification
does for that command (``sid``, ``ioid``, ``subscriptionid``, ``status`` ...);
the generic names stay available. The payload is kept as bytes and decoded only
when a field that lives there is asked for, so framing costs one header unpack.

Requests and responses of the same command share an id; :func:`message_class`
resolves (command, sender) to exactly one class. Every class can be built from
its named fields and turned back into bytes with :meth:`Message.to_bytes`.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from . import dbr
from .errors import DecodeError
from .protocol import (
    EXTENDED_HEADER_SIZE,
    EXTENDED_MARKER,
    EXTENSION_LAYOUT,
    HEADER_LAYOUT,
    HEADER_SIZE,
    MINOR_VERSION,
    Command,
    Role,
    SearchReply,
)
from .status import eca_name

#: The header and its extension (:data:`decoder.protocol.HEADER_LAYOUT`), one unpack each.
HEADER = HEADER_LAYOUT.struct
EXTENSION = EXTENSION_LAYOUT.struct
_EVENT_ADD_PAYLOAD = struct.Struct(">fffH2x")
_SEARCH_REPLY_PAYLOAD = struct.Struct(">H6x")

_GENERIC = ("data_type", "data_count", "parameter1", "parameter2")
#: What ``cls.__new__(cls)`` calls for every form (none has a ``__new__`` of its own),
#: without looking it up on the class per message.
_new = object.__new__


def padded(payload: bytes) -> bytes:
    """Pad a payload with zeros to a multiple of 8 bytes, as CA requires."""
    extra = -len(payload) % 8
    return payload + b"\0" * extra if extra else payload


def _alias(slot: str) -> Any:
    """What a field's name is on its class: the descriptor of the generic slot that
    carries it, under a second name, so that ``message.sid`` reads (and sets)
    ``message.parameter1`` at the cost of a slot. A property (even of an
    ``operator.attrgetter``) cost three times as much, and attributing a capture reads
    hundreds of thousands of these (the CIDs, SIDs and subscription ids its circuits
    are keyed by)."""
    return Message.__dict__[slot]  # (a member descriptor, which any subclass's instance has)


class Message:
    """Base of every message form.

    ``FIELDS`` maps the specification's name of a header field to the generic
    slot that carries it; subclasses get an attribute per name, which is that slot.
    """

    __slots__ = (*_GENERIC, "payload", "extended", "role_guessed", "_decoded")

    command: ClassVar[int]
    #: Who sends this form; ``None`` where both sides may.
    sender: ClassVar[Role | None] = None
    FIELDS: ClassVar[dict[str, str]] = {}
    #: Fields that live in the payload, accepted by the constructor.
    PAYLOAD_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, slot in cls.FIELDS.items():
            if name != slot:
                setattr(cls, name, _alias(slot))

    def __init__(self, *, payload: bytes = b"", extended: bool | None = None, **fields: Any):
        self.data_type = self.data_count = self.parameter1 = self.parameter2 = 0
        self._decoded = None
        self.role_guessed = False
        self._set_defaults()
        payload_fields = {k: fields.pop(k) for k in self.PAYLOAD_FIELDS if k in fields}
        for name, value in fields.items():
            slot = self.FIELDS.get(name, name if name in _GENERIC else None)
            if slot is None:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, slot, int(value))
        self.payload = padded(bytes(payload)) if payload else b""
        if payload_fields:
            self.payload = padded(self._encode_payload(**payload_fields))
        if extended is None:
            extended = len(self.payload) >= EXTENDED_MARKER or self.data_count >= EXTENDED_MARKER
        self.extended = extended

    def _set_defaults(self) -> None:
        """Header defaults other than zero, for forms that have them."""

    def _encode_payload(self, **fields: Any) -> bytes:
        raise TypeError(f"{type(self).__name__} takes no payload fields")

    @classmethod
    def from_wire(
        cls,
        data_type: int,
        data_count: int,
        parameter1: int,
        parameter2: int,
        payload: bytes | memoryview,
        extended: bool = False,
    ) -> Message:
        """Build from decoded header fields, with no validation (the framer's path)."""
        self = _new(cls)
        self.data_type = data_type
        self.data_count = data_count
        self.parameter1 = parameter1
        self.parameter2 = parameter2
        self.payload = payload
        self.extended = extended
        self.role_guessed = False
        self._decoded = None
        return self

    # -- what every message can tell ------------------------------------------------

    @property
    def command_name(self) -> str:
        return Command(self.command).name

    @property
    def payload_size(self) -> int:
        return len(self.payload)

    @property
    def header_size(self) -> int:
        return EXTENDED_HEADER_SIZE if self.extended else HEADER_SIZE

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return self.header_size + len(self.payload)

    def header_bytes(self, payload_size: int | None = None) -> bytes:
        """The header, announcing ``payload_size`` (by default the payload's).

        The extended form is used when the message is extended or when a 16-bit
        size cannot announce ``payload_size`` (0xFFFF would read as the marker).
        """
        if payload_size is None:
            payload_size = len(self.payload)
        if self.extended or payload_size >= EXTENDED_MARKER:
            return HEADER.pack(
                self.command, EXTENDED_MARKER, self.data_type, 0, self.parameter1,
                self.parameter2,
            ) + EXTENSION.pack(payload_size, self.data_count)
        return HEADER.pack(
            self.command, payload_size, self.data_type, self.data_count, self.parameter1,
            self.parameter2,
        )

    def to_bytes(self) -> bytes:
        return self.header_bytes() + bytes(self.payload)

    __bytes__ = to_bytes

    def fields(self) -> dict[str, Any]:
        """The named fields of this form, header and payload, as a dict."""
        out = {name: getattr(self, name) for name in self.FIELDS}
        for name in self.PAYLOAD_FIELDS:
            out[name] = getattr(self, name)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return type(self) is type(other) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            shown = ", ".join(f"{k}={v!r}" for k, v in self.fields().items())
        except DecodeError as exc:
            shown = f"undecodable payload: {exc}"
        return f"{type(self).__name__}({shown})"


# --- payload kinds -----------------------------------------------------------------


class _TextPayload(Message):
    """Forms whose payload is one NUL-terminated string (a PV, user or host name)."""

    __slots__ = ()
    PAYLOAD_FIELDS = ("name",)

    @property
    def name(self) -> str:
        payload = self.payload
        if type(payload) is not bytes:  # (a memoryview; bytes() of bytes costs a call)
            payload = bytes(payload)
        return payload.partition(b"\0")[0].decode("utf-8", "surrogateescape")

    def _encode_payload(self, name: str | bytes) -> bytes:
        raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
        return raw + b"\0"


class _DataPayload(Message):
    """Forms whose payload is a DBR value of ``data_type`` x ``data_count``.

    ``data`` decodes it (once) to a :class:`decoder.dbr.DBRValue`; ``value`` is
    its value. To build one, pass ``data`` as a DBRValue or plain values; the
    count defaults to the number of values.
    """

    __slots__ = ()
    PAYLOAD_FIELDS = ("data",)

    @property
    def data(self) -> dbr.DBRValue:
        if self._decoded is None:
            self._decoded = dbr.decode(self.data_type, self.data_count, self.payload)
        return self._decoded

    @property
    def value(self) -> Any:
        return self.data.value

    @property
    def data_type_name(self) -> str:
        return dbr.dbr_name(self.data_type)

    def _encode_payload(self, data: Any) -> bytes:
        values = data.values if isinstance(data, dbr.DBRValue) else dbr._as_sequence(data)
        if not self.data_count:
            self.data_count = len(values)
        return dbr.encode(self.data_type, data, self.data_count)


class _StatusField:
    """Mixin: a ``status_name`` for forms with an ECA ``status`` header field."""

    __slots__ = ()

    @property
    def status_name(self) -> str:
        return eca_name(self.status)  # type: ignore[attr-defined]


_DATA = {"data_type": "data_type", "data_count": "data_count"}
_SID_IOID = {**_DATA, "sid": "parameter1", "ioid": "parameter2"}


# --- the forms, in command order -----------------------------------------------------


class VersionRequest(Message):
    """Opens a circuit (priority and minor version) or a search datagram. On UDP,
    ``priority`` carries the "sequence number is valid" flag instead."""

    __slots__ = ()
    command = Command.VERSION
    sender = Role.CLIENT
    FIELDS = {"priority": "data_type", "version": "data_count", "sequence_number": "parameter1"}

    def _set_defaults(self) -> None:
        self.data_count = MINOR_VERSION


class VersionResponse(VersionRequest):
    __slots__ = ()
    sender = Role.SERVER


class EventAddRequest(Message):
    """Subscribe: the payload holds the (unused) low/high/to deadbands and the mask."""

    __slots__ = ()
    command = Command.EVENT_ADD
    sender = Role.CLIENT
    FIELDS = {**_DATA, "sid": "parameter1", "subscriptionid": "parameter2"}
    PAYLOAD_FIELDS = ("low", "high", "to", "mask")

    def _unpack(self) -> tuple[float, float, float, int]:
        if self._decoded is None:
            if len(self.payload) < _EVENT_ADD_PAYLOAD.size:
                raise DecodeError(f"EVENT_ADD request payload of {len(self.payload)} bytes")
            self._decoded = _EVENT_ADD_PAYLOAD.unpack_from(self.payload)
        return self._decoded

    low = property(lambda self: self._unpack()[0])
    high = property(lambda self: self._unpack()[1])
    to = property(lambda self: self._unpack()[2])
    mask = property(lambda self: self._unpack()[3])

    def _encode_payload(
        self, low: float = 0.0, high: float = 0.0, to: float = 0.0, mask: int = 0
    ) -> bytes:
        return _EVENT_ADD_PAYLOAD.pack(low, high, to, mask)


class EventAddResponse(_StatusField, _DataPayload):
    """A subscription update."""

    __slots__ = ()
    command = Command.EVENT_ADD
    sender = Role.SERVER
    FIELDS = {**_DATA, "status": "parameter1", "subscriptionid": "parameter2"}


class EventCancelResponse(Message):
    """Ends a subscription: coded with the EVENT_ADD id and no payload."""

    __slots__ = ()
    command = Command.EVENT_ADD
    sender = Role.SERVER
    FIELDS = {**_DATA, "sid": "parameter1", "subscriptionid": "parameter2"}


class EventCancelRequest(Message):
    __slots__ = ()
    command = Command.EVENT_CANCEL
    sender = Role.CLIENT
    FIELDS = {**_DATA, "sid": "parameter1", "subscriptionid": "parameter2"}


class ReadRequest(Message):
    """Deprecated read (no notification); answered by ReadResponse."""

    __slots__ = ()
    command = Command.READ
    sender = Role.CLIENT
    FIELDS = _SID_IOID


class ReadResponse(_DataPayload):
    __slots__ = ()
    command = Command.READ
    sender = Role.SERVER
    FIELDS = _SID_IOID


class WriteRequest(_DataPayload):
    __slots__ = ()
    command = Command.WRITE
    sender = Role.CLIENT
    FIELDS = _SID_IOID


class SearchRequest(_TextPayload):
    """Looks a PV name up; ``cid`` is the search id (sent in both parameters)."""

    __slots__ = ()
    command = Command.SEARCH
    sender = Role.CLIENT
    FIELDS = {"reply": "data_type", "version": "data_count", "cid": "parameter1"}

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        if "parameter2" not in fields:
            self.parameter2 = self.parameter1

    def _set_defaults(self) -> None:
        self.data_type = SearchReply.DONT_REPLY
        self.data_count = MINOR_VERSION


class SearchResponse(Message):
    """A server has the name. Over UDP the payload carries the server's minor
    version; over TCP (CA v4.12 searches) there is no payload and ``version``
    is None. An ``ip`` of 0xFFFFFFFF means the address the reply came from."""

    __slots__ = ()
    command = Command.SEARCH
    sender = Role.SERVER
    FIELDS = {"port": "data_type", "data_count": "data_count", "ip": "parameter1",
              "cid": "parameter2"}
    PAYLOAD_FIELDS = ("version",)

    @property
    def version(self) -> int | None:
        if len(self.payload) < 2:
            return None
        return _SEARCH_REPLY_PAYLOAD.unpack_from(bytes(self.payload[:8]).ljust(8, b"\0"))[0]

    def _encode_payload(self, version: int | None) -> bytes:
        return b"" if version is None else _SEARCH_REPLY_PAYLOAD.pack(version)


class EventsOffRequest(Message):
    """Flow control: stop sending subscription updates."""

    __slots__ = ()
    command = Command.EVENTS_OFF
    sender = Role.CLIENT


class EventsOnRequest(Message):
    __slots__ = ()
    command = Command.EVENTS_ON
    sender = Role.CLIENT


class ReadSyncRequest(Message):
    """Deprecated; libca sends it to flush outstanding reads."""

    __slots__ = ()
    command = Command.READ_SYNC
    sender = Role.CLIENT


class ErrorResponse(_StatusField, Message):
    """A request failed. The payload is a copy of the failing request's header
    (16 or 24 bytes), then a NUL-terminated explanation."""

    __slots__ = ()
    command = Command.ERROR
    sender = Role.SERVER
    FIELDS = {"cid": "parameter1", "status": "parameter2"}
    PAYLOAD_FIELDS = ("original_request", "original_payload_size", "error_message")

    def _split(self) -> tuple[Message, str]:
        if self._decoded is None:
            raw = bytes(self.payload)
            try:
                header = decode_header(raw, 0)
            except DecodeError as exc:
                raise DecodeError(f"ERROR message: bad copy of the request header: {exc}") from None
            if header is None:
                raise DecodeError("ERROR message too short for the copy of the request header")
            command, _size, data_type, data_count, p1, p2, header_size = header
            # The copy is of the header only: its payload is not repeated.
            original = make_message(
                command, Role.CLIENT, data_type, data_count, p1, p2, b"",
                header_size == EXTENDED_HEADER_SIZE,
            )
            text = raw[header_size:].split(b"\0", 1)[0].decode("utf-8", "replace")
            self._decoded = (original, text)
        return self._decoded

    @property
    def original_request(self) -> Message:
        """The header of the request that failed, decoded as a request."""
        return self._split()[0]

    @property
    def original_payload_size(self) -> int:
        """The payload size the failing request's header announced."""
        raw = bytes(self.payload)
        header = decode_header(raw, 0)
        return header[1] if header else 0

    @property
    def error_message(self) -> str:
        return self._split()[1]

    def _encode_payload(
        self,
        original_request: Message,
        error_message: str = "",
        original_payload_size: int | None = None,
    ) -> bytes:
        """The quoted header announces the request's payload size (given, or that
        of ``original_request``), though the payload itself is not repeated."""
        request = original_request
        size = len(request.payload) if original_payload_size is None else original_payload_size
        header = request.header_bytes(size)
        return header + error_message.encode("utf-8") + b"\0"


class ClearChannelRequest(Message):
    __slots__ = ()
    command = Command.CLEAR_CHANNEL
    sender = Role.CLIENT
    FIELDS = {"sid": "parameter1", "cid": "parameter2"}


class ClearChannelResponse(ClearChannelRequest):
    __slots__ = ()
    sender = Role.SERVER


class Beacon(Message):
    """RSRV_IS_UP: a server announces itself. ``address`` 0 means the sender's."""

    __slots__ = ()
    command = Command.RSRV_IS_UP
    sender = Role.SERVER
    FIELDS = {"version": "data_type", "server_port": "data_count", "beaconid": "parameter1",
              "address": "parameter2"}

    def _set_defaults(self) -> None:
        self.data_type = MINOR_VERSION


class NotFoundResponse(Message):
    """The server does not have the name (only when the search asked for a reply)."""

    __slots__ = ()
    command = Command.NOT_FOUND
    sender = Role.SERVER
    FIELDS = {"reply": "data_type", "version": "data_count", "cid": "parameter1"}


class ReadNotifyRequest(Message):
    __slots__ = ()
    command = Command.READ_NOTIFY
    sender = Role.CLIENT
    FIELDS = _SID_IOID


class ReadNotifyResponse(_StatusField, _DataPayload):
    __slots__ = ()
    command = Command.READ_NOTIFY
    sender = Role.SERVER
    FIELDS = {**_DATA, "status": "parameter1", "ioid": "parameter2"}


class RepeaterConfirmResponse(Message):
    """The repeater accepted a registration; ``repeater_address`` is its IPv4 address."""

    __slots__ = ()
    command = Command.REPEATER_CONFIRM
    sender = Role.REPEATER
    FIELDS = {"repeater_address": "parameter2"}


class CreateChanRequest(_TextPayload):
    __slots__ = ()
    command = Command.CREATE_CHAN
    sender = Role.CLIENT
    FIELDS = {"cid": "parameter1", "version": "parameter2"}

    def _set_defaults(self) -> None:
        self.parameter2 = MINOR_VERSION


class CreateChanResponse(Message):
    """The channel exists: its native type and count, and the server's id for it."""

    __slots__ = ()
    command = Command.CREATE_CHAN
    sender = Role.SERVER
    FIELDS = {**_DATA, "cid": "parameter1", "sid": "parameter2"}


class WriteNotifyRequest(_DataPayload):
    __slots__ = ()
    command = Command.WRITE_NOTIFY
    sender = Role.CLIENT
    FIELDS = _SID_IOID


class WriteNotifyResponse(_StatusField, Message):
    __slots__ = ()
    command = Command.WRITE_NOTIFY
    sender = Role.SERVER
    FIELDS = {**_DATA, "status": "parameter1", "ioid": "parameter2"}


class ClientNameRequest(_TextPayload):
    """The user name of the client (CA v4.1)."""

    __slots__ = ()
    command = Command.CLIENT_NAME
    sender = Role.CLIENT


class HostNameRequest(_TextPayload):
    __slots__ = ()
    command = Command.HOST_NAME
    sender = Role.CLIENT


class AccessRightsResponse(Message):
    """Read/write access of a channel (bit 0 read, bit 1 write); may change later."""

    __slots__ = ()
    command = Command.ACCESS_RIGHTS
    sender = Role.SERVER
    FIELDS = {"cid": "parameter1", "access_rights": "parameter2"}


class EchoRequest(Message):
    __slots__ = ()
    command = Command.ECHO
    sender = Role.CLIENT


class EchoResponse(Message):
    __slots__ = ()
    command = Command.ECHO
    sender = Role.SERVER


class RepeaterRegisterRequest(Message):
    """A client registers with the CA repeater; ``client_address`` is its IPv4 address."""

    __slots__ = ()
    command = Command.REPEATER_REGISTER
    sender = Role.CLIENT
    FIELDS = {"client_address": "parameter2"}


class CreateChFailResponse(Message):
    __slots__ = ()
    command = Command.CREATE_CH_FAIL
    sender = Role.SERVER
    FIELDS = {"cid": "parameter1"}


class ServerDisconnResponse(Message):
    """The server dropped a channel (e.g. the PV went away)."""

    __slots__ = ()
    command = Command.SERVER_DISCONN
    sender = Role.SERVER
    FIELDS = {"cid": "parameter1"}


class _Obsolete(Message):
    """Commands of protocol versions before 4; kept with their raw fields."""

    __slots__ = ()
    FIELDS = {"data_type": "data_type", "data_count": "data_count",
              "parameter1": "parameter1", "parameter2": "parameter2"}


class SnapshotRequest(_Obsolete):
    __slots__ = ()
    command = Command.SNAPSHOT


class BuildRequest(_Obsolete):
    __slots__ = ()
    command = Command.BUILD


class ReadBuildRequest(_Obsolete):
    __slots__ = ()
    command = Command.READ_BUILD


class SignalRequest(_Obsolete):
    __slots__ = ()
    command = Command.SIGNAL


class UnknownCommand(Message):
    """A command id this protocol version does not define; its bytes are kept."""

    __slots__ = ("command",)
    FIELDS = _Obsolete.FIELDS

    @property
    def command_name(self) -> str:
        return f"UNKNOWN_{self.command}"

    def __init__(self, command: int, **fields: Any) -> None:
        self.command = command
        super().__init__(**fields)


# --- resolving a command id and a sender to a class ----------------------------------------

_CLIENT_FORMS: dict[int, type[Message]] = {
    cls.command: cls
    for cls in (
        VersionRequest, EventAddRequest, EventCancelRequest, ReadRequest, WriteRequest,
        SnapshotRequest, SearchRequest, BuildRequest, EventsOffRequest, EventsOnRequest,
        ReadSyncRequest, ErrorResponse, ClearChannelRequest, Beacon, NotFoundResponse,
        ReadNotifyRequest, ReadBuildRequest, RepeaterConfirmResponse, CreateChanRequest,
        WriteNotifyRequest, ClientNameRequest, HostNameRequest, AccessRightsResponse,
        EchoRequest, RepeaterRegisterRequest, SignalRequest, CreateChFailResponse,
        ServerDisconnResponse,
    )
}
_SERVER_FORMS: dict[int, type[Message]] = {
    **_CLIENT_FORMS,
    Command.VERSION: VersionResponse,
    Command.EVENT_ADD: EventAddResponse,
    Command.READ: ReadResponse,
    Command.SEARCH: SearchResponse,
    Command.CLEAR_CHANNEL: ClearChannelResponse,
    Command.READ_NOTIFY: ReadNotifyResponse,
    Command.CREATE_CHAN: CreateChanResponse,
    Command.WRITE_NOTIFY: WriteNotifyResponse,
    Command.ECHO: EchoResponse,
}
#: Commands whose request and response differ; everything else has one form.
TWO_FORM_COMMANDS = frozenset(
    command for command, cls in _SERVER_FORMS.items() if _CLIENT_FORMS[command] is not cls
)
ALL_MESSAGE_CLASSES: tuple[type[Message], ...] = tuple(
    dict.fromkeys([*_CLIENT_FORMS.values(), *_SERVER_FORMS.values(), EventCancelResponse])
)


def message_class(command: int, sender: Role, payload_size: int = -1) -> type[Message]:
    """The class of ``command`` sent by ``sender``.

    The repeater sends what a server sends. An EVENT_ADD from a server with an
    empty payload is the response to EVENT_CANCEL. Unknown ids give
    :class:`UnknownCommand` (use :func:`make_message`, which passes the id on).
    """
    forms = _CLIENT_FORMS if sender == Role.CLIENT else _SERVER_FORMS
    cls = forms.get(command, UnknownCommand)
    if cls is EventAddResponse and payload_size == 0:
        return EventCancelResponse
    return cls


def guess_sender(
    command: int, data_type: int, data_count: int, payload: bytes | memoryview
) -> Role:
    """Best guess at who sent a message whose sender is unknown, from its shape.

    Only needed for the commands in :data:`TWO_FORM_COMMANDS`: payload-bearing
    requests (SEARCH, CREATE_CHAN, WRITE_NOTIFY) versus empty ones, data-bearing
    responses (READ, READ_NOTIFY) versus empty requests, a SEARCH reply's zero
    data_count, an EVENT_ADD request's 16-byte mask payload. Forms that look
    alike both ways (VERSION, CLEAR_CHANNEL, ECHO) are taken as the client's.
    """
    size = len(payload)
    if command in (Command.READ, Command.READ_NOTIFY):
        return Role.SERVER if size else Role.CLIENT
    if command in (Command.CREATE_CHAN, Command.WRITE_NOTIFY):
        return Role.CLIENT if size else Role.SERVER
    if command == Command.SEARCH:
        return Role.SERVER if data_count == 0 else Role.CLIENT
    if command == Command.EVENT_ADD:
        if size == _EVENT_ADD_PAYLOAD.size and bytes(payload[14:16]) == b"\0\0":
            mask = int.from_bytes(payload[12:14], "big")
            if 0 < mask < 16:
                return Role.CLIENT
        return Role.SERVER
    return Role.CLIENT


def decode_header(buf: bytes | bytearray | memoryview, offset: int = 0):
    """Read a header at ``offset``.

    Returns ``(command, payload_size, data_type, data_count, parameter1,
    parameter2, header_size)``, or ``None`` when ``buf`` does not yet hold the
    whole header (16 bytes, or 24 for the extended form).
    """
    end = len(buf)
    if end - offset < HEADER_SIZE:
        return None
    command, size, data_type, count, p1, p2 = HEADER.unpack_from(buf, offset)
    if size == EXTENDED_MARKER and count == 0:
        if end - offset < EXTENDED_HEADER_SIZE:
            return None
        size, count = EXTENSION.unpack_from(buf, offset + HEADER_SIZE)
        return command, size, data_type, count, p1, p2, EXTENDED_HEADER_SIZE
    return command, size, data_type, count, p1, p2, HEADER_SIZE


def make_message(
    command: int,
    sender: Role | None,
    data_type: int,
    data_count: int,
    parameter1: int,
    parameter2: int,
    payload: bytes | memoryview,
    extended: bool = False,
) -> Message:
    """Build the message object for decoded header fields and payload.

    With ``sender=None`` the sender is guessed (:func:`guess_sender`) and the
    message's ``role_guessed`` is set where the guess mattered.
    """
    guessed = False
    if sender is None:
        guessed = command in TWO_FORM_COMMANDS
        sender = guess_sender(command, data_type, data_count, payload) if guessed else Role.CLIENT
    cls = message_class(command, sender, len(payload))
    msg = cls.from_wire(data_type, data_count, parameter1, parameter2, payload, extended)
    if cls is UnknownCommand:
        msg.command = command
    msg.role_guessed = guessed
    return msg


__all__ = [
    *(cls.__name__ for cls in ALL_MESSAGE_CLASSES),
    "UnknownCommand", "Message", "message_class", "make_message", "decode_header",
    "guess_sender", "padded", "TWO_FORM_COMMANDS", "ALL_MESSAGE_CLASSES",
]
