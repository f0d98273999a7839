"""Batches of the ``messages`` table as lines of text, column by column.

``shark read`` and ``shark live`` print from here. The words of categorical columns
(endpoints, commands, PV names ...) are formatted once per distinct string; the lines
are then written byte by byte, a batch at a time, by the loops of
:mod:`shark.output.kernels` (names copied from their dictionaries, numbers written digit
by digit, the time and latency as fixed-point decimals of integers): no Python object
is made per message.

The line (the fields a person wants first, then what the message says)::

    frame time src -> dst transport[#circuit] SENDER COMMAND subject DBR_TYPE[count]
        status=ECA_... fields data=value SEVERITY/STATUS [latency ms]

where a word is left out when the message has nothing for it. ``subject`` is the PV, or
``<sid=N>`` when the capture does not tell the channel's name; ``value`` is the
``display`` column (the PREC and enum strings the capture carried). Circuit ends show
``(why)``; gaps and undecodable stretches ``N bytes: why``.
"""

from __future__ import annotations

import json
import math
import time as _time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decoder import Command
from decoder.describe import STATUS_AMONG_FIELDS
from decoder.text import shown_text
from shark.output.jsonl import json_ready
from shark.output.kernels import (
    FIXED_BYTES,
    INTEGER,
    QUOTED,
    SECONDS,
    TEXT,
    Numbers,
    Strings,
    records,
    text_lines,
)
from shark.output.text import TIME_BASES, Clock, seconds_ns

__all__ = ["JSON_KEYS", "TIME_BASES", "JsonLines", "TextLines"]


class TextLines:
    """Makes the text lines of batches, in order; ``start`` is the capture time (Unix
    seconds) relative times count from (the first record of the capture, shown or not,
    so that filtered and unfiltered lines are alike); ``delta`` counts from the line
    shown before, across batches."""

    def __init__(self, base: str = "relative", start: float | None = None) -> None:
        #: The time base, and where it stands (shared with the lines of one record at a
        #: time, which write the times the column cannot hold).
        self.clock = Clock(base)
        self.clock.start = start
        self._names = _Names()

    def __call__(self, batch: pa.RecordBatch) -> memoryview:
        """The lines of a batch's rows, each ending with a newline, as bytes."""
        rows = batch.num_rows
        if rows == 0:
            return memoryview(b"")
        column = batch.column
        time_ns, time_text = self._time(column("time"), column("raw_time"))
        command = column("command")
        kinds = np.array([_COMMAND_KIND.get(name, 0) for name in
                          command.dictionary.to_pylist()] or [0], dtype=np.int8)
        status = column("status")
        if _STATUS_AMONG_FIELDS.intersection(command.dictionary.to_pylist()):
            # (their status is in the fields, where their message has it)
            inline = _in_dictionary(command, _STATUS_AMONG_FIELDS)
            status = pc.if_else(pc.fill_null(inline, False),
                                pa.nulls(len(status), status.type), status)
        severity = column("severity")
        quiet = np.array([name == "NO_ALARM" for name in severity.dictionary.to_pylist()]
                         or [True], dtype=np.bool_)
        circuit, circuit_valid = _numbers(column("circuit"))
        sid, sid_valid = _numbers(column("sid"))
        subscription, subscription_valid = _numbers(column("subscription"))
        latency = column("latency")
        latency_us = np.rint(latency.fill_null(0.0).to_numpy() * 1e6).astype(np.int64)
        names = self._names
        words = {
            "src": names("src", column("src"), lambda s: f"{s:>21}"),
            "dst": names("dst", column("dst"), lambda s: f"{s:<21}"),
            "transport": names("transport", column("transport"), str),
            "sender": names("sender", column("sender"), lambda s: f"{s.upper():<8}"),
            "command": names("command", command, str),
            "pv": names("pv", column("pv"), shown_text),
            "data_type": names("data_type", column("data_type"), str),
            "status": names("status", status, str),
            "severity": names("severity", severity, str),
            "alarm_status": names("alarm_status", column("alarm_status"), str),
            "fields": _texts(column("fields")),
            "reason": _texts(column("reason")),
            "display": _texts(column("display")),
        }
        bound = rows * (FIXED_BYTES + sum(_longest(words[name]) for name in (
            "src", "dst", "transport", "sender", "command", "pv", "data_type", "status",
            "severity", "alarm_status"))) + sum(len(words[name].data) for name in (
                "fields", "reason", "display")) + len(time_text.data)
        out, size = text_lines(
            rows, bound, column("frame").to_numpy(), time_ns, time_text,
            words["src"], words["dst"], words["transport"], circuit, circuit_valid,
            words["sender"], words["command"], kinds, words["pv"], sid, sid_valid,
            words["data_type"], _numbers(column("data_count"))[0], words["status"],
            words["fields"], subscription, subscription_valid,
            column("size").to_numpy(), words["reason"], words["display"],
            words["severity"], quiet, words["alarm_status"],
            latency_us, _valid(latency))
        return memoryview(out)[:size]

    def _time(self, times: pa.Array, raw: pa.Array) -> tuple[np.ndarray, Strings]:
        """The time word of each row: nanoseconds since the start (or the line
        before; the loop rounds those it writes to microseconds), or a text (absolute
        times; a damaged capture's)."""
        rows = len(times)
        clock = self.clock
        none = np.zeros(rows, dtype=np.int64)
        if times.null_count:  # times a time column cannot hold: one by one
            seconds = pc.coalesce(pc.divide(times.cast(pa.int64()).cast(pa.float64()), 1e9),
                                  raw).to_pylist()
            return none, _texts(pa.array([clock(t or 0.0) for t in seconds], pa.string()))
        ns = times.cast(pa.int64()).to_numpy()
        if clock.start is None:
            clock.start = int(ns[0]) / 1e9
        if clock.base == "absolute":
            return none, _texts(_local(ns))
        if clock.base == "delta":
            if clock.previous is not None and clock.previous_ns is None:  # after a damaged one
                return none, _texts(pa.array([clock(t) for t in (ns / 1e9).tolist()]))
            previous = np.empty_like(ns)
            previous[1:] = ns[:-1]
            previous[0] = ns[0] if clock.previous_ns is None else clock.previous_ns
            clock.previous_ns = int(ns[-1])
            clock.previous = clock.previous_ns / 1e9
            return ns - previous, _no_texts(rows)
        start_ns = seconds_ns(clock.start)
        if start_ns is None:
            return none, _texts(pa.array([clock(t) for t in (ns / 1e9).tolist()]))
        return ns - start_ns, _no_texts(rows)


