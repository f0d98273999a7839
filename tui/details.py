"""Everything about one record, for the details pane: where and when, what it concerns
(PV, channel, subscription, the request it answers), every decoded field, the DBR
value with all its metadata, and the bytes as they were on the wire.

Built as one Rich :class:`~rich.text.Text` when a record is selected; a value's
elements and the hex dump are cut at a length a terminal can show.
"""

from __future__ import annotations

import datetime
import socket
import struct
from collections.abc import Container
from typing import Any

from rich.text import Text

from decoder import AccessRights, DBRValue, DecodeError, EventMask, Message, dbr
from decoder.status import alarm_severity_name, alarm_status_name
from shark.extract.record import Record

from .model import problem
from .rows import Clock, access_text
from .table import clean

__all__ = ["details", "hexdump"]

#: Elements of an array value listed.
MAX_ELEMENTS = 32
#: Bytes of a message shown in hex.
MAX_DUMP = 1024
_ADDRESS_FIELDS = frozenset(("ip", "address", "repeater_address", "client_address"))
_LABEL = 20


def details(record: Record | None, clock: Clock, midstream: Container[int] = ()) -> Text:
    """The details pane's text for ``record`` (a hint when there is none). Whatever the
    bytes, this returns: what cannot be shown is said so, in place."""
    try:
        return _details(record, clock, midstream)
    except Exception as exc:  # a bug or a payload no one foresaw must not end the session
        return Text(f"cannot show this record: {type(exc).__name__}: {exc}", style="red")


def _details(record: Record | None, clock: Clock, midstream: Container[int]) -> Text:
    out = Text()
    if record is None:
        out.append("No message selected.\n\n", style="bold")
        out.append("Move the cursor in the message log (↑ ↓), or press ? for help.",
                   style="dim")
        return out
    message = record.message
    out.append(record.command_name, style="bold")
    if message is not None:
        out.append(f"  {type(message).__name__}", style="dim")
    out.append("\n")
    _line(out, "frame", str(record.frame))
    _line(out, "time", f"{clock(record.time, 6)} s")
    _line(out, "date", datetime.datetime.fromtimestamp(record.time).isoformat(
        " ", "microseconds"))
    _line(out, "from", f"{record.src}  ({_sender(record)})")
    _line(out, "to", record.dst)
    _line(out, "via", record.transport if record.circuit is None
          else f"tcp circuit #{record.circuit}")
    trouble = problem(record, midstream)
    if trouble is not None:
        _line(out, "problem", trouble, "bold red")
    if message is None:
        _line(out, "bytes", str(record.size))
        return out
    _line(out, "size", f"{message.size} bytes (header {message.header_size}, payload "
                       f"{message.payload_size}{', extended' if message.extended else ''})")
    _concerns(out, record)
    out.append("\nFields\n", style="bold underline")
    try:
        fields = message.fields()
    except DecodeError as exc:
        fields = {}
        _line(out, "payload", f"undecodable: {exc}", "red")
    data = None
    for name, value in fields.items():
        if isinstance(value, DBRValue):
            data = value
            continue
        _line(out, name, _field(message, name, value))
    if data is not None:
        _value(out, data)
    out.append("\nHeader\n", style="bold underline")
    _line(out, "command", f"{message.command} ({message.command_name})")
    for name in ("data_type", "data_count", "parameter1", "parameter2"):
        _line(out, name, str(getattr(message, name)))
    out.append("\nBytes\n", style="bold underline")
    out.append(hexdump(message.to_bytes()), style="green")
    return out


def _line(out: Text, label: str, value: str, style: str | None = None) -> None:
    out.append(f"{label:<{_LABEL - 1}} ", style="dim")
    out.append(clean(value), style=style or "")
    out.append("\n")


def _sender(record: Record) -> str:
    return "sender unknown" if record.sender is None else f"{record.sender.name.lower()}"


