"""The header and payload fields of a message as ``name=value`` words, for people.

One place decides how a field reads: an IPv4 address in a 32-bit field as dotted
quads, access rights and event masks as flag names (``READ|WRITE``), an ECA status by
name, the request an ERROR answers by its command, strings in their text form. Both
the per-message text of a record and the ``fields`` column of the ``messages`` table
are made here, so that every view writes a message's fields alike. The DBR value of a
message (its ``data``) is not among them: how a value is shown depends on the channel
(its PREC and enum strings), which a message alone does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from decoder.dbr import DBRValue
from decoder.errors import DecodeError
from decoder.messages import Message
from decoder.protocol import AccessRights, EventMask
from decoder.status import eca_name
from decoder.text import text_form

__all__ = [
    "HIDDEN_FIELDS", "NAMED_FIELDS", "STATUS_AMONG_FIELDS", "field_text", "flags_text",
    "header_field_text",
    "payload_text",
]

#: Fields holding an IPv4 address as a 32-bit number.
_ADDRESS_FIELDS = frozenset(("ip", "address", "repeater_address", "client_address"))
#: Header fields whose number reads as a name (the others read as the number).
NAMED_FIELDS = _ADDRESS_FIELDS | {"status", "access_rights", "mask"}
#: Fields not worth a word: EVENT_ADD's deadbands are unused by every server; the type
#: and count are shown together as DBR_X[n] (by whoever shows the message).
HIDDEN_FIELDS = frozenset(("low", "high", "to", "data_type", "data_count"))


def _status_among_fields() -> frozenset[type[Message]]:
    from decoder.messages import ALL_MESSAGE_CLASSES

    return frozenset(
        cls for cls in ALL_MESSAGE_CLASSES if "status" in cls.FIELDS
        and [n for n in cls.FIELDS if n not in HIDDEN_FIELDS][0] != "status")


#: Messages whose status is not their first field (ERROR: ``cid=1 status=...``): their
#: status reads in its place among the fields, not before them.
STATUS_AMONG_FIELDS = _status_among_fields()


def field_text(message: Message, hidden: Collection[str] = HIDDEN_FIELDS,
               data: Callable[[DBRValue], str] | None = None) -> str:
    """The fields of ``message`` but ``hidden`` as ``name=value`` words, a DBR value as
    ``data`` writes it (its channel decides: :mod:`decoder.display`); a payload that
    cannot be decoded as ``<undecodable payload: why>``."""
    parts = []
    try:
        for name, value in message.fields().items():
            if name in hidden:
                continue
            if data is not None and isinstance(value, DBRValue):
                parts.append(f"{name}={data(value)}")
            else:
                parts.append(f"{name}={_value(message, name, value)}")
    except DecodeError as exc:
        parts.append(f"<undecodable payload: {exc}>")
    return " ".join(parts)


def payload_text(message: Message, hidden: Collection[str] = HIDDEN_FIELDS) -> str:
    """The payload fields of ``message`` but ``hidden`` (what :func:`field_text` writes
    after the header fields)."""
    parts = []
    try:
        for name in message.PAYLOAD_FIELDS:
            if name not in hidden:
                parts.append(f"{name}={_value(message, name, getattr(message, name))}")
    except DecodeError as exc:
        parts.append(f"<undecodable payload: {exc}>")
    return " ".join(parts)


def flags_text(flags: type[AccessRights] | type[EventMask], value: int) -> str:
    """``READ|WRITE`` style names, spelled out member by member (Python 3.10 has no name
    for a combination)."""
    names = [flag.name for flag in flags if flag and flag & value == flag]
    return "|".join(names) if names else "NONE"


def header_field_text(name: str, value: int) -> str:
    """How a header field's number reads (the same for every message that has it)."""
    if name == "status":
        return eca_name(value)
    return _value(None, name, value)


def _value(message: Message | None, name: str, value: Any) -> str:
    if name == "status":
        return message.status_name  # type: ignore[union-attr]
    if name in _ADDRESS_FIELDS:
        return ".".join(str(value >> shift & 0xFF) for shift in (24, 16, 8, 0))
    if name == "access_rights":
        return flags_text(AccessRights, value)
    if name == "mask":
        return flags_text(EventMask, value)
    if name == "original_request":
        return value.command_name  # (a payload field: ``message`` is given)
    if isinstance(value, str):
        return repr(text_form(value))
    return str(value)