#: Commands whose status is not the first field (``ERROR``: ``cid=1 status=...``).
_STATUS_AMONG_FIELDS = frozenset(Command(cls.command).name for cls in STATUS_AMONG_FIELDS)
#: What a row that is no message is, by command: a circuit end, or a stretch of bytes
#: lost or not understood (the kernel's ``command_kind``).
_COMMAND_KIND = {"OPEN": 1, "CLOSE": 1, "GAP": 2, "UNDECODED": 2}


def _micro(ns: np.ndarray) -> np.ndarray:
    """Nanoseconds to microseconds, rounded half away from zero (as the compiled loops
    round each time they write: :func:`shark.output.kernels._micro`)."""
    return np.where(ns < 0, -((-ns + 500) // 1000), (ns + 500) // 1000)


class _Names:
    """Dictionary columns as :class:`Strings`, their words shown as asked; the words
    of each column kept from one batch to the next, for when its dictionary is the
    same (as good as always for the thousands of PV names of a busy capture: not
    formatted again for every batch)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[pa.Array, np.ndarray, np.ndarray]] = {}

    def __call__(self, name: str, column: pa.Array, shown: Callable[[str], str]) -> Strings:
        """Column ``name`` (the key its words are kept by), words through ``shown``."""
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        dictionary = column.dictionary
        kept = self._kept.get(name)
        if kept is not None and kept[0].equals(dictionary):
            data, offsets = kept[1], kept[2]
        else:
            encoded = [shown(word).encode() for word in dictionary.to_pylist()]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum([len(word) for word in encoded])
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            self._kept[name] = dictionary, data, offsets
        return Strings(data, offsets, _index(column.indices))


def _texts(column: pa.Array) -> Strings:
    """A string column as :class:`Strings`: row r is value r, or null."""
    column = column.cast(pa.large_string())
    rows = len(column)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64, count=rows + 1,
                            offset=column.offset * 8)
    data = column.buffers()[2]
    data = np.zeros(0, dtype=np.uint8) if data is None else np.frombuffer(data, np.uint8)
    index = np.arange(rows, dtype=np.int32)
    if column.null_count:
        index = np.where(_valid(column), index, np.int32(-1))
    index.flags.writeable = False  # (as :func:`_index` gives them)
    return Strings(data, offsets, index)


def _no_texts(rows: int) -> Strings:
    index = np.full(rows, -1, dtype=np.int32)
    index.flags.writeable = False  # (as :func:`_index` gives them)
    return Strings(np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64), index)


def _index(indices: pa.Array) -> np.ndarray:
    """A dictionary column's indices for the loops: int32, -1 for null, read-only
    (a view of Arrow's buffer where there are no nulls, the usual case: widening
    them to int64 was a third of the work of a batch outside the loops; the loops
    are compiled for one type of array, read-only as the views are)."""
    if indices.type != pa.int32():
        indices = indices.cast(pa.int32())
    data = indices.buffers()[1]
    if data is None:  # (a column of nulls alone may have no values)
        index = np.full(len(indices), -1, dtype=np.int32)
    else:
        index = np.frombuffer(data, dtype=np.int32, count=len(indices),
                              offset=indices.offset * 4)
        if indices.null_count:
            index = np.where(_valid(indices), index, np.int32(-1))
    index.flags.writeable = False
    return index


def _numbers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A number column's values (0 where null) and which are there."""
    valid = _valid(column)
    values = _integers(column)
    if column.null_count:
        values[~valid] = 0
    return values, valid


def _valid(column: pa.Array) -> np.ndarray:
    """Which rows of a column are not null: its validity bitmap, unpacked by numpy
    (the compute functions cost more, called for a few columns of every batch)."""
    rows = len(column)
    bitmap = column.buffers()[0]
    if bitmap is None or not column.null_count:
        return np.full(rows, column.null_count == 0)
    start = column.offset
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=start + rows,
                         bitorder="little")
    return bits[start:].view(np.bool_)


def _integers(column: pa.Array) -> np.ndarray:
    """The values of an integer column (a dictionary's indices, a time's numbers) as
    int64, in a new array, whatever is under its nulls."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        kind = pa.int64()
    width = kind.bit_width // 8
    dtype = np.dtype(f"{'u' if pa.types.is_unsigned_integer(kind) else 'i'}{width}")
    data = column.buffers()[1]
    if data is None:  # (a column of nulls alone may have no values)
        return np.zeros(len(column), dtype=np.int64)
    return np.frombuffer(data, dtype=dtype, count=len(column),
                         offset=column.offset * width).astype(np.int64)


def _longest(words: Strings) -> int:
    return int(np.diff(words.offsets).max()) if len(words.offsets) > 1 else 0



def _local(ns: np.ndarray) -> pa.Array:
    """Local date and time with microseconds (:func:`shark.output.text.local_time`)."""
    micro = _micro(ns)
    seconds = micro // 1_000_000
    first, last = int(seconds[0]), int(seconds[-1])
    try:
        offsets = {_time.localtime(t).tm_gmtoff for t in (first, last)}
        if len(offsets) == 1:  # (a change of summer time within a batch: second by second)
            shift = np.int64(offsets.pop())
        else:
            shift = np.array([_time.localtime(t).tm_gmtoff for t in seconds.tolist()])
        stamps = pa.array(seconds + shift, pa.timestamp("s"))
        text = pc.strftime(stamps, "%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError, pa.ArrowException):
        return pa.array([f"{t:.6f}" for t in (ns / 1e9).tolist()])  # as they are
    return pc.binary_join_element_wise(
        text, pc.utf8_lpad(pa.array(micro % 1_000_000).cast(pa.string()), 6, "0"), ".")











#: The keys every JSON line has (null where they do not apply), in order, then the
#: keys a line has only where they apply (see :mod:`shark.output.jsonl`).
JSON_KEYS = ("frame", "time", "src", "dst", "transport", "circuit", "sender", "command",
             "command_id", "pv", "data_type", "data_count", "status", "value", "latency")
_JSON_EXTRA = ("display", "sid", "request_frame", "severity", "alarm_status", "epics_time",
               "anomaly", "size", "reason")
#: The keys of a line copied from the line before when their values are the same
#: (from ``frame`` to ``command_id``: the messages of a frame, the updates of a batch).
_JSON_SHARED = JSON_KEYS.index("command_id") + 1
#: Characters a JSON string cannot hold as they are.
_JSON_OPTIONAL = np.array([False] * 15 + [True] * 9)
_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'
_JSON_STRING = json.encoder.encode_basestring  # (as json.dumps(ensure_ascii=False))


class JsonLines:
    """Makes the JSON lines of batches: the objects of :mod:`shark.output.jsonl`,
    written column by column (numbers by Arrow, strings escaped where they need it,
    each distinct name once)."""

    def __init__(self) -> None:
        self._names = _Names()

    def __call__(self, batch: pa.RecordBatch) -> memoryview:
        """The JSON lines of a batch's rows, each ending with a newline, as bytes."""
        if batch.num_rows == 0:
            return memoryview(b"")

        column = batch.column
        rows = batch.num_rows
        command = column("command")
        kinds = np.array([_COMMAND_KIND.get(name, 0) for name in
                          command.dictionary.to_pylist()] or [0], dtype=np.int8)
        not_message = kinds[pc.fill_null(command.indices, 0).to_numpy()] > 0

        def names(name: str) -> Strings:
            return self._names(name, column(name), _JSON_STRING)

        texts: list[Strings] = []
        numbers: list[Numbers] = []
        spec: list[tuple[int, int]] = []  # (kind, which), by field

        def text(array: pa.Array | Strings, kind: int = TEXT) -> None:
            spec.append((kind, len(texts)))
            texts.append(_texts(array) if not isinstance(array, Strings) else array)

        def quoted(array: pa.Array) -> None:  # (escaped as it is written)
            text(array, QUOTED)

        def number(array: pa.Array | Numbers, kind: int = INTEGER) -> None:
            spec.append((kind, len(numbers)))
            numbers.append(array if isinstance(array, Numbers) else Numbers(*_numbers(array)))

        def seconds(times: pa.Array, raw: pa.Array | None) -> None:
            if times.null_count and raw is not None and raw.null_count < len(raw):
                text(_seconds(times, raw))  # a time the column cannot hold: its seconds
            else:
                number(Numbers(*_numbers(times.cast(pa.int64()))), SECONDS)

        number(column("frame"))
        seconds(column("time"), column("raw_time"))
        for name in ("src", "dst", "transport"):
            text(names(name))
        number(column("circuit"))
        text(names("sender"))
        text(names("command"))
        number(column("command_id"))
        for name in ("pv", "data_type"):
            text(names(name))
        number(column("data_count"))
        text(names("status"))
        text(_json_value(batch))
        latency = _Sparse(rows)
        latency.add(column("latency"), lambda numbers, where: _json_float(numbers))
        text(latency.strings())
        quoted(column("display"))
        number(column("sid"))
        number(column("request_frame"))
        text(names("severity"))
        text(names("alarm_status"))
        seconds(column("epics_time"), None)
        quoted(column("anomaly"))
        size = column("size").to_numpy()
        number(Numbers(size.astype(np.int64), not_message))
        quoted(column("reason"))
        kinds_, refs = (np.array(parts, dtype=np.int64) for parts in zip(*spec, strict=True))
        # (a value in a dictionary written as it is, at most once a row; a row's own
        # text escaped, at most 6 bytes a byte)
        bound = rows * (len(_JSON_HEADS.data) + 40 * len(numbers) + 8 * len(texts) + 2) + sum(
            6 * len(texts[ref].data) if kind == QUOTED else rows * _longest(texts[ref])
            for kind, ref in spec if kind in (TEXT, QUOTED))
        joined, index, first = _joined(texts, rows)
        out, used = records(rows, bound, _JSON_HEADS, kinds_, refs, _JSON_OPTIONAL,
                            joined, index, first, np.array([n.values for n in numbers]),
                            np.array([n.valid for n in numbers]), _JSON_SHARED)
        return memoryview(out)[:used]


def _joined(texts: list[Strings], rows: int) -> tuple[Strings, np.ndarray, np.ndarray]:
    """Several :class:`Strings` as one: their bytes and values one after the other;
    the value of each row of each, by text and row (as each numbers them, -1 for
    null), and where the values of each start (the loop adds it: shifting the values
    of every row here took as long as the loop itself)."""
    # (only the bytes the offsets use: a sliced column's buffer holds more)
    data = np.concatenate([t.data[t.offsets[0]:t.offsets[-1]] for t in texts])
    counts = [len(t.offsets) - 1 for t in texts]
    offsets = np.zeros(sum(counts) + 1, dtype=np.int64)
    first = np.zeros(len(texts), dtype=np.int64)
    index = np.empty((len(texts), rows), dtype=np.int64)
    values = byte = 0
    for i, (t, count) in enumerate(zip(texts, counts, strict=True)):
        offsets[values + 1:values + count + 1] = t.offsets[1:] - t.offsets[0] + byte
        index[i] = t.index
        first[i] = values
        values += count
        byte += int(t.offsets[-1] - t.offsets[0])
    return Strings(data, offsets, np.zeros(0, dtype=np.int64)), index, first


def _heads() -> Strings:
    keys = [*JSON_KEYS, *_JSON_EXTRA]
    encoded = [f'{{"{keys[0]}":'.encode(), *(f',"{key}":'.encode() for key in keys[1:])]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(word) for word in encoded])
    return Strings(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets,
                   np.zeros(0, dtype=np.int64))


