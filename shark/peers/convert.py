"""Converting channel values between DBR types, as an IOC does.

A CA server keeps each PV in one native type (one of the seven value types)
and answers a read in whatever DBR type the client asks for; a write arrives
in the client's type and has to become the native one. The rules follow EPICS
base's database conversions: numbers become numbers by C casts (truncation
toward zero, wrap-around into a narrower integer), numbers become text with the
PV's precision, text becomes a number by parsing, an enum becomes text through
its state strings and back. Both engines use this: the server to answer, the
client to turn a Python value into something it can put.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from decoder.dbr import DBRType, DBRValue, Family, layout
from shark.errors import SharkError

__all__ = ["LIMITS", "ConversionError", "convert", "format_float", "from_python", "to_dbr"]

_STSACK_STRING, _CLASS_NAME = DBRType.STSACK_STRING, DBRType.CLASS_NAME

STRING, SHORT, FLOAT, ENUM, CHAR, LONG, DOUBLE = range(7)
#: (bits, signed) of the integer value types.
_INTEGERS = {SHORT: (16, True), ENUM: (16, False), CHAR: (8, False), LONG: (32, True)}
_FLOAT_MAX = 3.4028234663852886e38
_FLOAT32 = struct.Struct("f")
#: The limit fields of GR and CTRL types, in ``db_access.h`` order.
LIMITS = (
    "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "upper_warning_limit",
    "lower_warning_limit", "lower_alarm_limit", "upper_ctrl_limit", "lower_ctrl_limit",
)


class ConversionError(SharkError, ValueError):
    """A value that has no meaning in the type asked for (text that is no number,
    a state name the enum does not have)."""


def format_float(value: float, precision: int, single: bool = False) -> str:
    """A floating-point value as text, digit for digit as an IOC shows it.

    Up to 8 digits of precision and magnitudes up to 1e7 are written the way
    EPICS base's fast converter does it: the fraction truncated to one digit
    more than shown, then rounded half away from zero (2.5 at precision 0 is
    "3", not Python's "2"), in single-precision arithmetic for a FLOAT. Beyond
    that, ``printf``'s fixed notation with at most 3 digits, or exponent
    notation right-aligned in precision + 7 characters (+ 6 for single
    precision) when the precision or the magnitude is larger still.
    """
    precision = max(0, precision)
    if math.isnan(value) or precision > 8 or abs(value) > 1e7:
        if precision > 8 or (abs(value) >= 1e8 if single else abs(value) > 1e16):
            precision = min(precision, 12 if single else 17)
            return f"{value:{precision + (6 if single else 7)}.{precision}e}"
        return f"{value:.{min(precision, 3)}f}"
    arithmetic = _single if single else float
    sign, value = ("-", -value) if value < 0 else ("", value)
    whole = int(value)
    scale = 10**precision
    fraction = int(arithmetic(arithmetic(arithmetic(value - whole) * scale) * 10))
    fraction = (fraction + 5) // 10
    if fraction >= scale:
        whole, fraction = whole + 1, fraction - scale
    return f"{sign}{whole}" + (f".{fraction:0{precision}d}" if precision else "")


def _single(value: float) -> float:
    """``value`` rounded to single precision, as a C float holds it."""
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


def _wrap(number: int, native: int) -> int:
    """Fit an integer into a C integer type the way a cast does: modulo its width."""
    bits, signed = _INTEGERS[native]
    number &= (1 << bits) - 1
    if signed and number >= 1 << (bits - 1):
        number -= 1 << bits
    return number


def _parse_number(text: str, integer: bool) -> float | int:
    text = text.strip()
    if not text:
        return 0
    if integer:
        try:
            return int(text, 10)
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        raise ConversionError(f"{text!r} is not a number") from None


def _to_int(value: Any, native: int) -> int:
    if isinstance(value, str):
        value = _parse_number(value, integer=True)
    if isinstance(value, float) or not hasattr(value, "__index__"):
        value = float(value)
        if math.isnan(value):
            return 0
        value = int(max(-2.0**63, min(2.0**63, value)))
    return _wrap(int(value), native)


def _to_float(value: Any, native: int) -> float:
    if isinstance(value, str):
        value = _parse_number(value, integer=False)
    value = float(value)
    if native == FLOAT and abs(value) > _FLOAT_MAX and not math.isinf(value):
        return math.copysign(math.inf, value)
    return value


def _to_enum(value: Any, enum_strings: Sequence[str]) -> int:
    if isinstance(value, str):
        if value in enum_strings:
            return list(enum_strings).index(value)
        try:
            index = int(value.strip(), 10)
        except ValueError:
            raise ConversionError(f"{value!r} is not one of {list(enum_strings)}") from None
        if index < 0 or (enum_strings and index >= len(enum_strings)):
            raise ConversionError(f"state {index} out of range")
        return index
    return _to_int(value, ENUM)


def _to_string(value: Any, source: int, enum_strings: Sequence[str], precision: int) -> str:
    if isinstance(value, str):
        return value
    if source == ENUM:
        index = int(value)
        return enum_strings[index] if 0 <= index < len(enum_strings) else str(index)
    if source in (FLOAT, DOUBLE):
        return format_float(float(value), precision, single=source == FLOAT)
    return str(int(value))


def convert(
    values: Sequence[Any],
    source: int,
    target: int,
    *,
    enum_strings: Sequence[str] = (),
    precision: int = 0,
) -> Sequence[Any]:
    """Values of native type ``source`` as values of native type ``target``.

    ``enum_strings`` and ``precision`` are those of the PV (the enum's states,
    the digits shown when a float becomes text). Values of the same type are
    returned as they are; others as a new list. Raises :class:`ConversionError`.
    """
    if source == target:
        return values
    if target == STRING:
        return [_to_string(v, source, enum_strings, precision) for v in values]
    if target == ENUM:
        return [_to_enum(v, enum_strings) for v in values]
    if target in _INTEGERS:
        return [_to_int(v, target) for v in values]
    return [_to_float(v, target) for v in values]


def from_python(value: Any, target: int, enum_strings: Sequence[str] = ()) -> list[Any]:
    """Any Python value (a number, a str, a sequence of them, a numpy array) as
    a list of values of native type ``target``."""
    if isinstance(value, (str, bytes, int, float)) or not hasattr(value, "__len__"):
        value = [value]
    items = [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in value]
    if target == STRING:
        return [v if isinstance(v, str) else str(v) for v in items]
    # The converters to numbers and enums take numbers and text alike: naming the
    # source STRING only keeps convert() from taking the values as already converted.
    return list(convert(items, STRING, target, enum_strings=enum_strings))


def to_dbr(
    data_type: int,
    values: Sequence[Any],
    native: int,
    metadata: Mapping[str, Any],
    count: int | None = None,
) -> DBRValue:
    """The DBR value of type ``data_type`` a read of a PV gets.

    ``values`` are the PV's current values in its ``native`` type and
    ``metadata`` its metadata under the DBR field names (status, severity,
    seconds, nanoseconds, units, precision, the limits, enum_strings). ``count``
    elements are returned, padded with zeros or cut; None means all current
    values. Each family gets only the fields its struct carries, converted to
    its value type as an IOC does (limits of a DOUBLE PV read as GR_LONG become
    integers; enum strings go only with an ENUM PV). DBR_STSACK_STRING and
    DBR_CLASS_NAME take ``ackt``, ``acks`` and ``record_type`` from ``metadata``; a
    read of DBR_PUT_ACKT or DBR_PUT_ACKS raises :class:`ConversionError`.
    """
    lay = layout(data_type)
    if lay.family is Family.SPECIAL:
        return _special(data_type, values, native, metadata, count)
    target = lay.native_type
    precision = int(metadata.get("precision") or 0)
    enum_strings = metadata.get("enum_strings") or ()
    if count is not None:
        values = values[:count]
    out = list(convert(values, native, target, enum_strings=enum_strings, precision=precision))
    if count is not None:
        out += ["" if target == STRING else 0] * (count - len(out))
    fields: dict[str, Any] = {}
    if lay.family is not Family.PLAIN:
        fields["status"] = metadata.get("status", 0)
        fields["severity"] = metadata.get("severity", 0)
    if lay.family is Family.TIME:
        fields["seconds"] = metadata.get("seconds", 0)
        fields["nanoseconds"] = metadata.get("nanoseconds", 0)
    if lay.family in (Family.GR, Family.CTRL) and target != STRING:
        if target == ENUM:
            fields["enum_strings"] = list(enum_strings) if native == ENUM else []
        else:
            fields["units"] = metadata.get("units") or ""
            limits = LIMITS if lay.family is Family.CTRL else LIMITS[:6]
            converted = convert([metadata.get(n) or 0 for n in limits], DOUBLE, target)
            fields.update(zip(limits, converted, strict=True))
            if target in (FLOAT, DOUBLE):
                fields["precision"] = precision
    return DBRValue(data_type, out, **fields)


def _special(data_type: int, values: Sequence[Any], native: int, metadata: Mapping[str, Any],
             count: int | None) -> DBRValue:
    """DBR_STSACK_STRING (the alarm, its acknowledgement and the values as text) and
    DBR_CLASS_NAME (the record type), as an IOC reads them. DBR_PUT_ACKT and
    DBR_PUT_ACKS are only ever written: reading them fails (an IOC answers ECA_GETFAIL)."""
    if data_type == _CLASS_NAME:
        padding = [""] * max(0, (count or 1) - 1)
        return DBRValue(data_type, [metadata.get("record_type") or "", *padding])
    if data_type != _STSACK_STRING:
        raise ConversionError(f"{DBRType(data_type).dbr_name} is written, never read")
    text = to_dbr(DBRType.STRING, values, native, metadata, count)
    return DBRValue(data_type, text.values, status=metadata.get("status", 0),
                    severity=metadata.get("severity", 0), ackt=int(metadata.get("ackt", 1)),
                    acks=metadata.get("acks", 0))
