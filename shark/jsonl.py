"""Records as JSON objects, one per line: the machine-readable form of ``shark read``.

Every object has the keys ``frame`` (1-based), ``time`` (Unix seconds), ``src`` and
``dst`` (``"ip:port"``), ``transport``, ``circuit``, ``sender``, ``command`` (the
specification's name without ``CA_PROTO_``, or ``GAP``, ``UNDECODED``, ``OPEN``,
``CLOSE`` for the records that are not messages), ``command_id``, ``pv``,
``data_type`` (``DBR_...``), ``data_count``, ``status`` (``ECA_...``), ``value`` (a
scalar for one element, a list for arrays) and ``latency`` (seconds, for responses
paired with their request), null where they do not apply. Some records add:
``sid`` when the PV's name is unknown, ``request_frame``, ``severity``,
``alarm_status`` and ``epics_time`` for values that carry them, ``anomaly``, and
``size`` and ``reason`` for GAP, UNDECODED, OPEN and CLOSE records.

Floats that JSON cannot hold (NaN, infinities) are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from decoder import DecodeError, dbr
from decoder import messages as m

from .record import MESSAGE, Record

__all__ = ["record_dict", "record_json"]

_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def record_dict(record: Record) -> dict[str, Any]:
    """The JSON-ready dict of one record."""
    message = record.message
    out: dict[str, Any] = {
        "frame": record.frame,
        "time": record.time,
        "src": record.src,
        "dst": record.dst,
        "transport": record.transport,
        "circuit": record.circuit,
        "sender": None if record.sender is None else record.sender.name.lower(),
        "command": record.command_name,
        "command_id": record.command,
        "pv": record.pv,
        "data_type": None,
        "data_count": None,
        "status": None,
        "value": None,
        "latency": record.latency,
    }
    if record.kind != MESSAGE:
        out["size"] = record.size
        out["reason"] = record.reason
        return out
    fields = type(message).FIELDS
    if "data_type" in fields and not isinstance(message, m._Obsolete):
        out["data_type"] = dbr.dbr_name(message.data_type)
        out["data_count"] = message.data_count
    if "status" in fields:
        out["status"] = message.status_name
    if isinstance(message, m._DataPayload):
        try:
            _add_data(out, message.data)
        except DecodeError as exc:
            out["anomaly"] = f"undecodable value: {exc}"
    if record.pv is None and record.channel is not None and record.channel.sid is not None:
        out["sid"] = record.channel.sid
    if record.request is not None:
        out["request_frame"] = record.request.frame
    if record.anomaly is not None:
        out["anomaly"] = f"{record.anomaly.kind}: {record.anomaly.detail}"
    return out


def _add_data(out: dict[str, Any], data: dbr.DBRValue) -> None:
    values = data.values
    if len(values) == 1:
        out["value"] = _plain(data.value)
    else:
        out["value"] = [_plain(v) for v in (values.tolist() if hasattr(values, "tolist")
                                           else values)]
    if data.severity is not None:
        out["severity"] = data.severity_name
        out["alarm_status"] = data.status_name
    if data.seconds is not None:
        out["epics_time"] = data.timestamp


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    return value


def record_json(record: Record) -> str:
    """One line of JSON for ``record``."""
    return json.dumps(record_dict(record), separators=(",", ":"), ensure_ascii=False)