def _in_dictionary(column: pa.Array, names: frozenset[str]) -> pa.Array:
    """Whether each row of a dictionary column is one of ``names``."""
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return pa.array([n in names for n in column.dictionary.to_pylist()],
                    pa.bool_()).take(column.indices)



def _json_text(column: pa.Array) -> pa.Array:
    """A string column as JSON strings: quoted, and escaped in the rows that need it."""
    column = column.cast(pa.string())
    quoted = pc.binary_join_element_wise('"', column, '"', "")
    special = pc.fill_null(pc.match_substring_regex(column, _NEEDS_ESCAPE), False)
    if not pc.any(special).as_py():
        return quoted
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    escaped = pa.array([_JSON_STRING(column[row].as_py()) for row in rows.tolist()],
                       pa.string())
    return pc.replace_with_mask(quoted, special, escaped)


def _json_float(column: pa.Array) -> pa.Array:
    """Floats as JSON numbers; NaN and infinities as the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``."""
    text = column.cast(pa.string())
    if pc.any(pc.invert(pc.is_finite(column.fill_null(0.0)))).as_py():
        text = pc.if_else(pc.is_nan(column), '"NaN"', text)
        text = pc.if_else(pc.equal(column, float("inf")), '"Infinity"', text)
        text = pc.if_else(pc.equal(column, float("-inf")), '"-Infinity"', text)
    return text


