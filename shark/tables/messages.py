"""The ``messages`` and ``updates`` tables: a row per message, a row per value seen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from decoder import messages as m
from decoder.describe import HIDDEN_FIELDS
from shark.extract.record import CLOSE, OPEN
from shark.tables.chunk import NOT_MESSAGE, Chunk, form_mask
from shark.tables.fields import fields_column
from shark.tables.grouping import found_in
from shark.tables.rowgroups import ChunkedTable, masked
from shark.tables.schema import (
    CATEGORY,
    ELEMENTS,
    FLOAT,
    INT64,
    NINT64,
    NO_TIME,
    NUINT16,
    NUINT32,
    STRINGS,
    TEXT,
    TIME,
    UINT32,
    Column,
    TableSchema,
)

__all__ = ["MessagesTable", "UpdatesTable"]

_LIFECYCLE = form_mask(lambda f: f is OPEN or f is CLOSE)
_UPDATES = form_mask(lambda f: f in (m.EventAddResponse, m.ReadNotifyResponse, m.ReadResponse))
_SUBSCRIPTION_UPDATE = form_mask(lambda f: f is m.EventAddResponse)
#: Messages whose parameter2 is a subscription id.
_HAS_SUBSCRIPTION = form_mask(
    lambda f: getattr(f, "FIELDS", {}).get("subscriptionid") == "parameter2")
#: Fields that have columns of their own, left out of the ``fields`` column (the
#: subscription id stays, in its place among the others, but in monitor updates).
_OWN_COLUMNS = HIDDEN_FIELDS | {"status", "data"}
#: The only protocol decoded so far (pvAccess will come beside it, in the same tables).
PROTOCOL = "ca"

_VALUE_COLUMNS = (
    Column("value", FLOAT, "the value, when it is one number (enums as their index)"),
    Column("value_text", TEXT, "the value, when it is one string"),
    Column("elements", ELEMENTS, "the elements of an array of numbers (a count other than "
                                 "1), as float64"),
    Column("element_texts", STRINGS, "the elements of an array of strings"),
)
_ALARM_COLUMNS = (
    Column("alarm_status", CATEGORY, "alarm status the value carries (STS types and up)"),
    Column("severity", CATEGORY, "alarm severity the value carries"),
    Column("epics_time", TIME, "the EPICS timestamp the value carries (TIME types)"),
)
_RAW_TIME = Column("raw_time", FLOAT, "capture time in Unix seconds where `time` cannot hold "
                                      "it (before 1677 or after 2262: a damaged capture), "
                                      "`time` then null; null otherwise")

MESSAGES = TableSchema(
    "messages",
    "one row per CA message (and per gap or undecodable stretch), the columns of "
    "`shark read --format jsonl`",
    [
        Column("frame", INT64, "capture frame (from 1) that completed the message"),
        Column("time", TIME, "capture time of that frame"),
        Column("src", CATEGORY, "sender's ip:port"),
        Column("dst", CATEGORY, "receiver's ip:port"),
        Column("protocol", CATEGORY, "ca (Channel Access; pva to come)"),
        Column("transport", CATEGORY, "tcp or udp"),
        Column("circuit", NUINT32, "TCP circuit number (from 1), null for UDP"),
        Column("sender", CATEGORY, "client, server or repeater; null if unknown"),
        Column("command", CATEGORY, "command name (GAP and UNDECODED for the non-messages; "
                                    "OPEN and CLOSE for circuit ends, where asked for)"),
        Column("command_id", NUINT16, "CA command id"),
        Column("pv", CATEGORY, "PV the message concerns, where known"),
        Column("data_type", CATEGORY, "DBR type (DBR_...)"),
        Column("data_count", NUINT32, "element count"),
        Column("status", CATEGORY, "ECA status in the header (ECA_...)"),
        *_VALUE_COLUMNS,
        Column("display", TEXT, "the value as text output shows it: with the PREC and enum "
                                "strings the capture carried; arrays by their first elements"),
        Column("latency", FLOAT, "seconds since the request this response answers"),
        Column("sid", NUINT32, "server id of the channel, when its PV name is unknown"),
        Column("subscription", NUINT32, "subscription id (EVENT_ADD, EVENT_CANCEL)"),
        Column("fields", TEXT, "the message's other fields as name=value words, as `shark "
                               "read` shows them (empty for a monitor update)"),
        Column("request_frame", NINT64, "frame of the request this response answers"),
        *_ALARM_COLUMNS,
        Column("anomaly", TEXT, "what the protocol does not allow, or an undecodable value"),
        Column("size", INT64, "bytes on the wire (missing bytes for GAP, skipped for "
                              "UNDECODED)"),
        Column("reason", TEXT, "why, for GAP and UNDECODED rows"),
        _RAW_TIME,
    ],
)

UPDATES = TableSchema(
    "updates",
    "one row per value seen: subscription updates (EVENT_ADD) and read replies "
    "(READ_NOTIFY, READ)",
    [
        Column("frame", INT64, "capture frame"),
        Column("time", TIME, "capture time"),
        Column("circuit", UINT32, "TCP circuit number"),
        Column("server", CATEGORY, "server's ip:port"),
        Column("client", CATEGORY, "client's ip:port"),
        Column("pv", CATEGORY, "PV name, where known"),
        Column("command", CATEGORY, "EVENT_ADD, READ_NOTIFY or READ"),
        Column("subscription", NUINT32, "subscription id (EVENT_ADD)"),
        Column("ioid", NUINT32, "request id (READ_NOTIFY, READ)"),
        Column("data_type", CATEGORY, "DBR type"),
        Column("count", UINT32, "element count (the array length)"),
        *_VALUE_COLUMNS,
        Column("status", CATEGORY, "ECA status of the reply (not for READ)"),
        *_ALARM_COLUMNS,
        Column("size", INT64, "bytes on the wire"),
        _RAW_TIME,
    ],
)

_VOCABULARY = {
    "src": "endpoints", "dst": "endpoints", "server": "endpoints", "client": "endpoints",
    "transport": "transports", "sender": "senders", "command": "commands", "pv": "pvs",
    "data_type": "data_types", "status": "statuses", "severity": "severities",
    "alarm_status": "alarm_statuses", "protocol": "protocols",
}


def _categories(schema: TableSchema) -> dict[str, str]:
    return {c.name: _VOCABULARY[c.name] for c in schema.columns if c.kind == CATEGORY}


def _taker(rows: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """What takes chunk rows ``rows`` (sorted) of a column (None: all, the column
    itself): where they are a few runs of rows (every row but a few: the messages
    table of a chunk with circuit ends), the runs' slices joined, a copy at the speed
    of memory, rather than a gather by index (some ten times as long)."""
    if rows is None:
        return lambda column: column
    if len(rows):
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        if len(breaks) < _RUNS_JOINED:
            starts = rows[np.r_[0, breaks]].tolist()
            stops = (rows[np.r_[breaks - 1, len(rows) - 1]] + 1).tolist()
            spans = list(zip(starts, stops, strict=True))
            return lambda column: np.concatenate([column[a:b] for a, b in spans])
    return lambda column: column[rows]


#: Runs of rows :func:`_taker` joins, at most (past that: a gather).
_RUNS_JOINED = 16


def _value_columns(chunk: Chunk, rows: np.ndarray | None) -> dict[str, Any]:
    """Value, text, alarm and EPICS time columns of chunk rows ``rows`` (None: all)."""
    values = chunk.values
    alarm_status, severity = chunk.alarm()
    taken = _taker(rows)
    return {
        "value": masked(taken(values.value), taken(values.has_value)),
        "value_text": _moved(values.text, rows),
        "elements": _moved(values.elements, rows),
        "element_texts": _moved(values.strings, rows),
        "alarm_status": taken(alarm_status),
        "severity": taken(severity),
        "epics_time": masked(taken(values.epics_ns), taken(values.has_time)),
    }


def _time_columns(chunk: Chunk, rows: np.ndarray | None) -> dict[str, Any]:
    """The ``time`` and ``raw_time`` columns of chunk rows ``rows`` (None: all): the
    seconds of a time that ``time`` cannot hold kept in ``raw_time``."""
    taken = _taker(rows)
    ns = taken(chunk.time_ns)
    inside = ns != NO_TIME
    if inside.all():  # (as good as always)
        raw = masked(np.zeros(len(ns)), np.zeros(len(ns), dtype=bool))
    else:
        raw = masked(np.where(inside, 0.0, taken(chunk.time)), ~inside)
    return {"time": masked(ns, inside), "raw_time": raw}


def _display(chunk: Chunk, rows: np.ndarray | None) -> pa.Array:
    """How the values of chunk rows ``rows`` (None: all) are shown (``Chunk.display``:
    of those rows only, in one gather)."""
    return chunk.display_of(rows)


def _moved(texts: dict[int, str], rows: np.ndarray | None) -> dict[int, str]:
    """Texts by chunk row, re-keyed by position among ``rows`` (sorted; None: all), of
    those that are among them."""
    if rows is None or not texts:
        return texts
    keys = np.fromiter(texts, np.int64, len(texts))
    positions = np.searchsorted(rows, keys)
    return {p: text for p, key, text in zip(positions.tolist(), keys.tolist(), texts.values(),
                                            strict=True)
            if p < len(rows) and rows[p] == key}


class MessagesTable(ChunkedTable):
    schema = MESSAGES
    categories = _categories(MESSAGES)
    #: Whether circuit ends (OPEN and CLOSE records) get rows too, as ``shark read``
    #: shows them; the table proper has a row per message (and gap).
    lifecycle = False

    def columns(self, chunk: Chunk) -> tuple[int, dict[str, Any]]:
        ends = None if self.lifecycle else chunk.rows(_LIFECYCLE)
        if ends is None or not len(ends):  # most chunks have no OPEN or CLOSE
            every = None
            n = chunk.size
        else:
            shown = np.ones(chunk.size, dtype=bool)
            shown[ends] = False
            every = np.flatnonzero(shown)
            n = len(every)
        kept = _taker(every)
        columns = _value_columns(chunk, every)
        columns.update(_time_columns(chunk, every))
        anomalies = {row: f"undecodable value: {text}"
                     for row, text in chunk.values.errors.items()}
        anomalies.update(chunk.anomalies)
        circuit = kept(chunk.circuit)
        command_id = kept(chunk.command_id)
        latency = kept(chunk.latency)
        answered = ~np.isnan(latency)
        data_type = kept(chunk.data_type)
        # (the rows of records that are not messages, few: found among the records)
        not_message = _positions(chunk.rows(NOT_MESSAGE), every)
        message = np.ones(n, dtype=bool)
        message[not_message] = False
        pv = kept(chunk.pv)
        unnamed = np.flatnonzero(pv < 0)  # (few: a message of a channel without a name)
        unnamed = unnamed[(circuit[unnamed] != 0) & message[unnamed]]
        columns.update({
            "frame": kept(chunk.frame),
            "src": kept(chunk.src),
            "dst": kept(chunk.dst),
            "protocol": np.zeros(n, dtype=np.int32),  # the vocabulary's first: "ca"
            "transport": kept(chunk.transport),
            "circuit": masked(circuit, circuit != 0),
            "sender": kept(chunk.sender),
            "command": kept(chunk.command),
            "command_id": masked(command_id, command_id >= 0),
            "pv": pv,
            "data_type": data_type,
            "data_count": masked(kept(chunk.data_count), data_type >= 0),
            "status": kept(chunk.status),
            "display": _display(chunk, every),
            "latency": masked(np.where(answered, latency, 0.0), answered),  # (half
            # the time of nan_to_num, which looks for infinities too: none, of times)
            "sid": self._sids(chunk, every, n, unnamed),
            "subscription": masked(kept(chunk.parameter2),
                                   kept(chunk.of_form(_HAS_SUBSCRIPTION))),
            "fields": fields_column(chunk, every, message, _OWN_COLUMNS),
            "request_frame": masked(kept(chunk.request_frame), answered),
            "anomaly": _moved(anomalies, every),
            "size": kept(chunk.size_bytes),
            "reason": {p: record.reason for p, record in zip(
                not_message.tolist(), chunk.records_of(_rows(not_message, every)),
                strict=True)},
        })
        return n, columns

    @staticmethod
    def _sids(chunk: Chunk, every: np.ndarray | None, n: int, unnamed: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """The SID of channels whose name is unknown (``shark read``'s ``sid`` key), at
        positions ``unnamed`` among chunk rows ``every`` (None: all; ``n`` of them) (TCP
        messages without a PV)."""
        sids = np.zeros(n, dtype=np.int64)
        known = np.zeros(n, dtype=bool)
        for position, record in zip(unnamed.tolist(), chunk.records_of(_rows(unnamed, every)),
                                    strict=True):
            channel = record.channel
            if channel is not None and channel.sid is not None:
                sids[position] = channel.sid
                known[position] = True
        return masked(sids, known)


def _positions(rows: np.ndarray, every: np.ndarray | None) -> np.ndarray:
    """The positions of chunk rows ``rows`` among ``every`` (sorted; None: all), of
    those that are among them."""
    if every is None:
        return rows
    positions, inside = found_in(every, rows)
    return positions[inside]


def _rows(positions: np.ndarray, every: np.ndarray | None) -> np.ndarray:
    """The chunk rows at ``positions`` among ``every`` (None: all)."""
    return positions if every is None else every[positions]


class UpdatesTable(ChunkedTable):
    schema = UPDATES
    categories = _categories(UPDATES)

    def columns(self, chunk: Chunk) -> tuple[int, dict[str, Any]]:
        rows = chunk.rows(_UPDATES)
        n = len(rows)
        columns = _value_columns(chunk, rows)
        columns.update(_time_columns(chunk, rows))
        subscription_or_ioid = chunk.parameter2[rows]
        monitor = _SUBSCRIPTION_UPDATE[chunk.form[rows]]
        columns.update({
            "frame": chunk.frame[rows],
            "circuit": chunk.circuit[rows],
            "server": chunk.src[rows],
            "client": chunk.dst[rows],
            "pv": chunk.pv[rows],
            "command": chunk.command[rows],
            "subscription": masked(subscription_or_ioid, monitor),
            "ioid": masked(subscription_or_ioid, ~monitor),
            "data_type": chunk.data_type[rows],
            "count": chunk.data_count[rows],
            "status": chunk.status[rows],
            "size": chunk.size_bytes[rows],
        })
        return n, columns
