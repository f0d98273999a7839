"""Scalar values, alarm state and EPICS timestamps of many DBR payloads at once.

The tables need, per value message, the value when there is one element, the alarm
status and severity, and the EPICS timestamp: fields at fixed offsets of the DBR struct
(:mod:`decoder.dbr` gives the layouts). Decoding each payload into a
:class:`decoder.dbr.DBRValue` costs microseconds. Here payloads of the same layout (DBR
type, one element or more, bytes needed) are joined and read as one numpy structured
array whose fields are those of the struct, so that each field of all of them is one
array. Payloads this cannot take (unknown DBR types, payloads too short for their type
and count) go through :func:`decoder.dbr.decode`, so that values and error messages are
exactly those of ``shark read``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from decoder import DecodeError, dbr
from decoder.dbr import EPICS_EPOCH_OFFSET, LAYOUTS, MAX_STRING_SIZE, DBRType
from shark.tables.grouping import group

__all__ = ["InBuffer", "Payloads", "Values", "extract_values"]

#: numpy element types of the native types (DBR_STRING's is text, sized per payload).
_NUMPY = (None, ">i2", ">f4", ">u2", "u1", ">i4", ">f8")
#: Facts about each DBR type, indexed by type.
_OFFSET = np.array([lay.value_offset for lay in LAYOUTS])
_ELEMENT = np.array([lay.value_size for lay in LAYOUTS])
_NATIVE = np.array([lay.native_type for lay in LAYOUTS])
_IS_STRING = _NATIVE == DBRType.STRING
#: A lone string may be cut short: libca sends strlen + 1 bytes, not 40.
_STRING_SLACK = np.where(_IS_STRING, MAX_STRING_SIZE - 1, 0)
#: Bytes read of a payload of one element: up to the end of the value (a string may
#: end sooner).
_SCALAR_END = _OFFSET + np.where(_IS_STRING, MAX_STRING_SIZE, _ELEMENT)
#: A layout in one int: (DBR type, one element?, bytes read) in mixed radix.
_SIZE_BITS = 20


class Values:
    """Fields of the DBR payloads of n rows (a chunk's), one array entry per row.

    ``value`` is NaN where ``has_value`` is False (no single numeric element, or no
    payload); strings are in ``text`` by row; alarm ``status`` and ``severity`` are
    meaningful where ``has_alarm``; ``epics_ns`` is the EPICS timestamp in Unix
    nanoseconds where ``has_time``; ``errors`` holds why a payload could not be decoded,
    by row. :func:`extract_values` fills them, payloads at a time.
    """

    def __init__(self, n: int) -> None:
        self.value = np.full(n, np.nan)
        self.has_value = np.zeros(n, dtype=bool)
        self.text: dict[int, str] = {}
        self.status = np.zeros(n, dtype=np.int32)
        self.severity = np.zeros(n, dtype=np.int32)
        self.has_alarm = np.zeros(n, dtype=bool)
        self.epics_ns = np.zeros(n, dtype=np.int64)
        self.has_time = np.zeros(n, dtype=bool)
        self.errors: dict[int, str] = {}
        #: The display precision a GR/CTRL_FLOAT or DOUBLE payload carries, where
        #: ``has_precision``.
        self.precision = np.zeros(n, dtype=np.int16)
        self.has_precision = np.zeros(n, dtype=bool)
        #: The elements of arrays (count other than 1), by row: of numbers, of strings.
        self.elements: dict[int, np.ndarray] = {}
        self.strings: dict[int, list[str]] = {}


class Payloads:
    """Payloads given as a list of bytes."""

    def __init__(self, payloads: Sequence[bytes | memoryview]) -> None:
        self.payloads = payloads
        self.lengths = np.fromiter(map(len, payloads), np.int64, len(payloads))

    def __getitem__(self, i: int) -> bytes | memoryview:
        return self.payloads[i]

    def structs(self, rows: np.ndarray | slice, dtype: np.dtype) -> np.ndarray:
        """The first ``dtype.itemsize`` bytes of payloads ``rows``, as ``dtype``."""
        size = dtype.itemsize
        heads = [self.payloads[i] for i in np.arange(len(self.lengths))[rows].tolist()]
        if (self.lengths[rows] > size).any():  # longer than what is read: arrays
            heads = [head[:size] for head in heads]
        return np.frombuffer(b"".join(heads), dtype)


class InBuffer(Payloads):
    """Payloads given as where they are in one buffer (:class:`shark.extract.bulk.Run`): read
    in place, without a slice each."""

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray) -> None:
        self.buffer = buffer
        self.starts = starts
        self.lengths = lengths

    def __getitem__(self, i: int) -> bytes:
        start = int(self.starts[i])
        return self.buffer[start : start + int(self.lengths[i])]

    def structs(self, rows: np.ndarray | slice, dtype: np.dtype) -> np.ndarray:
        starts = self.starts[rows]
        steps = np.diff(starts)
        if len(starts) > 1 and (steps == steps[0]).all() and steps[0] >= dtype.itemsize:
            # Evenly spaced (a subscription's updates): a strided view, nothing copied.
            return np.ndarray((len(starts),), dtype, self.buffer, int(starts[0]),
                              (int(steps[0]),))
        data = np.frombuffer(self.buffer, np.uint8)
        return sliding_window_view(data, dtype.itemsize)[starts].view(dtype).ravel()


def extract_values(out: Values, at: np.ndarray, data_types: np.ndarray, counts: np.ndarray,
                   payloads: Sequence[bytes | memoryview] | Payloads) -> None:
    """Fill ``out`` with the fields of payloads of the given DBR types and element
    counts: those of payload ``i`` at row ``at[i]``."""
    if not isinstance(payloads, Payloads):
        payloads = Payloads(payloads)
    if not len(at):
        return
    lengths = payloads.lengths
    key = _one_layout(data_types, counts, lengths)
    if key is not None:  # (a subscription's updates): no grouping
        layouts, keys = None, [key]
    else:  # (a run's fields are narrow and unsigned: widened, for the sums below)
        data_types, counts = data_types.astype(np.int64), counts.astype(np.int64)
        known = (data_types >= 0) & (data_types < len(LAYOUTS))
        types = np.where(known, data_types, 0)
        fits = known & (lengths >= _needed(types, counts))
        _decode_each(out, at, np.flatnonzero(~fits), data_types, counts, payloads)
        size = np.minimum(lengths, _read_size(types, counts))
        layouts, distinct, _ = group(np.where(fits, _layout(types, counts == 1, size), -1))
        keys = distinct.tolist()
    for index, key in enumerate(keys):
        if key >= 0 and key & ((1 << _SIZE_BITS) - 1):  # fits, has something to read
            chosen = slice(None) if layouts is None else np.flatnonzero(layouts == index)
            _read(out, at[chosen], chosen, key >> (_SIZE_BITS + 1), key >> _SIZE_BITS & 1,
                  key & ((1 << _SIZE_BITS) - 1), payloads)
        if key >= 0 and not key >> _SIZE_BITS & 1:  # arrays: their elements
            chosen = np.arange(len(at)) if layouts is None else np.flatnonzero(layouts == index)
            _elements(out, at[chosen], chosen, key >> (_SIZE_BITS + 1), counts, payloads)


def _elements(out: Values, where: np.ndarray, rows: np.ndarray, data_type: int,
              counts: np.ndarray, payloads: Payloads) -> None:
    """The elements of array payloads ``rows`` (one DBR type), at rows ``where``:
    numbers as float64 (as the tables give them), strings as the decoder reads them."""
    native = int(_NATIVE[data_type])
    if _NUMPY[native] is None:  # strings: the decoder's (few, and each its own length)
        for row, i in zip(where.tolist(), rows.tolist(), strict=True):
            try:
                out.strings[row] = list(dbr.decode(data_type, int(counts[i]),
                                                   payloads[i]).values)
            except DecodeError as exc:
                out.errors[row] = str(exc)
        return
    element = np.dtype(_NUMPY[native])
    offset = int(_OFFSET[data_type])
    for row, i in zip(where.tolist(), rows.tolist(), strict=True):
        payload = payloads[i]
        out.elements[row] = np.frombuffer(payload, element, int(counts[i]), offset).astype(
            np.float64)


def _layout(data_type: Any, scalar: Any, size: Any) -> Any:
    """A layout (DBR type, one element?, bytes read) in one int (or an array of them)."""
    return ((data_type * 2 + scalar) << _SIZE_BITS) + size


def _needed(data_type: Any, count: Any) -> Any:
    """Bytes a payload of ``count`` elements of ``data_type`` needs (arrays, or one)."""
    return _OFFSET[data_type] + _ELEMENT[data_type] * count - np.where(
        count > 0, _STRING_SLACK[data_type], 0)


def _read_size(data_type: Any, count: Any) -> Any:
    """Bytes read of such a payload: up to the end of a single value (a string may end
    sooner); of several elements, only the metadata before them."""
    return np.where(count == 1, _SCALAR_END[data_type], _OFFSET[data_type])


def _one_layout(data_types: np.ndarray, counts: np.ndarray, lengths: np.ndarray
                ) -> int | None:
    """The layout of every payload when they all have the same and fit it (a
    subscription's updates, most often): a few comparisons rather than the arrays of
    the general way. None otherwise."""
    data_type, count = int(data_types[0]), int(counts[0])
    if (not 0 <= data_type < len(LAYOUTS) or (data_types != data_type).any()
            or (counts != count).any()):
        return None
    size = int(_read_size(data_type, count))
    if int(lengths.min()) < max(int(_needed(data_type, count)), size):
        return None  # too short, or a string cut short: the general way
    return _layout(data_type, int(count == 1), size)


def _read(out: Values, where: np.ndarray, rows: np.ndarray | slice, data_type: int,
          scalar: int, size: int, payloads: Payloads) -> None:
    """Fill ``out`` at rows ``where`` with payloads ``rows`` (indexes, or a slice), of
    one layout, of which ``size`` bytes are read."""
    structs = payloads.structs(rows, _struct(data_type, scalar, size))
    fields = structs.dtype.fields
    if "alarm" in fields:  # status and severity, read as one number (one pass over them)
        alarm = structs["alarm"].astype(np.int32)
        if fields["alarm"][0].kind == "u":  # (DBR_STSACK_STRING's: unsigned)
            out.status[where] = (alarm >> 16) & 0xFFFF
            out.severity[where] = alarm & 0xFFFF
        else:
            out.status[where] = alarm >> 16
            alarm <<= 16  # (in place: no array more)
            alarm >>= 16
            out.severity[where] = alarm
        out.has_alarm[where] = True
    if "precision" in fields:
        out.precision[where] = structs["precision"]
        out.has_precision[where] = True
    if "seconds" in fields:
        ns = structs["seconds"].astype(np.int64)  # (then in place: no array more)
        ns += EPICS_EPOCH_OFFSET
        ns *= 1_000_000_000
        ns += structs["nanoseconds"]
        out.epics_ns[where] = ns
        out.has_time[where] = True
    if "value" not in fields:
        return
    if fields["value"][0].kind != "S":
        out.value[where] = structs["value"]
        out.has_value[where] = True
        return
    for row, text in zip(where.tolist(), structs["value"].tolist(), strict=True):
        out.text[row] = text.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@cache
def _struct(data_type: int, scalar: int, size: int) -> np.dtype:
    """The structured dtype of the first ``size`` bytes of a payload of ``data_type``
    (``scalar``: of one element): the fields the tables read, at their offsets."""
    lay = LAYOUTS[data_type]
    fields = []
    if "status" in lay.meta_names:
        # (status at 0, severity at 2: both in one big-endian 32-bit number)
        code = ">u4" if data_type == DBRType.STSACK_STRING else ">i4"
        fields.append(("alarm", code, 0))
    if "seconds" in lay.meta_names:
        fields += [("seconds", ">u4", 4), ("nanoseconds", ">u4", 8)]
    if "precision" in lay.meta_names:
        fields.append(("precision", ">i2", 4))
    if scalar:
        element = _NUMPY[lay.native_type] or f"S{size - lay.value_offset}"
        fields.append(("value", element, lay.value_offset))
    names, formats, offsets = zip(*fields, strict=True) if fields else ((), (), ())
    return np.dtype({"names": list(names), "formats": list(formats),
                     "offsets": list(offsets), "itemsize": size})


def _decode_each(out: Values, at: np.ndarray, chosen: np.ndarray, data_types: np.ndarray,
                 counts: np.ndarray, payloads: Payloads) -> None:
    """The slow path: the decoder's own decoding, one payload at a time."""
    for i in chosen.tolist():
        row = int(at[i])
        try:
            data = dbr.decode(int(data_types[i]), int(counts[i]), payloads[i])
        except DecodeError as exc:
            out.errors[row] = str(exc)
            continue
        if len(data.values) == 1:
            value = data.value
            if isinstance(value, str):
                out.text[row] = value
            else:
                out.value[row] = value
                out.has_value[row] = True
        precision = getattr(data, "precision", None)
        if precision is not None:
            out.precision[row] = precision
            out.has_precision[row] = True
        if data.severity is not None:
            out.status[row] = data.status
            out.severity[row] = data.severity
            out.has_alarm[row] = True
        if data.seconds is not None:
            out.epics_ns[row] = ((data.seconds + EPICS_EPOCH_OFFSET) * 1_000_000_000
                                 + data.nanoseconds)
            out.has_time[row] = True