def _seconds(times: pa.Array, raw: pa.Array | None) -> pa.Array:
    """Times as Unix seconds, the decimals the capture gave (no float in between)."""
    numbers = times.cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = times.is_valid().to_numpy(zero_copy_only=False)
    safe = np.where(valid, numbers, 0).astype(np.int64)
    whole = safe // 1_000_000_000
    fraction = pc.utf8_rtrim(pc.utf8_lpad(pa.array(safe - whole * 1_000_000_000).cast(
        pa.string()), 9, "0"), "0")
    fraction = pc.if_else(pc.equal(fraction, ""), "0", fraction)
    text = pc.binary_join_element_wise(pa.array(whole).cast(pa.string()), fraction, ".")
    text = pc.if_else(pa.array(valid), text, None)
    if raw is not None and raw.null_count < len(raw):  # a time the column cannot hold
        text = pc.coalesce(text, _json_float(raw))
    return text


def _json_value(batch: pa.RecordBatch) -> Strings:
    """The value: a number (integers of integer DBR types as such), a string, or the
    elements of an array."""
    rows = batch.num_rows
    integral = pc.fill_null(_in_dictionary(batch.column("data_type"), _INTEGER_TYPES), False)
    value = _Sparse(rows)
    value.add(batch.column("value"), lambda numbers, where: _json_number(
        numbers, integral.filter(where)))
    value.add(batch.column("value_text"), lambda strings, where: _json_text(strings))
    if "elements" in batch.schema.names:
        value.add(batch.column("elements"), lambda elements, where: _json_elements(
            elements, integral.filter(where)))
    if "element_texts" in batch.schema.names:
        value.add(batch.column("element_texts"), lambda strings, where: pa.array([
            json.dumps(v, ensure_ascii=False, separators=(",", ":"))
            for v in strings.to_pylist()], pa.string()))
    return value.strings()