def _concerns(out: Text, record: Record) -> None:
    """The PV, channel, subscription and request the session attributed it to."""
    if record.pv is not None:
        _line(out, "PV", record.pv, "bold")
    channel = record.channel
    if channel is not None:
        _line(out, "channel", f"cid={channel.cid} sid={channel.sid} {channel.state.value}")
        if channel.native_type is not None:
            _line(out, "native type",
                  f"{dbr.dbr_name(channel.native_type)}[{channel.native_count}]")
        if channel.access_rights is not None:
            _line(out, "access", access_text(channel.access_rights))
    subscription = record.subscription
    if subscription is not None:
        _line(out, "subscription", f"id={subscription.subscriptionid} "
              f"{dbr.dbr_name(subscription.data_type)}[{subscription.data_count}]"
              f"{'' if subscription.active else ' (ended)'}")
        _line(out, "  mask", _flags(EventMask, subscription.mask))
        _line(out, "  updates", str(subscription.updates))
    request = record.request
    if request is not None:
        _line(out, "answers", f"frame {request.frame} ({request.command_name})")
        if record.latency is not None:
            _line(out, "latency", f"{record.latency * 1e3:.3f} ms")
    if record.anomaly is not None:
        _line(out, "anomaly", f"{record.anomaly.kind}: {record.anomaly.detail}", "red")


def _field(message: Message, name: str, value: Any) -> str:
    if name == "status":
        return f"{message.status_name} ({value})"  # type: ignore[attr-defined]
    if name in _ADDRESS_FIELDS and isinstance(value, int):
        return f"{socket.inet_ntoa(struct.pack('>I', value))} ({value:#010x})"
    if name == "access_rights":
        return f"{access_text(value)} ({value})"
    if name == "mask" and isinstance(value, int):
        return f"{_flags(EventMask, value)} ({value})"
    if name == "data_type":
        return f"{dbr.dbr_name(value)} ({value})"
    if isinstance(value, Message):  # the request an ERROR quotes: its header only
        header = {k: getattr(value, k) for k in type(value).FIELDS}
        return f"{value.command_name} " + " ".join(f"{k}={v}" for k, v in header.items())
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _flags(flags: type[AccessRights] | type[EventMask], value: int | None) -> str:
    if value is None:
        return "?"
    names = [flag.name for flag in flags if flag and flag & value == flag]
    return "|".join(n for n in names if n) or "NONE"


def _value(out: Text, data: DBRValue) -> None:
    """The value, its elements, and every metadata field its DBR type carries."""
    out.append(f"\nValue  {dbr.dbr_name(data.dbr_type)}, {data.count} element"
               f"{'s' if data.count != 1 else ''}\n", style="bold underline")
    values = data.values
    if len(values) == 1:
        _line(out, "value", repr(data.value), "bold")
    else:
        for index in range(min(len(values), MAX_ELEMENTS)):
            item = values[index]
            _line(out, f"[{index}]", repr(item.item() if hasattr(item, "item") else item))
        if len(values) > MAX_ELEMENTS:
            _line(out, "...", f"{len(values) - MAX_ELEMENTS} more elements", "dim")
    for name, value in data.metadata().items():
        if name == "status":
            shown = f"{alarm_status_name(value)} ({value})"
        elif name == "severity":
            shown = f"{alarm_severity_name(value)} ({value})"
        elif name == "seconds":
            stamp = datetime.datetime.fromtimestamp(data.timestamp or 0.0)
            shown = f"{value} (EPICS epoch; {stamp.isoformat(' ', 'microseconds')})"
        elif name == "RISC_pad" or name.startswith("RISC"):
            continue
        elif isinstance(value, (bytes, bytearray)):
            shown = value.hex()
        else:
            shown = repr(value) if isinstance(value, str) else str(value)
        _line(out, name, shown)


def hexdump(data: bytes, limit: int = MAX_DUMP) -> str:
    """Offset, 16 bytes in hex, and their printable characters, per line."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:04x}  {left:<23}  {right:<23}  {text}")
    if len(data) > limit:
        lines.append(f"... {len(data) - limit} more bytes")
    return "\n".join(lines) + "\n"
