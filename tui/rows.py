"""The columns of each pane and how one row object becomes its cells.

Every function here is called only for rows on screen, at most ten times a second,
so each may take its time (decode a value, name a type) without slowing the decoder.
Times are seconds since the first record, as in the message log and ``shark read``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from rich.text import Text

from decoder import AccessRights, DecodeError, Search, dbr
from decoder import messages as m
from decoder.describe import STATUS_AMONG_FIELDS
from decoder.text import shown_text
from shark.analysis.notes import note
from shark.extract.record import Record
from shark.output.text import format_value, micro, seconds_ns, subject

from .log import LogRow
from .model import ChannelRow, CircuitRow, ErrorRow, ServerRow
from .table import Cell, Column

__all__ = [
    "CHANNEL_COLUMNS", "CIRCUIT_COLUMNS", "ERROR_COLUMNS", "LOG_COLUMNS", "SEARCH_COLUMNS",
    "SERVER_COLUMNS", "Clock", "latency_text", "log_cells", "log_info", "via",
]

class Clock:
    """Formats capture times as seconds since ``zero``, the first record's time (set by
    the app once known)."""

    def __init__(self, zero: float | None = None) -> None:
        self.zero = zero

    def __call__(self, time: float | None, digits: int = 3) -> str:
        if time is None:
            return ""
        return f"{time - (self.zero if self.zero is not None else time):.{digits}f}"

    def ns(self, time_ns: int | None) -> str:
        """A time in nanoseconds, to the microsecond as ``shark read`` rounds it."""
        if time_ns is None:
            return ""
        zero = seconds_ns(self.zero) if self.zero is not None else None
        if zero is None:
            zero = time_ns
        us = micro(time_ns - zero)
        sign = "-" if us < 0 else ""
        whole, fraction = divmod(abs(us), 1_000_000)
        return f"{sign}{whole}.{fraction:06d}"


def _where(record: Record) -> str:
    return record.transport if record.circuit is None else f"#{record.circuit}"


# -- the message log ----------------------------------------------------------------------

#: The log's columns, by how much they matter on a narrow screen (see
#: :class:`~tui.table.Column`): at 80 columns time, command, PV, latency and a short
#: info; wider, the frame number and the circuit with its server. The two full
#: addresses are offered by the column chooser (the circuit names them once).
LOG_COLUMNS = [
    Column("No.", 7, right=True, priority=60), Column("Time", 10, right=True, priority=100),
    Column("Via", 26, priority=40, min_width=12),
    Column("Source", 21, priority=20, hidden=True),
    Column("Destination", 21, priority=20, hidden=True),
    Column("Command", 14, priority=95, min_width=12), Column("PV", 26, priority=90, min_width=16),
    Column("Latency", 9, right=True, priority=70), Column("Info", priority=90),
]


#: Rows that are not messages: circuit ends, and bytes lost or not decodable.
_ENDS = frozenset({"OPEN", "CLOSE"})
_LOST = frozenset({"GAP", "UNDECODED"})


def log_cells(row: LogRow, clock: Clock) -> list[Cell]:
    return [str(row.frame), clock.ns(row.time), via(row), row.src, row.dst, row.command,
            log_subject(row), latency_text(row.latency), log_info(row)]


def via(row: LogRow) -> str:
    """Where a message went, short: on a circuit its number, an arrow to (``→``) or from
    (``←``) the server, and the server; its ends (and a message whose sender is not
    known) name both ends; a datagram its two ends. A host is written once when both
    ends are on it (``127.0.0.1:52133→:5064``)."""
    if row.circuit is None:
        return f"{row.transport} {pair(row.src, row.dst)}"
    if row.sender == "client":
        return f"#{row.circuit} → {row.dst}"
    if row.sender == "server":
        return f"#{row.circuit} ← {row.src}"
    return f"#{row.circuit} {pair(row.src, row.dst)}"


def pair(src: str, dst: str) -> str:
    """``src→dst``, the destination's host left out when it is the source's."""
    host, _, port = dst.rpartition(":")
    if host and src.rpartition(":")[0] == host:
        return f"{src}→:{port}"
    return f"{src}→{dst}"


def latency_text(latency: float | None) -> str:
    """A response's latency (seconds) in milliseconds, to about four digits
    (``0.136 ms``, ``12.35 ms``, ``1250 ms``); seconds from 10 s on."""
    if latency is None:
        return ""
    ms = latency * 1e3
    if ms >= 10_000:
        return f"{latency:.1f} s"
    digits = 3 if ms < 10 else 2 if ms < 100 else 1 if ms < 1000 else 0
    return f"{ms:.{digits}f} ms"


def log_subject(row: LogRow) -> str:
    """The PV, or what names the channel when the capture does not tell its name (as
    :func:`shark.output.text.subject` says it of a record)."""
    if row.pv is not None:
        return shown_text(row.pv)
    if row.sid is not None:
        return f"<sid={row.sid}>"
    if row.subscription is not None:
        return f"<subscription {row.subscription}>"
    return ""


def log_info(row: LogRow) -> str:
    """What a row says besides its command, PV and latency (a column of its own), from
    the table's columns: the value first (what a person scans the log for; the column
    is cut at the screen's edge), the type, status and other fields, the alarm and an
    anomaly; why a circuit opened or closed; how many bytes were lost and why."""
    command = row.command
    if command in _ENDS:
        return f"({row.reason})"
    named = note(command, row.transport, row.src, row.dst)
    if named is not None:
        return named
    if command in _LOST:
        return f"{row.size} bytes: {row.reason}"
    parts = []
    if row.display is not None:
        parts.append(row.display)
    elif row.value_text is not None:
        parts.append(row.value_text)
    if row.data_type is not None:
        parts.append(f"{row.data_type}[{row.data_count}]")
    if row.status is not None and command not in STATUS_AMONG_FIELDS:
        parts.append(f"status={row.status}")
    if row.fields:
        parts.append(row.fields)
    if row.severity is not None and row.severity != "NO_ALARM":
        parts.append(f"{row.severity}/{row.alarm_status}")
    if row.anomaly is not None:
        parts.append(f"! {row.anomaly}")
    return "  ".join(parts)


def log_style(row: LogRow) -> str | None:
    """Problems in red (:func:`shark.analysis.problems.problem_mask` decided, as the row
    was stored); server messages in the accent colour; circuit ends and lost bytes dim."""
    if row.problem:
        return "bold red"
    if row.command in _ENDS or row.command in _LOST:
        return "dim"
    if row.sender == "server":
        return "cyan"
    if row.transport == "udp":
        return "magenta"
    return None


# -- channels -----------------------------------------------------------------------------

#: The panes' columns, like the log's, by how much they matter on a narrow screen: a
#: pane at 80 columns keeps what names a row and its headline numbers.
CHANNEL_COLUMNS = [
    Column("PV", 30, priority=100, min_width=18), Column("Server", 21, priority=30),
    Column("Via", 5, priority=45), Column("Type", 13, priority=55),
    Column("Count", 6, right=True, priority=35), Column("Access", 10, priority=25),
    Column("Rate/s", 8, right=True, priority=70), Column("Updates", 8, right=True, priority=65),
    Column("Last update", 11, right=True, priority=50), Column("Last value", priority=90),
]


def channel_cells(row: ChannelRow, clock: Clock, now: float | None) -> list[Cell]:
    channel = row.channel
    native = count = access = ""
    if channel is not None:
        if channel.native_type is not None:
            native = dbr.dbr_name(channel.native_type)[4:]
        if channel.native_count is not None:
            count = str(channel.native_count)
        access = access_text(channel.access_rights)
    elif row.subscription is not None:  # what the subscription asked for, in brackets
        native = f"({dbr.dbr_name(row.subscription.data_type)[4:]})"
    rate = row.rate(now if now is not None else row.last_time)
    value = ""
    last = row.last
    if isinstance(last, LogRow):  # (an update counted in bulk: its row of the log)
        value = last.display if last.display is not None else last.value_text or ""
        if last.severity not in (None, "NO_ALARM"):
            value += f" {last.severity}/{last.alarm_status}"
    elif last is not None:
        try:
            value = format_value(last.message.data, last.reading)
        except DecodeError as exc:
            value = f"<{exc}>"
    return [row.pv, row.server, "" if row.circuit is None else f"#{row.circuit}", native,
            count, access, f"{rate:.1f}", str(row.updates),
            clock(row.last_time) if row.updates or row.writes else "", value]


def channel_style(row: ChannelRow) -> str | None:
    if row.channel is None:
        return "italic"
    state = row.channel.state.value
    if state in ("failed", "disconnected"):
        return "red"
    if state in ("cleared", "clearing"):
        return "dim"
    return None


def access_text(rights: AccessRights | int | None) -> str:
    if rights is None:
        return ""
    read, write = rights & AccessRights.READ, rights & AccessRights.WRITE
    return "read/write" if read and write else "read" if read else "write" if write else "none"


# -- circuits -----------------------------------------------------------------------------

CIRCUIT_COLUMNS = [
    Column("#", 5, right=True, priority=100), Column("Client", 21, priority=80),
    Column("Server", 21, priority=85), Column("State", 6, priority=75),
    Column("User", 10, priority=40), Column("Host", 14, priority=40),
    Column("Ver", 4, right=True, priority=20), Column("Chans", 6, right=True, priority=60),
    Column("Subs", 5, right=True, priority=55), Column("Messages", 9, right=True, priority=65),
    Column("Bytes", 11, right=True, priority=45), Column("Opened", 10, right=True, priority=30),
    Column("Last", 10, right=True, priority=35),
]


def circuit_cells(row: CircuitRow, clock: Clock) -> list[Cell]:
    state = row.state
    channels = subscriptions = ""
    if state is not None:
        channels = str(len(state.channels_by_sid) or len(state.channels_by_cid))
        subscriptions = str(sum(1 for s in list(state.subscriptions.values()) if s.active))
    return [str(row.number), row.client, row.server, row.closed or "open", row.user or "",
            row.host or "", "" if row.version is None else str(row.version), channels,
            subscriptions, str(row.messages), str(row.bytes), clock(row.opened),
            clock(row.last_time)]


def circuit_style(row: CircuitRow) -> str | None:
    return None if row.closed is None else "dim"


# -- searches -----------------------------------------------------------------------------

SEARCH_COLUMNS = [
    Column("PV", 30, priority=100, min_width=18), Column("Client", 21, priority=50),
    Column("Tries", 6, right=True, priority=70), Column("Answer", 10, priority=90),
    Column("First", 10, right=True, priority=40), Column("Last", 10, right=True, priority=45),
    Column("Servers", priority=80),
]


def search_cells(search: Search, clock: Clock) -> list[Cell]:
    servers = ", ".join(dict.fromkeys(_server(server, port) for server, port, _ in
                                      list(search.replies)))
    answer = Text("answered") if search.replies else Text("UNANSWERED", style="bold red")
    return [search.name, str(search.client), str(search.tries), answer,
            clock(_time(search.first)), clock(_time(search.last)), servers]


def _server(server: Any, port: int) -> str:
    if isinstance(server, int):
        return f"{socket.inet_ntoa(struct.pack('>I', server))}:{port}"
    return f"{str(server).rpartition(':')[0]}:{port}"


def _time(context: Any) -> float | None:
    return context.time if isinstance(context, Record) else None


# -- servers and beacons ------------------------------------------------------------------

SERVER_COLUMNS = [
    Column("Server", 21, priority=100), Column("Beacons", 8, right=True, priority=70),
    Column("Beacon id", 10, right=True, priority=40), Column("Interval", 9, right=True,
                                                             priority=75),
    Column("Restarts", 9, right=True, priority=80),
    Column("Anomalies", 10, right=True, priority=80), Column("Circuits", 9, right=True,
                                                             priority=60),
    Column("Last seen", 10, right=True, priority=50), Column("", priority=0, min_width=1),
]


def server_cells(row: ServerRow, clock: Clock) -> list[Cell]:
    interval = row.beacon_interval
    return [row.address, str(row.beacons), "" if row.beacon_id is None else str(row.beacon_id),
            "" if interval is None else f"{interval:.2f} s", str(row.restarts), str(row.anomalies),
            str(row.circuits), clock(row.last_time), ""]


# -- errors -------------------------------------------------------------------------------

ERROR_COLUMNS = [
    Column("Time", 11, right=True, priority=90), Column("No.", 7, right=True, priority=60),
    Column("Via", 5, priority=50), Column("Command", 14, priority=80, min_width=12),
    Column("PV", 26, priority=85, min_width=16), Column("Problem", priority=100),
]


def error_cells(row: ErrorRow, clock: Clock) -> list[Cell]:
    record = row.record
    return [clock(record.time, 6), str(record.frame), _where(record), record.command_name,
            subject(record), row.text]


def is_value(record: Record) -> bool:
    """Whether the record carries a channel value (for the details pane)."""
    return isinstance(record.message, m._DataPayload)