def _json_number(value: pa.Array, integral: pa.Array) -> pa.Array:
    """Numbers (no nulls) as JSON: integers where ``integral`` and finite."""
    text = _json_float(value)
    as_int = pc.and_(integral, pc.is_finite(value))
    if pc.any(as_int).as_py():
        text = pc.if_else(as_int, pc.cast(value, pa.int64(), safe=False).cast(pa.string()),
                          text)
    return text


class _Sparse:
    """A text column made of the values of some columns, each where those before it
    are null: each column's text made of its rows that have a value only (a value or
    a latency is in some of the rows; Arrow's casts cost as much for a null as for a
    number)."""

    def __init__(self, rows: int) -> None:
        self.index = np.full(rows, -1, dtype=np.int64)
        self._texts: list[pa.Array] = []
        self._values = 0

    def add(self, column: pa.Array, shown: Callable[[pa.Array, pa.Array], pa.Array]) -> None:
        """Where the rows have no text yet: ``shown(values, where)``, the text (not
        null) of the values of ``column`` (none null) at the rows ``where`` says."""
        if column.null_count == len(column):
            return
        rows = _valid(column) & (self.index < 0)
        count = int(rows.sum())
        if not count:
            return
        where = pa.array(rows)
        self._texts.append(shown(column.filter(where), where).cast(pa.large_string()))
        self.index[rows] = np.arange(self._values, self._values + count, dtype=np.int64)
        self._values += count

    def strings(self) -> Strings:
        if not self._texts:
            return _no_texts(len(self.index))._replace(index=self.index)
        return _texts(pa.concat_arrays(self._texts))._replace(index=self.index)


