"""The ``-f jsonl`` output of the CA tools: one JSON object a line, the same for every
command, so that a script reads ``shark get`` and ``shark monitor`` alike."""

from __future__ import annotations

import json
import math
from typing import Any

from decoder.dbr import EPICS_EPOCH_OFFSET, DBRType, DBRValue
from decoder.status import alarm_severity_name, alarm_status_name
from shark.catools.format import dbf_name

__all__ = ["dumps", "value_fields"]


def _plain(item: Any) -> Any:
    if hasattr(item, "item"):
        item = item.item()
    elif isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item).decode("latin-1")
    if isinstance(item, float) and not math.isfinite(item):
        return str(item)
    return item


def value_fields(value: DBRValue) -> dict[str, Any]:
    """The fields of a value: its type, count, value (a scalar, or a list for an
    array), and whatever metadata the type carries (time as Unix seconds, alarm names)."""
    values = [_plain(v) for v in value.values]
    fields: dict[str, Any] = {"type": DBRType(value.dbr_type).dbr_name, "count": len(values),
                              "value": values[0] if len(values) == 1 else values}
    for key, item in value.metadata().items():
        if key == "seconds":
            fields["timestamp"] = item + EPICS_EPOCH_OFFSET + value.nanoseconds * 1e-9
        elif key == "nanoseconds" or "pad" in key:  # (padding of the C structs)
            continue
        elif key == "status":
            fields["status"] = alarm_status_name(item)
        elif key in ("severity", "acks"):
            fields[key] = alarm_severity_name(item)
        else:
            fields[key] = _plain(item) if not isinstance(item, list) else item
    return fields


def channel_fields(native: int | None, count: int | None) -> dict[str, Any]:
    return {"native_type": None if native is None else dbf_name(native),
            "native_count": count}


def dumps(record: dict[str, Any]) -> str:
    """One line of JSON."""
    return json.dumps(record, separators=(",", ":"), default=_default)


def _default(item: Any) -> Any:
    plain = _plain(item)
    if plain is item:
        return repr(item)
    return plain
