"""The output formats of EPICS base's caget, caput, camonitor and cainfo, rule for rule.

* A value line is ``name OFS value(s)``; the name is padded to 30 only when the channel
  has at most one element and the separator (OFS) is a space.
* Arrays print ``count OFS v1 OFS v2 ...``; the count when there is more than one
  element or a count was asked for (``-#``). ``-S`` prints a char array as a C string.
* The wide line (``caget -a``, ``caput -l``, camonitor) puts the time between name and
  value, ``YYYY-MM-DD HH:MM:SS.uuuuuu`` in local time, and ends ``OFS STAT OFS SEVR``
  when either is set, else ``OFS OFS`` (two trailing spaces).
* Floats print with ``%g`` (``-e/-f/-g N`` change it; ``-lx/-lo/-lb`` round them to an
  integer in hex, octal or binary), integers in decimal (``-0x/-0o/-0b``), enums as
  their state when the server sends it, strings escaped as C does.
* The block format of ``-d TYPE``: the name, then ``Label:`` lines whose values start at
  column 23.

Everything here is pure: values in, text out; the commands decide what to ask for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from decoder.dbr import EPICS_EPOCH_OFFSET, DBRType, DBRValue, Family, layout
from decoder.status import alarm_severity_name, alarm_status_name

__all__ = [
    "Base",
    "Format",
    "TimeKeys",
    "Times",
    "block",
    "element_texts",
    "epics_time_text",
    "escape",
    "plain_line",
    "unix_time_text",
    "value_text",
    "wide_line",
]

#: Where values start in the block format (0-based column).
_LABEL_WIDTH = 18
_NAME_WIDTH = 30
#: The width of a timestamp, where relative times are right-aligned.
_TIME_WIDTH = 26
_STRING, _SHORT, _FLOAT, _ENUM, _CHAR, _LONG, _DOUBLE = range(7)
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"'}


class Base(Enum):
    """How an integer is written (``-0x``/``-0o``/``-0b``, ``-lx``/``-lo``/``-lb``)."""

    DEC = "d"
    HEX = "x"
    OCT = "o"
    BIN = "b"


@dataclass
class Format:
    """The formatting flags of a command line (caget's names in the comments)."""

    ofs: str = " "  # -F
    enum_as_number: bool = False  # -n
    float_as_string: bool = False  # -s
    count: int = 0  # -#
    char_as_string: bool = False  # -S
    float_format: str = "%g"  # -e/-f/-g
    float_base: Base | None = None  # -lx/-lo/-lb
    int_base: Base = Base.DEC  # -0x/-0o/-0b


class TimeMode(Enum):
    ABSOLUTE = "absolute"
    RELATIVE = "r"
    INCREMENTAL = "i"
    BY_CHANNEL = "I"


@dataclass
class TimeKeys:
    """camonitor's ``-t`` keys: which clocks (server, client) and how (absolute,
    relative to the first update, incremental overall or per channel)."""

    server: bool = True
    client: bool = False
    mode: TimeMode = TimeMode.ABSOLUTE

    @classmethod
    def parse(cls, keys: str) -> TimeKeys:
        """``-t`` as camonitor reads it: ``s``, ``c``, ``n``, ``r``, ``i``, ``I``; any
        other letter is an error (ValueError)."""
        unknown = set(keys) - set("scnriI")
        if unknown:
            raise ValueError(f"invalid timestamp key(s) {''.join(sorted(unknown))!r}")
        mode = TimeMode.ABSOLUTE
        for key in keys:
            if key in "riI":
                mode = TimeMode(key)
        return cls(server="s" in keys, client="c" in keys, mode=mode)


@dataclass
class Times:
    """What the relative and incremental times count from: the program's start and the
    first server stamp, and the last update's, overall and per channel."""

    keys: TimeKeys = field(default_factory=TimeKeys)
    start: float = field(default_factory=time.time)
    first_server: float | None = None
    last: tuple[float, float] | None = None
    by_channel: dict[str, tuple[float, float]] = field(default_factory=dict)

    def text(self, name: str, server: float | None, client: float) -> str:
        """The time field of an update of ``name`` (stamps in Unix seconds)."""
        keys = self.keys
        server = client if server is None else server
        if self.first_server is None:
            self.first_server = server
        # Each channel's first update shows the absolute time, as camonitor's does.
        first = name not in self.by_channel
        reference: tuple[float, float] | None
        if keys.mode is TimeMode.RELATIVE:
            reference = (self.first_server, self.start)
        elif keys.mode is TimeMode.INCREMENTAL:
            reference = self.last
        else:
            reference = self.by_channel.get(name)
        absolute = keys.mode is TimeMode.ABSOLUTE or first or reference is None
        self.last = self.by_channel[name] = (server, client)
        parts = []
        if keys.server:
            if absolute or reference is None:
                parts.append(unix_time_text(server))
            else:
                parts.append(f"{server - reference[0]:+12.6f}".rjust(_TIME_WIDTH))
        if keys.client:
            if absolute or reference is None:
                parts.append(f"({unix_time_text(client)})")
            else:
                parts.append(f"({client - reference[1]:+12.6f})".rjust(_TIME_WIDTH + 2))
        return "".join(parts)


def unix_time_text(seconds: float) -> str:
    """``YYYY-MM-DD HH:MM:SS.uuuuuu`` in local time, microseconds truncated."""
    whole = math.floor(seconds)
    micro = min(999999, round((seconds - whole) * 1e9) // 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)) + f".{micro:06d}"


def epics_time_text(value: DBRValue) -> str:
    """The timestamp of a TIME value as caget prints it."""
    whole = (value.seconds or 0) + EPICS_EPOCH_OFFSET
    micro = (value.nanoseconds or 0) // 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)) + f".{micro:06d}"


def escape(text: str) -> str:
    """``text`` with what is not printable escaped as C would write it
    (``epicsStrnEscapedFromRaw``)."""
    if text.isprintable() and text.isascii() and not any(c in _ESCAPES for c in text):
        return text
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _integer(number: int, base: Base) -> str:
    if base is Base.DEC:
        return str(number)
    number &= 0xFFFFFFFF  # as C prints a negative dbr_long_t unsigned
    if base is Base.HEX:
        return f"0x{number:X}"
    if base is Base.OCT:
        return f"0o{number:o}"
    return f"{number:b}"


def _round(number: float) -> int:
    """C's lround: halves away from zero."""
    if math.isnan(number) or math.isinf(number):
        return 0
    return int(math.floor(abs(number) + 0.5)) * (1 if number >= 0 else -1)


def _base_type(dbr_type: int) -> int:
    return layout(dbr_type).native_type


def element_texts(value: DBRValue, fmt: Format) -> list[str]:
    """Each element of ``value`` as caget prints it (``val2str``)."""
    base = _base_type(value.dbr_type)
    values: Sequence[Any] = value.values
    if base == _STRING:
        return [escape(v) for v in values]
    if base in (_FLOAT, _DOUBLE):
        if fmt.float_base is not None:
            return [_integer(_round(float(v)), fmt.float_base) for v in values]
        text = fmt.float_format
        return [text % float(v) for v in values]
    if base == _ENUM:
        family = layout(value.dbr_type).family
        states = value.enum_strings or []
        if family in (Family.GR, Family.CTRL) and not fmt.enum_as_number:
            return [_state(int(v), states) for v in values]
        return [str(int(v)) for v in values]
    if base == _CHAR:
        return [str(int(v)) for v in values]
    return [_integer(int(v), fmt.int_base) for v in values]


def _state(index: int, states: Sequence[str]) -> str:
    if index >= 16:
        return f"Illegal Value ({index})"
    if index >= len(states):
        return f"Enum Index Overflow ({index})"
    return states[index]


def _char_string(value: DBRValue) -> str:
    raw = bytes(int(v) & 0xFF for v in value.values)
    return escape(raw.split(b"\0", 1)[0].decode("latin-1"))


def value_text(value: DBRValue, fmt: Format, count_shown: bool | None = None) -> str:
    """The value part of a line: the count and the elements, or a char array as text."""
    count = value.count
    if count_shown is None:
        count_shown = bool(fmt.count) or count > 1
    if fmt.char_as_string and _base_type(value.dbr_type) == _CHAR and count_shown:
        return _char_string(value)
    texts = element_texts(value, fmt)
    if count_shown:
        texts.insert(0, str(count))
    return fmt.ofs.join(texts)


def _name(name: str, elements: int, fmt: Format) -> str:
    if elements <= 1 and fmt.ofs == " ":
        return f"{name:<{_NAME_WIDTH}}"
    return name


def plain_line(name: str, value: DBRValue, fmt: Format, terse: bool = False) -> str:
    """caget's line: ``name OFS value`` (``terse``: the value alone)."""
    text = value_text(value, fmt)
    if terse:
        return text
    return f"{_name(name, value.count, fmt)}{fmt.ofs}{text}"


def alarm_text(value: DBRValue, ofs: str) -> str:
    """``OFS STAT OFS SEVR`` when either is set, else ``OFS OFS``."""
    status, severity = value.status or 0, value.severity or 0
    if status or severity:
        return f"{ofs}{alarm_status_name(status)}{ofs}{alarm_severity_name(severity)}"
    return ofs + ofs


def wide_line(name: str, value: DBRValue, fmt: Format, time_text: str | None = None) -> str:
    """The wide line: ``name OFS time OFS value(s) OFS STAT OFS SEVR`` (``time_text``:
    the time field, by default the value's own stamp)."""
    if time_text is None:
        time_text = epics_time_text(value)
    return (f"{_name(name, value.count, fmt)}{fmt.ofs}{time_text}{fmt.ofs}"
            f"{value_text(value, fmt)}{alarm_text(value, fmt.ofs)}")


def status_line(name: str, elements: int, fmt: Format, text: str) -> str:
    """A wide line whose value is a state (``*** disconnected``, ``*** Not connected``)."""
    return f"{_name(name, elements, fmt)}{fmt.ofs}{text}"


def _label(label: str, text: str) -> str:
    return f"    {label + ':':<{_LABEL_WIDTH}}{text}"


def block(name: str, native: int, value: DBRValue, fmt: Format) -> str:
    """The block format of ``caget -d TYPE``: every field of ``value``, one a line."""
    data_type = DBRType(value.dbr_type)
    lines = [name, _label("Native data type", dbf_name(native)),
             _label("Request type", data_type.dbr_name)]
    if data_type == DBRType.CLASS_NAME:
        lines.append(_label("Class Name", escape(str(value.values[0]) if value.count else "")))
        return "\n".join(lines)
    lines.append(_label("Element count", str(value.count)))
    lines.append(_label("Value", value_text(value, fmt, count_shown=False)
                        if fmt.char_as_string and (fmt.count or value.count > 1)
                        else fmt.ofs.join(element_texts(value, fmt))))
    if data_type > DBRType.DOUBLE:
        lines.extend(_extra(value, data_type))
    return "\n".join(lines)


def _extra(value: DBRValue, data_type: DBRType) -> list[str]:
    """The lines past the value of the types that carry more (``dbr2str``)."""
    lay = layout(data_type)
    lines = []
    if lay.family is Family.TIME:
        lines.append(_label("Timestamp", epics_time_text(value)))
    lines.append(_label("Status", alarm_status_name(value.status or 0)))
    lines.append(_label("Severity", alarm_severity_name(value.severity or 0)))
    if data_type == DBRType.STSACK_STRING:
        lines.append(_label("Ack transient?", "YES" if value.ackt else "NO"))
        lines.append(_label("Ack severity", alarm_severity_name(value.acks or 0)))
        return lines
    if lay.family not in (Family.GR, Family.CTRL) or lay.native_type == _STRING:
        return lines
    base = lay.native_type
    if base == _ENUM:
        states = value.enum_strings or []
        lines.append(_label("Enums", f"({len(states):2d})"))
        lines.extend(f"{'':<{_LABEL_WIDTH + 4}}[{i:2d}] {state}"
                     for i, state in enumerate(states))
        return lines
    lines.append(_label("Units", escape(value.units or "")))
    floating = base in (_FLOAT, _DOUBLE)
    if floating:
        lines.append(_label("Precision", str(value.precision or 0)))
    limits = [("Lo disp limit", "lower_disp_limit"), ("Hi disp limit", "upper_disp_limit"),
              ("Lo alarm limit", "lower_alarm_limit"), ("Lo warn limit", "lower_warning_limit"),
              ("Hi warn limit", "upper_warning_limit"), ("Hi alarm limit", "upper_alarm_limit")]
    if lay.family is Family.CTRL:
        limits += [("Lo ctrl limit", "lower_ctrl_limit"), ("Hi ctrl limit", "upper_ctrl_limit")]
    for label, key in limits:
        number = getattr(value, key) or 0
        lines.append(_label(label, f"{float(number):g}" if floating else f"{int(number):8d}"))
    return lines


#: The DBF names of the native types.
_DBF_NAMES = ("DBF_STRING", "DBF_SHORT", "DBF_FLOAT", "DBF_ENUM", "DBF_CHAR", "DBF_LONG",
              "DBF_DOUBLE")


def dbf_name(native: int) -> str:
    """``DBF_DOUBLE`` and the like (``DBF_NO_ACCESS`` for what is none)."""
    return _DBF_NAMES[native] if 0 <= native < len(_DBF_NAMES) else "DBF_NO_ACCESS"


def parse_dbr_type(text: str) -> DBRType | None:
    """A ``-d`` argument: a number, or a name with or without ``DBR_`` (``DBR_INT``
    for SHORT too); None when it names no DBR type."""
    text = text.strip().upper()
    if text.isdigit():
        try:
            return DBRType(int(text))
        except ValueError:
            return None
    name = text.removeprefix("DBR_").replace("_INT", "_SHORT")
    if name == "INT":
        name = "SHORT"
    try:
        return DBRType[name]
    except KeyError:
        return None
