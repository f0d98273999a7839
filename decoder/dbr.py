"""DBR types: the payloads that carry channel values and their metadata.

There are 39 of them (ids 0-38): the seven native value types (STRING, SHORT,
FLOAT, ENUM, CHAR, LONG, DOUBLE) in five families (plain value, STS with alarm
status, TIME with a timestamp, GR with display metadata, CTRL with control
limits too), plus PUT_ACKT, PUT_ACKS, STSACK_STRING and CLASS_NAME.

Each is a C struct of ``db_access.h`` followed by ``count - 1`` more values; all
fields are big-endian on the wire. A :class:`DBRLayout` describes one struct:
the metadata fields before the first value and where that value starts. Sizes
follow libca (``dbr_size``, ``dbr_value_size``, ``dbr_value_offset``), which
differs from the protocol specification in places (DBR_CTRL_FLOAT among them).

Arrays are decoded in one call: numpy views when numpy is installed, otherwise
the stdlib ``array`` module, never a Python loop per element.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from enum import IntEnum
from functools import lru_cache
from typing import Any

from .errors import DecodeError
from .status import alarm_severity_name, alarm_status_name

try:  # numpy is optional: it makes arrays zero-copy views of the payload.
    import numpy
except ImportError:  # pragma: no cover - exercised on machines without numpy
    numpy = None

#: Seconds from the Unix epoch to the EPICS epoch (1990-01-01 00:00:00 UTC).
EPICS_EPOCH_OFFSET = 631152000

MAX_STRING_SIZE = 40
MAX_UNITS_SIZE = 8
MAX_ENUM_STRING_SIZE = 26
MAX_ENUM_STATES = 16


class DBRType(IntEnum):
    STRING = 0
    SHORT = 1
    FLOAT = 2
    ENUM = 3
    CHAR = 4
    LONG = 5
    DOUBLE = 6
    STS_STRING = 7
    STS_SHORT = 8
    STS_FLOAT = 9
    STS_ENUM = 10
    STS_CHAR = 11
    STS_LONG = 12
    STS_DOUBLE = 13
    TIME_STRING = 14
    TIME_SHORT = 15
    TIME_FLOAT = 16
    TIME_ENUM = 17
    TIME_CHAR = 18
    TIME_LONG = 19
    TIME_DOUBLE = 20
    GR_STRING = 21
    GR_SHORT = 22
    GR_FLOAT = 23
    GR_ENUM = 24
    GR_CHAR = 25
    GR_LONG = 26
    GR_DOUBLE = 27
    CTRL_STRING = 28
    CTRL_SHORT = 29
    CTRL_FLOAT = 30
    CTRL_ENUM = 31
    CTRL_CHAR = 32
    CTRL_LONG = 33
    CTRL_DOUBLE = 34
    PUT_ACKT = 35
    PUT_ACKS = 36
    STSACK_STRING = 37
    CLASS_NAME = 38

    @property
    def dbr_name(self) -> str:
        """The C name, e.g. ``DBR_TIME_DOUBLE``."""
        return "DBR_" + self.name


@lru_cache(maxsize=1024)
def dbr_name(data_type: int) -> str:
    """``DBR_<NAME>`` for a known id, ``DBR_UNKNOWN_<id>`` otherwise (kept: the tables
    name a type per channel and subscription row, and an enum lookup costs a
    microsecond)."""
    try:
        return "DBR_" + DBRType(data_type).name
    except ValueError:
        return f"DBR_UNKNOWN_{data_type}"


class Family(IntEnum):
    PLAIN = 0
    STS = 1
    TIME = 2
    GR = 3
    CTRL = 4
    #: PUT_ACKT, PUT_ACKS, STSACK_STRING and CLASS_NAME.
    SPECIAL = 5


# Element formats of the seven native value types, in DBRType order.
_ELEMENT_CODES = ("40s", "h", "f", "H", "B", "i", "d")
_ARRAY_CODES = (None, "h", "f", "H", "B", "i", "d")
_NUMPY_DTYPES = (None, ">i2", ">f4", ">u2", "u1", ">i4", ">f8")
_LIMIT_NAMES = (
    "upper_disp_limit",
    "lower_disp_limit",
    "upper_alarm_limit",
    "upper_warning_limit",
    "lower_warning_limit",
    "lower_alarm_limit",
)
_CTRL_LIMIT_NAMES = _LIMIT_NAMES + ("upper_ctrl_limit", "lower_ctrl_limit")
_TIME = (("status", "h"), ("severity", "h"), ("seconds", "I"), ("nanoseconds", "I"))
_STS = (("status", "h"), ("severity", "h"))

#: Names of the metadata a DBRValue may carry, in no particular order.
METADATA_FIELDS = (
    "status",
    "severity",
    "seconds",
    "nanoseconds",
    "precision",
    "units",
    *_CTRL_LIMIT_NAMES,
    "enum_strings",
    "ackt",
    "acks",
    # The struct's alignment padding, as bytes, only where a peer left it non-zero
    # (rsrv does): kept so that encoding a decoded value gives the same bytes.
    "RISC_pad",
)
_METADATA_NAMES = frozenset(METADATA_FIELDS)


def _pad(size: int) -> tuple[str, str]:
    """The alignment padding of a struct, kept as bytes (see ``RISC_pad``)."""
    return ("RISC_pad", f"{size}s")


def _metadata_fields(family: Family, native: int) -> tuple[tuple[str, str], ...]:
    """The (name, struct code) pairs of the fields before the value."""
    limit = _ELEMENT_CODES[native]
    if family is Family.PLAIN:
        return ()
    if family is Family.STS:
        pads = {DBRType.CHAR: 1, DBRType.DOUBLE: 4}
        return _STS + ((_pad(pads[native]),) if native in pads else ())
    if family is Family.TIME:
        pads = {DBRType.SHORT: 2, DBRType.ENUM: 2, DBRType.CHAR: 3, DBRType.DOUBLE: 4}
        return _TIME + ((_pad(pads[native]),) if native in pads else ())
    # GR and CTRL
    if native == DBRType.STRING:  # dbr_gr_string and dbr_ctrl_string are dbr_sts_string
        return _STS
    if native == DBRType.ENUM:
        return _STS + (
            ("no_str", "h"),
            ("strs", f"{MAX_ENUM_STATES * MAX_ENUM_STRING_SIZE}s"),
        )
    names = _LIMIT_NAMES if family is Family.GR else _CTRL_LIMIT_NAMES
    head: tuple[tuple[str | None, str], ...] = _STS
    if native in (DBRType.FLOAT, DBRType.DOUBLE):
        head += (("precision", "h"), _pad(2))
    head += (("units", f"{MAX_UNITS_SIZE}s"),)
    head += tuple((name, limit) for name in names)
    if native == DBRType.CHAR:
        head += (_pad(1),)
    return head


class DBRLayout:
    """The wire layout of one DBR type."""

    __slots__ = (
        "dbr_type",
        "name",
        "family",
        "native_type",
        "meta_struct",
        "meta_names",
        "value_offset",
        "value_size",
        "element_struct",
        "scalar_struct",
        "has_text",
        "has_pad",
    )

    def __init__(
        self,
        dbr_type: DBRType,
        family: Family,
        native_type: int,
        fields: tuple[tuple[str | None, str], ...],
    ) -> None:
        self.dbr_type = dbr_type
        self.name = dbr_type.dbr_name
        self.family = family
        self.native_type = native_type
        self.meta_struct = struct.Struct(">" + "".join(code for _, code in fields))
        self.meta_names = tuple(name for name, _ in fields)
        self.has_pad = "RISC_pad" in self.meta_names
        self.value_offset = self.meta_struct.size
        self.element_struct = struct.Struct(">" + _ELEMENT_CODES[native_type])
        self.value_size = self.element_struct.size
        self.has_text = "units" in self.meta_names or "strs" in self.meta_names
        #: Metadata and one value in one unpack: the common case of a scalar.
        self.scalar_struct = struct.Struct(self.meta_struct.format + _ELEMENT_CODES[native_type])

    def size(self, count: int = 1) -> int:
        """Unpadded payload size for ``count`` elements, as libca's ``dbr_size_n``:
        a count of 0 leaves just the metadata (rsrv sends that for an empty array)."""
        return self.value_offset + self.value_size * count

    def __repr__(self) -> str:
        return f"<DBRLayout {self.name} offset={self.value_offset} size={self.size()}>"


def _build_layouts() -> tuple[DBRLayout, ...]:
    layouts = []
    for family in (Family.PLAIN, Family.STS, Family.TIME, Family.GR, Family.CTRL):
        for native in range(7):
            dbr_type = DBRType(family * 7 + native)
            layouts.append(DBRLayout(dbr_type, family, native, _metadata_fields(family, native)))
    layouts.append(DBRLayout(DBRType.PUT_ACKT, Family.SPECIAL, DBRType.ENUM, ()))
    layouts.append(DBRLayout(DBRType.PUT_ACKS, Family.SPECIAL, DBRType.ENUM, ()))
    layouts.append(
        DBRLayout(
            DBRType.STSACK_STRING,
            Family.SPECIAL,
            DBRType.STRING,
            (("status", "H"), ("severity", "H"), ("ackt", "H"), ("acks", "H")),
        )
    )
    layouts.append(DBRLayout(DBRType.CLASS_NAME, Family.SPECIAL, DBRType.STRING, ()))
    return tuple(layouts)


LAYOUTS: tuple[DBRLayout, ...] = _build_layouts()


def layout(data_type: int) -> DBRLayout:
    """The layout of DBR type ``data_type``; :class:`DecodeError` when there is none."""
    if 0 <= data_type < len(LAYOUTS):
        return LAYOUTS[data_type]
    raise DecodeError(f"unknown DBR type {data_type}")


def native_type(data_type: int) -> DBRType:
    """The native value type (DBR_STRING .. DBR_DOUBLE) that ``data_type`` carries."""
    return DBRType(layout(data_type).native_type)


def promote(native: int, family: Family) -> DBRType:
    """The DBR type of ``family`` for native type ``native`` (e.g. DOUBLE, TIME -> TIME_DOUBLE)."""
    return DBRType(family * 7 + native)


def _text(raw: bytes) -> str:
    """A C string field: the bytes up to the first NUL, as text.

    ``surrogateescape`` keeps bytes that are not UTF-8, so encoding gives them back.
    """
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _c_string(text: str | bytes, size: int) -> bytes:
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    if len(raw) >= size:
        raw = raw[: size - 1]
    return raw.ljust(size, b"\0")


class DBRValue:
    """A decoded DBR payload: the values and whatever metadata its type carries.

    Metadata fields are named as in ``db_access.h`` (``status``, ``severity``,
    ``precision``, ``units``, ``upper_disp_limit`` ...); ``seconds`` and
    ``nanoseconds`` are the two halves of the EPICS timestamp; ``enum_strings``
    is the list of state strings of GR/CTRL_ENUM. Fields the type does not
    carry are ``None``.
    """

    __slots__ = ("dbr_type", "values", "_metadata")

    def __init__(self, dbr_type: int, values: Any, **metadata: Any) -> None:
        unknown = metadata.keys() - _METADATA_NAMES
        if unknown:
            raise TypeError(f"unknown DBR metadata: {', '.join(sorted(unknown))}")
        self.dbr_type = layout(dbr_type).dbr_type
        self.values = values
        self._metadata = {k: v for k, v in metadata.items() if v is not None}

    @classmethod
    def _from_decoded(cls, dbr_type: DBRType, values: Any, metadata: dict) -> DBRValue:
        """The decoder's path: no checks, the dict is taken as it is."""
        self = cls.__new__(cls)
        self.dbr_type = dbr_type
        self.values = values
        self._metadata = metadata
        return self

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not slots: the metadata fields.
        if name in _METADATA_NAMES:
            return self._metadata.get(name)
        raise AttributeError(f"DBRValue has no field {name!r}")

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def value(self) -> Any:
        """The single value of a one-element payload, else all the values."""
        values = self.values
        if len(values) == 1:
            item = values[0]
            return item.item() if hasattr(item, "item") else item
        return values

    @property
    def timestamp(self) -> float | None:
        """The EPICS timestamp as Unix seconds, for TIME types."""
        if self.seconds is None:
            return None
        return self.seconds + EPICS_EPOCH_OFFSET + self.nanoseconds * 1e-9

    @property
    def status_name(self) -> str | None:
        return None if self.status is None else alarm_status_name(self.status)

    @property
    def severity_name(self) -> str | None:
        return None if self.severity is None else alarm_severity_name(self.severity)

    def metadata(self) -> dict[str, Any]:
        """The metadata fields this value carries, by name."""
        return dict(self._metadata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DBRValue):
            return NotImplemented
        mine, theirs = self.metadata(), other.metadata()
        return (
            self.dbr_type == other.dbr_type
            and _values_equal(self.values, other.values)
            and mine.keys() == theirs.keys()
            and all(_same(mine[name], theirs[name]) for name in mine)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        values = self.value
        if not isinstance(values, (str, int, float)):
            shown = list(values[:5])
            values = f"{shown}{'...' if len(self.values) > 5 else ''} ({len(self.values)})"
        meta = "".join(f", {k}={v!r}" for k, v in self.metadata().items())
        return f"DBRValue({self.dbr_type.dbr_name}, {values}{meta})"


def _values_equal(a: Sequence, b: Sequence) -> bool:
    if len(a) != len(b):
        return False
    if numpy is not None and (isinstance(a, numpy.ndarray) or isinstance(b, numpy.ndarray)):
        a, b = numpy.asarray(a), numpy.asarray(b)
        floats = a.dtype.kind == "f" or b.dtype.kind == "f"
        return bool(numpy.array_equal(a, b, equal_nan=floats))
    return all(_same(x, y) for x, y in zip(a, b, strict=True))


def _same(x: Any, y: Any) -> bool:
    """Equality where NaN equals NaN (limits and values may be NaN)."""
    return x == y or (x != x and y != y)


def decode(data_type: int, count: int, payload: bytes | memoryview) -> DBRValue:
    """Decode a DBR payload of ``count`` elements.

    A count of 0 (a dynamic array with no elements) gives no values. Raises
    :class:`DecodeError` when the payload is too short for the type and count.
    """
    lay = layout(data_type)
    needed = lay.size(count)
    if lay.native_type == DBRType.STRING and count:
        # The last string may be cut short: libca sends a lone DBR_STRING as
        # strlen + 1 bytes (padded to 8), not MAX_STRING_SIZE.
        needed -= MAX_STRING_SIZE - 1
    if len(payload) < needed:
        raise DecodeError(
            f"{lay.name} x {count} needs {needed} bytes, payload has {len(payload)}"
        )
    if count == 1 and lay.native_type != DBRType.STRING and not lay.has_text:
        *head, value = lay.scalar_struct.unpack_from(payload, 0)
        meta = dict(zip(lay.meta_names, head, strict=True))
        if lay.has_pad and not any(meta["RISC_pad"]):
            del meta["RISC_pad"]
        return DBRValue._from_decoded(lay.dbr_type, (value,), meta)
    meta = dict(zip(lay.meta_names, lay.meta_struct.unpack_from(payload, 0), strict=True))
    if lay.has_pad and not any(meta["RISC_pad"]):
        del meta["RISC_pad"]
    if "units" in meta:
        meta["units"] = _text(meta["units"])
    if "strs" in meta:
        strs = meta.pop("strs")
        no_str = max(0, min(meta.pop("no_str"), MAX_ENUM_STATES))
        meta["enum_strings"] = [
            _text(strs[i * MAX_ENUM_STRING_SIZE : (i + 1) * MAX_ENUM_STRING_SIZE])
            for i in range(no_str)
        ]
    return DBRValue._from_decoded(lay.dbr_type, _decode_values(lay, count, payload), meta)


def _decode_values(lay: DBRLayout, count: int, payload: bytes | memoryview) -> Any:
    start = lay.value_offset
    native = lay.native_type
    if native == DBRType.STRING:
        return [
            _text(bytes(payload[start + i * MAX_STRING_SIZE : start + (i + 1) * MAX_STRING_SIZE]))
            for i in range(count)
        ]
    end = start + lay.value_size * count
    if numpy is not None:
        return numpy.frombuffer(payload, dtype=_NUMPY_DTYPES[native], count=count, offset=start)
    values = array(_ARRAY_CODES[native])
    values.frombytes(bytes(payload[start:end]))
    if sys.byteorder == "little" and values.itemsize > 1:
        values.byteswap()
    return values


def encode(
    data_type: int, values: Any, count: int | None = None, **metadata: Any
) -> bytes:
    """Encode values and metadata as a DBR payload (unpadded).

    ``values`` is a sequence (a scalar or a str is taken as one value); ``count``
    defaults to its length; metadata a type does not carry is ignored, missing
    metadata is zero. A DBRValue may be given in place of ``values``.
    """
    if isinstance(values, DBRValue):
        metadata = {**values.metadata(), **metadata}
        values = values.values
    lay = layout(data_type)
    values = _as_sequence(values)
    if count is None:
        count = len(values)
    fields = []
    for name in lay.meta_names:
        if name == "units":
            fields.append(_c_string(metadata.get("units") or "", MAX_UNITS_SIZE))
        elif name == "no_str":
            fields.append(min(len(metadata.get("enum_strings") or ()), MAX_ENUM_STATES))
        elif name == "strs":
            strings = list(metadata.get("enum_strings") or ())[:MAX_ENUM_STATES]
            fields.append(b"".join(_c_string(s, MAX_ENUM_STRING_SIZE) for s in strings))
        elif name == "RISC_pad":
            fields.append(metadata.get(name) or b"")
        else:
            fields.append(metadata.get(name) or 0)
    head = lay.meta_struct.pack(*fields)
    return head + _encode_values(lay, values, count)


def _as_sequence(values: Any) -> Any:
    if isinstance(values, (str, bytes, int, float)) or (
        numpy is not None and isinstance(values, numpy.generic)
    ):
        return [values]
    return values


def _encode_values(lay: DBRLayout, values: Any, count: int) -> bytes:
    native = lay.native_type
    if native == DBRType.STRING:
        body = b"".join(_c_string(v, MAX_STRING_SIZE) for v in list(values)[:count])
    elif numpy is not None:
        body = numpy.asarray(values[:count] if count < len(values) else values).astype(
            _NUMPY_DTYPES[native], copy=False
        ).tobytes()
    else:
        items = array(_ARRAY_CODES[native], list(values)[:count])
        if sys.byteorder == "little" and items.itemsize > 1:
            items.byteswap()
        body = items.tobytes()
    return body.ljust(lay.value_size * count, b"\0")
