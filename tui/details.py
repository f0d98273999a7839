"""Everything about one message, for the details pane: where and when, what it concerns
(PV, channel, subscription, the request it answers), every decoded field, the DBR
value with all its metadata, and the bytes as they were on the wire.

Built as one Rich :class:`~rich.text.Text` when a message is selected; a value's
elements and the hex dump are cut at a length a terminal can show, and the hex dump
is laid out for the pane's width (16, 8 or 4 bytes a line) so that no byte nor its
character is cut off at the edge. A row of the log
(:func:`row_details`) is a row of the messages table: what the session attributed is
in its columns, and the message itself is decoded again, statelessly, from its bytes
(the table's ``raw`` column); next to it, given the model, the row's channel as it
stands now (:func:`channel_row`: its row of the Channels pane, whose cells give the
last value as the pane shows it, PREC and enum strings applied): a message tells what
was so then, the channel what came of it. A pane's record (a channel's last value, an
error) is shown from the record (:func:`details`).
"""

from __future__ import annotations

import datetime
import socket
import struct
from collections.abc import Container
from typing import Any

from rich.text import Text

from decoder import (
    AccessRights,
    DBRValue,
    DecodeError,
    EventMask,
    Message,
    Role,
    dbr,
    split_datagram,
)
from decoder.status import alarm_severity_name, alarm_status_name
from shark.analysis.problems import problems
from shark.extract.record import CLOSE, ERROR, GAP, MESSAGE, OPEN, Record

from .log import LogRow
from .model import ChannelRow, Model, problem
from .rows import CHANNEL_COLUMNS, Clock, access_text, channel_cells
from .table import clean

__all__ = ["channel_row", "details", "dump_width", "hexdump", "row_details"]

_SENDERS = {"server": Role.SERVER, "client": Role.CLIENT}
_KINDS = {"OPEN": OPEN, "CLOSE": CLOSE, "GAP": GAP, "UNDECODED": ERROR}

#: Elements of an array value listed.
MAX_ELEMENTS = 32
#: Subscriptions of a channel listed (the count is given).
MAX_SUBSCRIPTIONS = 8
#: Enum state strings listed.
MAX_STATES = 16
#: Bytes of a message shown in hex.
MAX_DUMP = 1024
#: Where the Channels pane's cells of a channel say its rate, last update and value.
_CELL = {column.title: index for index, column in enumerate(CHANNEL_COLUMNS)}
_ADDRESS_FIELDS = frozenset(("ip", "address", "repeater_address", "client_address"))
_LABEL = 20


def details(record: Record | None, clock: Clock, midstream: Container[int] = (),
            width: int = 0) -> Text:
    """The details pane's text for ``record`` (a hint when there is none), its hex dump
    fitted to ``width`` cells (0: 16 bytes a line). Whatever the bytes, this returns:
    what cannot be shown is said so, in place."""
    try:
        return _details(record, clock, midstream, width)
    except Exception as exc:  # a bug or a payload no one foresaw must not end the session
        return Text(f"cannot show this record: {type(exc).__name__}: {exc}", style="red")


def _details(record: Record | None, clock: Clock, midstream: Container[int],
             width: int) -> Text:
    out = Text()
    if record is None:
        out.append("No message selected.\n\n", style="bold")
        out.append("Move the cursor in the message log (↑ ↓), or press ? for help.",
                   style="dim")
        return out
    message = record.message
    sender = "sender unknown" if record.sender is None else record.sender.name.lower()
    _header(out, record.command_name, message, record.frame, clock(record.time, 6),
            record.time, record.src, sender, record.dst, record.transport, record.circuit,
            problem(record, midstream))
    if message is None:
        _line(out, "bytes", str(record.size))
        return out
    _line(out, "size", f"{message.size} bytes (header {message.header_size}, payload "
                       f"{message.payload_size}{', extended' if message.extended else ''})")
    _concerns(out, record)
    _message(out, message)
    out.append("\nBytes\n", style="bold underline")
    out.append(hexdump(message.to_bytes(), width=width), style="green")
    return out


def row_details(row: LogRow | None, raw: bytes | None, clock: Clock,
                midstream: Container[int] = (), width: int = 0,
                model: Model | None = None) -> Text:
    """The details pane's text for a row of the log, ``raw`` its message's bytes (a
    hint when there is no row), the hex dump fitted to ``width`` cells (0: 16 bytes a
    line); with the ``model``, the row's channel as it stands now (its row of the
    Channels pane, :func:`channel_row`). Whatever the bytes, this returns."""
    if row is None:
        return details(None, clock)
    try:
        channel = None if model is None else channel_row(model, row)
        now = None if model is None else model.last_time
        return _row_details(row, raw, clock, midstream, width, channel, now)
    except Exception as exc:  # a bug or a payload no one foresaw must not end the session
        return Text(f"cannot show this message: {type(exc).__name__}: {exc}", style="red")


