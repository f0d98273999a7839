"""Records as an Arrow record batch with the columns of the ``messages`` table.

What a filter (:mod:`shark.analysis.filters`) reads is columns; those who hold records
(the TUI, ``shark live``) put them into a batch here and ask the same compiled filter.
The columns have the names and kinds of the ``messages`` table
(:mod:`shark.tables.messages`), with two differences: ``time`` is float Unix seconds
(the records' own numbers; a filter takes both forms), and every record is a row,
OPEN and CLOSE too (``command`` says which; ``reason`` says how: ``syn`` or
``mid-stream``, ``fin`` or ``rst``). ``epics_time`` and ``raw_time`` are not made.

Only the columns asked for are built, so that a filter on PV names costs a list of PV
names, not a decoded value per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa

from decoder import DecodeError
from decoder import messages as m
from decoder.dbr import dbr_name
from decoder.status import alarm_severity_name, alarm_status_name
from shark.extract.record import MESSAGE, Record
from shark.extract.text import text_form

__all__ = ["BATCH_COLUMNS", "records_batch"]

_CATEGORY = pa.dictionary(pa.int32(), pa.string())


def _category(values: list[Any]) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode()


def _where(records: Sequence[Record]) -> dict[str, Callable[[], pa.Array]]:
    """Column makers of what every record has."""
    return {
        "frame": lambda: pa.array([r.frame for r in records], pa.int64()),
        "time": lambda: pa.array([r.time for r in records], pa.float64()),
        "src": lambda: _category([r.src for r in records]),
        "dst": lambda: _category([r.dst for r in records]),
        "transport": lambda: _category([r.transport for r in records]),
        "circuit": lambda: pa.array([r.circuit or None for r in records], pa.uint32()),
        "sender": lambda: _category([None if r.sender is None else r.sender.name.lower()
                                     for r in records]),
        "command": lambda: _category([r.command_name for r in records]),
        "command_id": lambda: pa.array([r.command for r in records], pa.uint16()),
        "pv": lambda: _category([None if r.pv is None else text_form(r.pv) for r in records]),
        "latency": lambda: pa.array([r.latency for r in records], pa.float64()),
        "request_frame": lambda: pa.array(
            [None if r.request is None else r.request.frame for r in records], pa.int64()),
        "size": lambda: pa.array([r.size for r in records], pa.int64()),
        "reason": lambda: pa.array([None if r.kind is MESSAGE else text_form(r.reason)
                                    for r in records], pa.large_string()),
    }


#: The columns of the message itself, made together (one look at each message).
_MESSAGE_COLUMNS = ("data_type", "data_count", "status", "value", "value_text",
                    "alarm_status", "severity", "anomaly", "sid")
_MESSAGE_TYPES = {
    "data_type": _CATEGORY, "data_count": pa.uint32(), "status": _CATEGORY,
    "value": pa.float64(), "value_text": pa.large_string(), "alarm_status": _CATEGORY,
    "severity": _CATEGORY, "anomaly": pa.large_string(), "sid": pa.uint32(),
}
#: Every column :func:`records_batch` can make, in the ``messages`` table's order.
BATCH_COLUMNS = (
    "frame", "time", "src", "dst", "transport", "circuit", "sender", "command",
    "command_id", "pv", "data_type", "data_count", "status", "value", "value_text",
    "latency", "sid", "request_frame", "alarm_status", "severity", "anomaly", "size",
    "reason",
)


def records_batch(records: Sequence[Record],
                  columns: Iterable[str] | None = None) -> pa.RecordBatch:
    """``records`` as a record batch, a row each (module docstring); ``columns``: which
    to make (None: all of :data:`BATCH_COLUMNS`)."""
    asked = set(BATCH_COLUMNS if columns is None else columns)
    # (a batch of no columns would have no rows: frame, at least)
    wanted = [c for c in BATCH_COLUMNS if c in asked] or ["frame"]
    makers = _where(records)
    made: dict[str, pa.Array] = {}
    if any(c in _MESSAGE_TYPES for c in wanted):
        rows = [_message_fields(r) for r in records]
        for i, name in enumerate(_MESSAGE_COLUMNS):
            if name in wanted:
                values = [row[i] for row in rows]
                kind = _MESSAGE_TYPES[name]
                made[name] = (_category(values) if kind == _CATEGORY
                              else pa.array(values, kind))
    arrays = [made[c] if c in made else makers[c]() for c in wanted]
    return pa.RecordBatch.from_arrays(arrays, wanted)


_NONE = (None,) * len(_MESSAGE_COLUMNS)


def _message_fields(record: Record) -> tuple:
    """The values of :data:`_MESSAGE_COLUMNS` for one record, as the ``messages`` table
    has them (:mod:`shark.tables.messages`)."""
    message = record.message
    if message is None:
        return _NONE
    fields = type(message).FIELDS
    data_type = data_count = status = value = text = alarm = severity = anomaly = None
    if "data_type" in fields and not isinstance(message, m._Obsolete):
        data_type, data_count = dbr_name(message.data_type), message.data_count
    if "status" in fields:
        status = message.status_name
    if isinstance(message, m._DataPayload):
        try:
            data = message.data
        except DecodeError as exc:
            anomaly = f"undecodable value: {exc}"
        else:
            if len(data.values) == 1:
                one = data.value
                if isinstance(one, str):
                    text = text_form(one)
                else:
                    value = float(one)
            if data.severity is not None:
                severity = alarm_severity_name(data.severity)
                alarm = alarm_status_name(data.status)
    if record.anomaly is not None:
        anomaly = text_form(f"{record.anomaly.kind}: {record.anomaly.detail}")
    sid = None
    if (record.pv is None and record.circuit and record.channel is not None
            and record.channel.sid is not None):
        sid = record.channel.sid
    return (data_type, data_count, status, value, text, alarm, severity, anomaly, sid)
