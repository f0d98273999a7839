"""Records as JSON objects, one per line: the machine-readable form of ``shark read``.

Every object has the keys ``frame`` (1-based), ``time`` (Unix seconds), ``src`` and
``dst`` (``"ip:port"``), ``transport``, ``circuit``, ``sender``, ``command`` (the
specification's name without ``CA_PROTO_``, or ``GAP``, ``UNDECODED``, ``OPEN``,
``CLOSE`` for the records that are not messages), ``command_id``, ``pv``,
``data_type`` (``DBR_...``), ``data_count``, ``status`` (``ECA_...``), ``value`` (a
scalar for one element, a list for arrays) and ``latency`` (seconds, for responses
paired with their request), null where they do not apply. Some records add:
``display`` for values (the value as text output shows it, with the PREC and enum
state strings its channel carried: :mod:`decoder.display`; ``value`` stays the raw
number or index), ``sid`` when the PV's name is unknown, ``request_frame``, ``severity``,
``alarm_status`` and ``epics_time`` for values that carry them, ``anomaly``, and
``size`` and ``reason`` for GAP, UNDECODED, OPEN and CLOSE records.

Floats that JSON cannot hold (NaN, infinities) are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``; names and strings whose bytes are not UTF-8 with
those bytes as ``\\xNN`` (:func:`shark.extract.text.text_form`), so that every line is
UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Any

from decoder import Command, DecodeError, Role, dbr
from decoder import messages as m
from decoder.display import shown_with
from decoder.status import alarm_severity_name, alarm_status_name
from shark.extract.record import MESSAGE, Record
from shark.extract.text import text_form

__all__ = ["json_ready", "record_dict", "record_json"]

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
        "pv": None if record.pv is None else text_form(record.pv),
        "data_type": None,
        "data_count": None,
        "status": None,
        "value": None,
        "latency": record.latency,
    }
    if record.kind is not MESSAGE:
        out["size"] = record.size
        out["reason"] = text_form(record.reason)
        return out
    fields = type(message).FIELDS
    if "data_type" in fields and not isinstance(message, m._Obsolete):
        out["data_type"] = dbr.dbr_name(message.data_type)
        out["data_count"] = message.data_count
    if "status" in fields:
        out["status"] = message.status_name
    if isinstance(message, m._DataPayload):
        try:
            _add_data(out, message.data, record.reading)
        except DecodeError as exc:
            out["anomaly"] = f"undecodable value: {exc}"
    if record.pv is None and record.channel is not None and record.channel.sid is not None:
        out["sid"] = record.channel.sid
    if record.request is not None:
        out["request_frame"] = record.request.frame
    if record.anomaly is not None:
        out["anomaly"] = text_form(f"{record.anomaly.kind}: {record.anomaly.detail}")
    return out


def _add_data(out: dict[str, Any], data: dbr.DBRValue, channel: Any = None) -> None:
    values = data.values
    if len(values) == 1:
        out["value"] = json_ready(data.value)
    else:
        out["value"] = [json_ready(v) for v in (values.tolist() if hasattr(values, "tolist")
                                           else values)]
    out["display"] = shown_with(data, channel)
    if data.severity is not None:
        out["severity"] = data.severity_name
        out["alarm_status"] = data.status_name
    if data.seconds is not None:
        out["epics_time"] = data.timestamp


def json_ready(value: Any) -> Any:
    """A value as a JSON line holds it: NaN and infinities as their names in strings,
    strings in their text form."""
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    if isinstance(value, str):
        return text_form(value)
    return value


#: One encoder for every line: ``json.dumps`` with arguments builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: A string as JSON, escaped exactly as the encoder above escapes it.
_STRING = json.encoder.encode_basestring
_FLOAT = float.__repr__
#: JSON text of strings that recur (endpoints, PV names), and per message class its
#: constant part; emptied past :data:`_MAX_CACHED` entries to stay bounded.
_STRINGS: dict[str, str] = {}
_MAX_CACHED = 65536
_CLASSES: dict[type, tuple[str, bool, bool, bool]] = {}
_DBR_NAMES: dict[int, str] = {}
_ECA_NAMES: dict[int, str] = {}
_ALARMS: dict[tuple[int, int | None], str] = {}
_WHERE: dict[tuple, str] = {}


class _Slow(Exception):
    """A record the fast path leaves to :func:`record_dict`."""


def record_json(record: Record) -> str:
    """One line of JSON for ``record``: ``record_dict(record)`` encoded.

    Messages, the bulk of a capture, are written by a path of their own that gives the
    same text several times faster: no dict, names of numbers cached, the value of a
    one-element payload written directly. Anything unusual (gaps, errors, anomalies,
    values of another type, undecodable payloads) goes through :func:`record_dict`."""
    message = record.message
    if message is None or record.anomaly is not None:
        return _ENCODE(record_dict(record))
    try:
        return _message_json(record, message)
    except (_Slow, DecodeError, TypeError):  # TypeError: e.g. a time that is no float
        return _ENCODE(record_dict(record))


def _message_json(record: Record, message: m.Message) -> str:
    cls = type(message)
    known = _CLASSES.get(cls)
    if known is None:
        known = _CLASSES[cls] = _class_info(cls)
    head, typed, with_status, with_data = known
    # src, dst, transport, circuit and sender: the same for every message of a direction
    where = (record.src, record.dst, record.transport, record.circuit, record.sender)
    prefix = _WHERE.get(where)
    if prefix is None:
        prefix = _remember(_WHERE, where, _where(*where))
    pv = record.pv
    if typed:
        data_type = message.data_type
        name = _DBR_NAMES.get(data_type)
        if name is None:
            name = _remember(_DBR_NAMES, data_type, _STRING(dbr.dbr_name(data_type)))
        typed = f',"data_type":{name},"data_count":{message.data_count}'
    else:
        typed = ',"data_type":null,"data_count":null'
    if with_status:
        status = message.status
        name = _ECA_NAMES.get(status)
        if name is None:
            name = _remember(_ECA_NAMES, status, _STRING(message.status_name))
        with_status = f',"status":{name}'
    else:
        with_status = ',"status":null'
    extra = ""
    if with_data:
        data = message.data
        values = data.values
        if len(values) == 1:
            value = values[0]  # data.value, inlined
            value = _scalar(value.item() if hasattr(value, "item") else value)
        else:
            value = _ENCODE([json_ready(v) for v in (
                values.tolist() if hasattr(values, "tolist") else values)])
        extra = ',"display":' + _STRING(shown_with(data, record.reading))
        metadata = data._metadata  # what data.severity, data.seconds ... look up
        if metadata:
            severity = metadata.get("severity")
            if severity is not None:
                extra += _alarm(severity, metadata.get("status"))
            seconds = metadata.get("seconds")
            if seconds is not None:  # data.timestamp, the same arithmetic
                extra += (',"epics_time":' + _FLOAT(
                    seconds + dbr.EPICS_EPOCH_OFFSET + metadata["nanoseconds"] * 1e-9))
    else:
        value = "null"
    latency = record.latency
    if pv is None:
        pv = "null"
        channel = record.channel
        if channel is not None and channel.sid is not None:
            extra += f',"sid":{channel.sid}'
    else:
        pv = _string(pv)
    if record.request is not None:
        extra += f',"request_frame":{record.request.frame}'
    return (f'{{"frame":{record.frame},"time":{_FLOAT(record.time)}{prefix}{head},"pv":{pv}'
            f'{typed}{with_status},"value":{value},"latency":'
            f'{"null" if latency is None else _FLOAT(latency)}{extra}}}')


def _where(src: str, dst: str, transport: str, circuit: int | None,
           sender: Role | None) -> str:
    return (f',"src":{_STRING(src)},"dst":{_STRING(dst)},"transport":{_STRING(transport)}'
            f',"circuit":{_ENCODE(circuit)}'
            f',"sender":{"null" if sender is None else _SENDERS[sender]}')


def _class_info(cls: type) -> tuple[str, bool, bool, bool]:
    """(the command's JSON, whether data_type and data_count apply, whether status
    does, whether the payload is a DBR value), as :func:`record_dict` decides them."""
    fields = cls.FIELDS
    if cls is m.UnknownCommand:
        raise _Slow  # its name depends on the instance
    head = (f',"command":{_STRING(Command(cls.command).name)}'
            f',"command_id":{int(cls.command)}')
    return (head, "data_type" in fields and not issubclass(cls, m._Obsolete),
            "status" in fields, issubclass(cls, m._DataPayload))


def _alarm(severity: int, status: int | None) -> str:
    """The severity and alarm status members, as data.severity_name and status_name."""
    key = (severity, status)
    text = _ALARMS.get(key)
    if text is None:
        status_name = None if status is None else alarm_status_name(status)
        text = _remember(_ALARMS, key, f',"severity":{_ENCODE(alarm_severity_name(severity))}'
                                        f',"alarm_status":{_ENCODE(status_name)}')
    return text


def _string(text: str) -> str:
    encoded = _STRINGS.get(text)
    if encoded is None:
        encoded = _remember(_STRINGS, text, _STRING(text_form(text)))
    return encoded


def _remember(cache: dict, key: Any, text: str) -> str:
    """Put ``text`` in ``cache``, emptied first when full: the codes and names in a
    capture are few, but a damaged one could make each different."""
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    cache[key] = text
    return text


def _scalar(value: Any) -> str:
    """A one-element value as :func:`record_dict` then the encoder write it."""
    kind = type(value)
    if kind is float:
        return _FLOAT(value) if math.isfinite(value) else f'"{_NON_FINITE[repr(value)]}"'
    if kind is int:
        return str(value)
    if kind is str:
        return _STRING(text_form(value))
    raise _Slow


_SENDERS = {role: f'"{role.name.lower()}"' for role in Role}