def _row_details(row: LogRow, raw: bytes | None, clock: Clock,
                 midstream: Container[int], width: int, channel: ChannelRow | None = None,
                 now: float | None = None) -> Text:
    out = Text()
    sender = _SENDERS.get(row.sender or "")
    message: Message | None = None
    undecodable = None
    if raw is not None:
        try:
            message = split_datagram(raw, sender)[0]
        except (DecodeError, IndexError) as exc:
            undecodable = str(exc) or "no message"
    trouble = None
    if row.problem:
        record = Record(_KINDS.get(row.command, MESSAGE), row.frame, row.seconds, row.src,
                        row.dst, row.transport, row.circuit, sender, message,
                        row.size or 0, row.reason or "")
        found = [p.text for p in problems(record, midstream)]
        if row.anomaly is not None:
            found.append(f"anomaly: {row.anomaly}")
        trouble = "; ".join(found) or "yes"
    _header(out, row.command, message, row.frame, clock.ns(row.time), row.seconds, row.src,
            row.sender or "sender unknown", row.dst, row.transport, row.circuit, trouble)
    if message is None:
        _line(out, "bytes", str(row.size))
        if undecodable is not None:
            _line(out, "payload", f"undecodable: {undecodable}", "red")
        elif row.reason:
            _line(out, "reason", row.reason)
        return out
    _line(out, "size", f"{message.size} bytes (header {message.header_size}, payload "
                       f"{message.payload_size}{', extended' if message.extended else ''})")
    _row_concerns(out, row)
    if channel is not None:
        _channel_now(out, channel, clock, now)
    _message(out, message, row.display)
    out.append("\nBytes\n", style="bold underline")
    out.append(hexdump(raw or b"", width=width), style="green")
    return out


def _header(out: Text, command: str, message: Message | None, frame: int, when: str,
            seconds: float, src: str, sender: str, dst: str, transport: str,
            circuit: int | None, trouble: str | None) -> None:
    """What every message's details begin with, a record's or a log row's: the command
    (and the decoder's class of it), the frame, when (``when``: seconds from the start as
    the clock writes them; ``seconds``: Unix), from, to, over which circuit, and what is
    wrong with it (``trouble``; None: nothing)."""
    out.append(command, style="bold")
    if message is not None:
        out.append(f"  {type(message).__name__}", style="dim")
    out.append("\n")
    _line(out, "frame", str(frame))
    _line(out, "time", f"{when} s")
    _line(out, "date", datetime.datetime.fromtimestamp(seconds).isoformat(
        " ", "microseconds"))
    _line(out, "from", f"{src}  ({sender})")
    _line(out, "to", dst)
    _line(out, "via", transport if circuit is None else f"tcp circuit #{circuit}")
    if trouble is not None:
        _line(out, "problem", trouble, "bold red")


def _row_concerns(out: Text, row: LogRow) -> None:
    """The PV, channel, subscription and request the session attributed the row to."""
    if row.pv is not None:
        _line(out, "PV", row.pv, "bold")
    if row.sid is not None:
        _line(out, "channel", f"sid={row.sid}")
    if row.subscription is not None:
        _line(out, "subscription", f"id={row.subscription}")
    if row.request_frame is not None:
        _line(out, "answers", f"frame {row.request_frame}")
        if row.latency is not None:
            _line(out, "latency", f"{row.latency * 1e3:.3f} ms")
    if row.anomaly is not None:
        _line(out, "anomaly", row.anomaly, "red")


def channel_row(model: Model, row: LogRow) -> ChannelRow | None:
    """The channel a row of the log concerns, as the model has it now: its row of the
    Channels pane (None for a row of no channel, or one the model let go of).

    Found through the circuit's state by the row's subscription or SID (no search);
    a channel gone from its circuit (cleared, its circuit closed) is looked for among
    the model's channel rows, by circuit and SID, subscription or name."""
    number = row.circuit
    if number is None or (row.sid is None and row.subscription is None and row.pv is None):
        return None
    channels = model.channels
    circuit = model.circuits.get(number)
    state = None if circuit is None else circuit.state
    if state is not None:
        key: Any = None
        if row.subscription is not None:
            subscription = state.subscriptions.get(row.subscription)
            if subscription is not None:
                key = subscription.channel if subscription.channel is not None \
                    else subscription
        if key is None and row.sid is not None:
            key = state.channels_by_sid.get(row.sid)
        found = None if key is None else channels.get(key)
        if found is not None:
            return found
    for candidate in list(channels.values()):  # (a copy: the decoder adds rows meanwhile)
        if candidate.circuit == number and _is_of(candidate, row):
            return candidate
    return None


def _is_of(candidate: ChannelRow, row: LogRow) -> bool:
    """Whether the channel row (on the log row's circuit) is the log row's channel."""
    channel = candidate.channel
    if channel is None:
        subscription = candidate.subscription
        return (subscription is not None and row.subscription is not None
                and subscription.subscriptionid == row.subscription)
    if row.sid is not None and channel.sid is not None:
        return channel.sid == row.sid
    if row.subscription is not None and row.subscription in channel.subscriptions:
        return True
    return row.pv is not None and channel.name == row.pv