def _json_elements(elements: pa.Array, integral: pa.Array) -> pa.Array:
    """Arrays as JSON lists: integers for integer DBR types; NaN and infinities as the
    strings ``record_dict`` writes (one row at a time, where there are any)."""
    flat = elements.values
    as_int = pc.fill_null(integral, False).to_numpy(zero_copy_only=False)
    numbers = flat.cast(pa.string())
    if as_int.any():  # (elements of integer types are integers, written as such)
        rows = np.repeat(as_int, np.diff(elements.offsets.to_numpy()))
        whole = pc.cast(flat, pa.int64(), safe=False).cast(pa.string())
        numbers = pc.if_else(pa.array(rows), whole, numbers)
    lists = pa.LargeListArray.from_arrays(elements.offsets, numbers, mask=elements.is_null())
    text = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    if not pc.all(pc.is_finite(flat)).as_py():
        odd = [i for i, v in enumerate(elements.to_pylist())
               if v is not None and not all(math.isfinite(x) for x in v)]
        fixed = pa.array([json.dumps([json_ready(x) for x in elements[i].as_py()],
                                     separators=(",", ":")) for i in odd], pa.string())
        mask = np.zeros(len(elements), dtype=bool)
        mask[odd] = True
        text = pc.replace_with_mask(text, pa.array(mask), fixed)
    return text



#: DBR types whose values are integers (record_dict writes them as JSON integers).
_INTEGER_TYPES = frozenset(
    f"DBR_{kind}{native}" for kind in ("", "STS_", "TIME_", "GR_", "CTRL_")
    for native in ("SHORT", "INT", "ENUM", "CHAR", "LONG"))


#: The JSON of each key and what precedes it, in the order of the fields.
_JSON_HEADS = _heads()