def _channel_now(out: Text, row: ChannelRow, clock: Clock, now: float | None) -> None:
    """The channel as it stands now: its state, type, rights, server, subscriptions,
    last value (as the Channels pane shows it: PREC and enum strings applied) and
    updates; what the capture did not show is left out."""
    out.append("\nChannel now\n", style="bold underline")
    cells = [str(cell) for cell in channel_cells(row, clock, now)]
    channel = row.channel
    if channel is None:
        _line(out, "state", "not seen created (a circuit joined mid-stream)", "dim")
    else:
        state = channel.state.value
        _line(out, "state", f"{state}  cid={channel.cid} sid={channel.sid}",
              "red" if state in ("failed", "disconnected") else
              "dim" if state in ("cleared", "clearing") else "bold")
        if channel.native_type is not None:
            _line(out, "native type",
                  f"{dbr.dbr_name(channel.native_type)}[{channel.native_count}]")
        if channel.access_rights is not None:
            changes = channel.access_changes
            _line(out, "access", access_text(channel.access_rights)
                  + (f" (changed {changes} time{'s' * (changes != 1)})" if changes else ""))
        if channel.precision is not None:
            _line(out, "precision", str(channel.precision))
        if channel.enum_strings is not None:
            states = channel.enum_strings
            shown = ", ".join(repr(text) for text in states[:MAX_STATES])
            _line(out, "states", shown + (f", ... {len(states) - MAX_STATES} more"
                                          if len(states) > MAX_STATES else ""))
    _line(out, "server", row.server + ("" if row.circuit is None
                                       else f"  (tcp circuit #{row.circuit})"))
    _line(out, "client", row.client)
    _subscriptions(out, row)
    value = cells[_CELL["Last value"]]
    if value:
        _line(out, "last value", value, "bold")
    if row.updates:
        rate = f", {cells[_CELL['Rate/s']]}/s" if row.updates >= 2 else ""
        _line(out, "updates", f"{row.updates:,}{rate}, last at "
                              f"{cells[_CELL['Last update']]} s")
    if row.writes:
        _line(out, "writes", f"{row.writes:,}")


def _subscriptions(out: Text, row: ChannelRow) -> None:
    """The channel's subscriptions (or the one the row stands for), a line each."""
    if row.channel is not None:
        subscriptions = list(row.channel.subscriptions.values())
    else:
        subscriptions = [row.subscription] if row.subscription is not None else []
    if not subscriptions:
        return
    _line(out, "subscriptions", str(len(subscriptions)))
    for subscription in subscriptions[:MAX_SUBSCRIPTIONS]:
        _line(out, f"  id={subscription.subscriptionid}",
              f"{dbr.dbr_name(subscription.data_type)}[{subscription.data_count}] "
              f"{_mask(subscription.mask)}, {subscription.updates:,} updates, "
              f"{subscription.state.value}", None if subscription.active else "dim")
    if len(subscriptions) > MAX_SUBSCRIPTIONS:
        _line(out, "  ...", f"{len(subscriptions) - MAX_SUBSCRIPTIONS} more", "dim")


def _mask(mask: int | None) -> str:
    """A subscription's event mask (unknown when its EVENT_ADD request was not seen)."""
    return "mask unknown" if mask is None else _flags(EventMask, mask)


def _message(out: Text, message: Message, display: str | None = None) -> None:
    """Every field of ``message``, its value with its metadata, its header."""
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
        if display is not None:
            _line(out, "shown as", display)
    out.append("\nHeader\n", style="bold underline")
    _line(out, "command", f"{message.command} ({message.command_name})")
    for name in ("data_type", "data_count", "parameter1", "parameter2"):
        _line(out, name, str(getattr(message, name)))


def _line(out: Text, label: str, value: str, style: str | None = None) -> None:
    out.append(f"{label:<{_LABEL - 1}} ", style="dim")
    out.append(clean(value), style=style or "")
    out.append("\n")


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


def dump_width(per_line: int) -> int:
    """The cells a hex dump line of ``per_line`` bytes takes: the offset, the bytes in
    groups of eight, their characters."""
    groups = (per_line + 7) // 8
    return 4 + 2 + 3 * per_line - 1 + (groups - 1) + 2 + per_line


def hexdump(data: bytes, limit: int = MAX_DUMP, width: int = 0) -> str:
    """Offset, the bytes in hex (in groups of eight), and their printable characters,
    per line: 16 bytes a line, or 8 or 4 when ``width`` (cells, 0: any) is narrower
    than such a line, so that nothing is cut at the edge of the pane."""
    per_line = next((n for n in (16, 8) if not width or dump_width(n) <= width), 4)
    lines = []
    for offset in range(0, min(len(data), limit), per_line):
        chunk = data[offset : offset + per_line]
        groups = [" ".join(f"{b:02x}" for b in chunk[at : at + 8]).ljust(min(per_line, 8) * 3 - 1)
                  for at in range(0, per_line, 8)]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:04x}  {'  '.join(groups)}  {text}")
    if len(data) > limit:
        lines.append(f"... {len(data) - limit} more bytes")
    return "\n".join(lines) + "\n"
