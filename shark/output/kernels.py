"""The loops that write lines of text byte by byte, compiled by numba.

A line of ``shark read`` is some twenty words, most of them a name looked up by code
(an endpoint, a command, a PV), a number, or a string column's value. Arrow's string
kernels make each word for a whole batch, but a pass per word, each with its own
allocation, costs more than decoding the messages did. Here one pass per batch writes
every line into one buffer: names are copied from their dictionary's bytes, numbers
written digit by digit, the words a row does not have skipped.

The inputs are plain numpy arrays (:class:`Strings` for a string column or a
dictionary: the bytes, the offsets of each value, and for a column the index of each
row's value, -1 for null), so that the compiled code never sees a Python object.
Compiled once per machine (``cache=True`` keeps the machine code beside this file),
and only when there is enough to write: numba and the compiler take some 0.5 s and
100 MB to load, more than a small capture takes to read. Until then the same
functions run as the Python they are written in (:func:`text_lines` and
:func:`records` choose), so the bytes are the same either way: a test holds them to it.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "COMPILE_ROWS", "FIXED_BYTES", "INTEGER", "QUOTED", "SECONDS", "TEXT", "Numbers",
    "Strings", "choose", "records", "text_lines",
]


class Strings(NamedTuple):
    """Strings as numpy arrays: value ``i`` is ``data[offsets[i]:offsets[i + 1]]``;
    row ``r`` holds value ``index[r]`` (-1: null)."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64
    index: np.ndarray  # int32 for the text lines (read-only: views of Arrow's indices)


def _word(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8).copy()


# The constant words (numba takes global arrays as constants).
_ARROW = _word(b" -> ")
_SID = _word(b" <sid=")
_STATUS = _word(b" status=")
_SUBSCRIPTION = _word(b" subscriptionid=")
_BYTES = _word(b" bytes: ")
_DATA = _word(b" data=")
_MS = _word(b" ms]")
_UNKNOWN_SENDER = _word(b"?       ")
#: The digits of 0 to 99, two each ("00", "01" ... "99").
_PAIRS = _word("".join(f"{i:02d}" for i in range(100)).encode())
#: Bytes a line has at most besides its names and texts (numbers at their longest).
FIXED_BYTES = 256


def _digits(value: int) -> int:
    """How many decimal digits a non-negative integer has (four at a time, then by
    comparisons: a division is what a digit costs)."""
    n = 1
    while value >= 10000:
        value //= 10000
        n += 4
    if value >= 100:
        return n + 3 if value >= 1000 else n + 2
    return n + 1 if value >= 10 else n


def _put_uint(out: np.ndarray, pos: int, value: int) -> int:
    """Write a non-negative integer; return the position after it. Two digits at a
    time (:data:`_PAIRS`), from the last: half the divisions."""
    end = pos + _digits(value)
    i = end
    while value >= 100:
        pair = 2 * (value % 100)
        value //= 100
        i -= 2
        out[i] = _PAIRS[pair]
        out[i + 1] = _PAIRS[pair + 1]
    if value >= 10:
        out[i - 2] = _PAIRS[2 * value]
        out[i - 1] = _PAIRS[2 * value + 1]
    else:
        out[i - 1] = 48 + value
    return end


def _put_int(out: np.ndarray, pos: int, value: int) -> int:
    if value < 0:
        out[pos] = 45  # -
        return _put_uint(out, pos + 1, -value)
    return _put_uint(out, pos, value)


def _put_fixed(out: np.ndarray, pos: int, units: int, decimals: int, width: int) -> int:
    """Write ``units / 10**decimals`` with ``decimals`` decimals, right-aligned in
    ``width`` characters (as ``f"{x:{width}.{decimals}f}"``)."""
    negative = units < 0
    magnitude = -units if negative else units
    scale = 1
    for _ in range(decimals):
        scale *= 10
    whole = magnitude // scale
    fraction = magnitude % scale
    length = (1 if negative else 0) + _digits(whole) + 1 + decimals
    while length < width:
        out[pos] = 32
        pos += 1
        length += 1
    if negative:
        out[pos] = 45
        pos += 1
    pos = _put_uint(out, pos, whole)
    out[pos] = 46  # .
    pos += 1
    for i in range(decimals):
        out[pos + decimals - 1 - i] = 48 + fraction % 10
        fraction //= 10
    return pos + decimals


def _micro(ns: int) -> int:
    """Nanoseconds to microseconds, rounded half away from zero (one at a time, in the
    loops: :func:`shark.output.lines._micro` is the same rule over arrays, for the
    local times written outside them)."""
    return -((-ns + 500) // 1000) if ns < 0 else (ns + 500) // 1000


def _put_value(out: np.ndarray, pos: int, data: np.ndarray, offsets: np.ndarray,
               value: int) -> int:
    """Copy value ``value`` of strings ``data``/``offsets``."""
    start = offsets[value]
    size = offsets[value + 1] - start
    if size <= 0:
        return pos
    _copy(out, pos, data, start, size)
    return pos + size


def _put_text(out: np.ndarray, pos: int, text: np.ndarray) -> int:
    _copy(out, pos, text, 0, len(text))
    return pos + len(text)


def _copy(out: np.ndarray, pos: int, data: np.ndarray, start: int, size: int) -> None:
    """Copy ``size`` bytes (at least one) of ``data`` from ``start`` to ``out`` at
    ``pos``. Compiled, this is a call of ``memcpy`` (:func:`_memcpy`); as Python, one
    slice (a loop over the bytes took a third of a small capture's ``shark read
    --format jsonl``)."""
    out[pos:pos + size] = data[start:start + size]


def _memcpy() -> None:
    """:func:`_copy` in the compiled loops: ``memcpy`` (an intrinsic; the Python
    function stays as it is, for the loops as Python). Copied a byte at a time, the
    names and texts of a line took as long as all the rest of it (each is too short
    for the compiler to make the loop wider by itself)."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    @intrinsic
    def memcpy(typingctx: Any, out: Any, pos: Any, data: Any, start: Any, size: Any
               ) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            target = context.make_array(signature.args[0])(context, builder, args[0])
            source = context.make_array(signature.args[2])(context, builder, args[2])
            cgutils.raw_memcpy(builder, builder.gep(target.data, [args[1]]),
                               builder.gep(source.data, [args[3]]), args[4], 1)
            return context.get_dummy_value()
        return types.none(out, pos, data, start, size), codegen

    @overload(_copy, inline="always")
    def copy(out: Any, pos: Any, data: Any, start: Any, size: Any) -> Any:
        def compiled(out: Any, pos: Any, data: Any, start: Any, size: Any) -> None:
            memcpy(out, pos, data, start, size)
        return compiled


def _text_lines(
    rows: int, bound: int,
    frame: np.ndarray,
    time_ns: np.ndarray, time_text: Strings,
    src: Strings, dst: Strings, transport: Strings,
    circuit: np.ndarray, circuit_valid: np.ndarray,
    sender: Strings, command: Strings, command_kind: np.ndarray,
    pv: Strings, sid: np.ndarray, sid_valid: np.ndarray,
    data_type: Strings, data_count: np.ndarray,
    status: Strings, fields: Strings,
    subscription: np.ndarray, subscription_valid: np.ndarray,
    size: np.ndarray, reason: Strings,
    display: Strings,
    severity: Strings, severity_quiet: np.ndarray, alarm_status: Strings,
    latency_us: np.ndarray, latency_valid: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The text lines of ``rows`` rows (see :mod:`shark.output.lines` for the words),
    in a buffer of ``bound`` bytes (enough for them: the caller sums the longest of
    each word); the bytes written and how many. ``time_ns`` are nanoseconds to
    write as seconds with 6 decimals in 11 characters (microseconds rounded half away
    from zero: only those of the lines that do not copy them), unless ``time_text``
    has rows (a text per row). Dictionaries are written as they are: the caller pads those
    that have a width (endpoints, sender). ``command_kind`` by command value: 0 a
    message, 1 a circuit end (OPEN, CLOSE), 2 a gap or undecodable stretch."""
    out = np.empty(bound, dtype=np.uint8)
    pos = 0
    sep = _ARROW
    sid_word = _SID
    status_word = _STATUS
    subscription_word = _SUBSCRIPTION
    bytes_word = _BYTES
    data_word = _DATA
    ms_word = _MS
    unknown_sender = _UNKNOWN_SENDER
    prefix_start = prefix_size = 0
    for r in range(rows):
        # The words up to the command are those of the row before, as often as not (the
        # messages of a frame, the updates of a batch): copied from its line, at once.
        line_start = pos
        if (r > 0 and frame[r] == frame[r - 1] and time_ns[r] == time_ns[r - 1]
                and time_text.index[r] == time_text.index[r - 1]
                and src.index[r] == src.index[r - 1] and dst.index[r] == dst.index[r - 1]
                and transport.index[r] == transport.index[r - 1]
                and circuit_valid[r] == circuit_valid[r - 1]
                and circuit[r] == circuit[r - 1] and sender.index[r] == sender.index[r - 1]
                and command.index[r] == command.index[r - 1]):
            _copy(out, pos, out, prefix_start, prefix_size)
            pos += prefix_size
        else:
            # frame, right-aligned in 6
            n = _digits(frame[r])
            for _ in range(n, 6):
                out[pos] = 32
                pos += 1
            pos = _put_uint(out, pos, frame[r])
            out[pos] = 32
            pos += 1
            if time_text.index[r] >= 0:
                pos = _put_value(out, pos, time_text.data, time_text.offsets, time_text.index[r])
            else:
                pos = _put_fixed(out, pos, _micro(time_ns[r]), 6, 11)
            out[pos] = 32
            pos += 1
            pos = _put_value(out, pos, src.data, src.offsets, src.index[r])
            pos = _put_text(out, pos, sep)
            pos = _put_value(out, pos, dst.data, dst.offsets, dst.index[r])
            out[pos] = 32
            pos += 1
            # transport[#circuit], left-aligned in 6
            start = pos
            pos = _put_value(out, pos, transport.data, transport.offsets, transport.index[r])
            if circuit_valid[r]:
                out[pos] = 35  # #
                pos = _put_uint(out, pos + 1, circuit[r])
            while pos - start < 6:
                out[pos] = 32
                pos += 1
            out[pos] = 32
            pos += 1
            if sender.index[r] >= 0:
                pos = _put_value(out, pos, sender.data, sender.offsets, sender.index[r])
            else:
                pos = _put_text(out, pos, unknown_sender)
            out[pos] = 32
            pos += 1
            pos = _put_value(out, pos, command.data, command.offsets, command.index[r])
        prefix_start = line_start
        prefix_size = pos - line_start
        which = command.index[r]
        kind = command_kind[which]
        if pv.index[r] >= 0:
            out[pos] = 32
            pos = _put_value(out, pos + 1, pv.data, pv.offsets, pv.index[r])
        elif sid_valid[r]:
            pos = _put_text(out, pos, sid_word)
            pos = _put_uint(out, pos, sid[r])
            out[pos] = 62  # >
            pos += 1
        if data_type.index[r] >= 0:
            out[pos] = 32
            pos = _put_value(out, pos + 1, data_type.data, data_type.offsets,
                             data_type.index[r])
            out[pos] = 91  # [
            pos = _put_uint(out, pos + 1, data_count[r])
            out[pos] = 93  # ]
            pos += 1
        if status.index[r] >= 0:
            pos = _put_text(out, pos, status_word)
            pos = _put_value(out, pos, status.data, status.offsets, status.index[r])
        f = fields.index[r]
        if f >= 0 and fields.offsets[f + 1] > fields.offsets[f]:
            out[pos] = 32
            pos = _put_value(out, pos + 1, fields.data, fields.offsets, f)
        elif subscription_valid[r]:  # a monitor update: its fields are its columns
            pos = _put_text(out, pos, subscription_word)
            pos = _put_uint(out, pos, subscription[r])
        if kind == 1 and reason.index[r] >= 0:
            out[pos] = 32
            out[pos + 1] = 40  # (
            pos = _put_value(out, pos + 2, reason.data, reason.offsets, reason.index[r])
            out[pos] = 41  # )
            pos += 1
        elif kind == 2 and reason.index[r] >= 0:
            out[pos] = 32
            pos = _put_int(out, pos + 1, size[r])
            pos = _put_text(out, pos, bytes_word)
            pos = _put_value(out, pos, reason.data, reason.offsets, reason.index[r])
        if display.index[r] >= 0:
            pos = _put_text(out, pos, data_word)
            pos = _put_value(out, pos, display.data, display.offsets, display.index[r])
        s = severity.index[r]
        if s >= 0 and not severity_quiet[s] and alarm_status.index[r] >= 0:
            out[pos] = 32
            pos = _put_value(out, pos + 1, severity.data, severity.offsets, s)
            out[pos] = 47  # /
            pos = _put_value(out, pos + 1, alarm_status.data, alarm_status.offsets,
                             alarm_status.index[r])
        if latency_valid[r]:
            out[pos] = 32
            out[pos + 1] = 91  # [
            pos = _put_fixed(out, pos + 2, latency_us[r], 3, 0)
            pos = _put_text(out, pos, ms_word)
        out[pos] = 10
        pos += 1
    return out, pos


#: How a field of :func:`records` is written, by kind: a string (JSON text, made by
#: the caller), an integer, Unix nanoseconds as seconds (the decimals the capture
#: gave, trailing zeros dropped: ``12.5``, ``12.0``), or a string to quote and escape
#: as JSON (as ``json.dumps(..., ensure_ascii=False)`` does).
TEXT, INTEGER, SECONDS, QUOTED = 0, 1, 2, 3
_NULL = _word(b"null")
_CLOSE = _word(b"}\n")


class Numbers(NamedTuple):
    """Integers with nulls: ``values[r]`` where ``valid[r]``."""

    values: np.ndarray  # int64
    valid: np.ndarray  # bool


def _put_seconds(out: np.ndarray, pos: int, ns: int) -> int:
    if ns < 0:
        out[pos] = 45  # -
        pos += 1
        ns = -ns
    whole = ns // 1_000_000_000
    fraction = ns - whole * 1_000_000_000
    pos = _put_int(out, pos, whole)
    out[pos] = 46  # .
    pos += 1
    if fraction == 0:
        out[pos] = 48
        return pos + 1
    digits = 9
    while fraction % 10 == 0:
        fraction //= 10
        digits -= 1
    for i in range(digits):
        out[pos + digits - 1 - i] = 48 + fraction % 10
        fraction //= 10
    return pos + digits


def _escapes() -> tuple[np.ndarray, np.ndarray]:
    """How JSON writes each byte below 0x20 (``\\n``, ``\\u001b`` ...), as
    ``json.dumps`` does: the bytes of each (a row, padded) and how many."""
    words = [json.dumps(chr(b))[1:-1].encode() for b in range(32)]
    table = np.zeros((32, 6), dtype=np.uint8)
    for b, word in enumerate(words):
        table[b, : len(word)] = np.frombuffer(word, np.uint8)
    return table, np.array([len(word) for word in words], dtype=np.int64)


_ESCAPE, _ESCAPE_SIZE = _escapes()


def _put_quoted(out: np.ndarray, pos: int, data: np.ndarray, offsets: np.ndarray,
                value: int) -> int:
    """Value ``value`` as a JSON string: quoted; quotes, backslashes and control
    characters escaped (:data:`_ESCAPE`); the rest (UTF-8) as it is."""
    out[pos] = 34
    pos += 1
    for i in range(offsets[value], offsets[value + 1]):
        b = data[i]
        if b == 34 or b == 92:  # a quote or a backslash
            out[pos] = 92
            out[pos + 1] = b
            pos += 2
        elif b < 32:
            for k in range(_ESCAPE_SIZE[b]):
                out[pos + k] = _ESCAPE[b, k]
            pos += _ESCAPE_SIZE[b]
        else:
            out[pos] = b
            pos += 1
    out[pos] = 34
    return pos + 1


def _records(rows: int, bound: int, keys: Strings, kinds: np.ndarray, refs: np.ndarray,
             optional: np.ndarray, texts: Strings, text_index: np.ndarray,
             text_first: np.ndarray, numbers: np.ndarray, number_valid: np.ndarray,
             shared: int) -> tuple[np.ndarray, int]:
    """JSON objects, one per line: for each field f, key ``keys`` value f (the JSON of
    the key and what precedes it: ``{"frame":``, ``,"time":``), then the value of row r
    by ``kinds[f]``: text value ``text_first[refs[f]] + text_index[refs[f], r]`` of
    ``texts`` (the strings of every text field, one after the other, those of text t
    from ``text_first[t]``; index -1: null), or the number ``numbers[refs[f], r]``
    where ``number_valid``; a null value is ``null``, or leaves the field out when
    ``optional[f]``. The first ``shared`` fields of a row that has the values of the
    row before in them (the messages of a frame) are copied from its line."""
    out = np.empty(bound, dtype=np.uint8)
    pos = 0
    fields = len(kinds)
    prefix_start = prefix_size = 0
    for r in range(rows):
        line_start = pos
        first = 0
        if r > 0:
            same = True
            for f in range(shared):
                which = refs[f]
                if kinds[f] == TEXT or kinds[f] == QUOTED:
                    same = text_index[which, r] == text_index[which, r - 1]
                else:
                    same = number_valid[which, r] == number_valid[which, r - 1] and (
                        numbers[which, r] == numbers[which, r - 1])
                if not same:
                    break
            if same:
                _copy(out, pos, out, prefix_start, prefix_size)
                pos += prefix_size
                first = shared
        for f in range(first, fields):
            if f == shared:
                prefix_start = line_start
                prefix_size = pos - line_start
            kind = kinds[f]
            which = refs[f]
            if kind == TEXT or kind == QUOTED:
                value = text_index[which, r]
                present = value >= 0
                value += text_first[which]
            else:
                present = number_valid[which, r]
            if not present and optional[f]:
                continue
            pos = _put_value(out, pos, keys.data, keys.offsets, f)
            if not present:
                pos = _put_text(out, pos, _NULL)
            elif kind == TEXT:
                pos = _put_value(out, pos, texts.data, texts.offsets, value)
            elif kind == QUOTED:
                pos = _put_quoted(out, pos, texts.data, texts.offsets, value)
            elif kind == INTEGER:
                pos = _put_int(out, pos, numbers[which, r])
            else:
                pos = _put_seconds(out, pos, numbers[which, r])
        pos = _put_text(out, pos, _CLOSE)
    return out, pos


#: Rows from which a batch is written by the compiled loops (and numba loaded, once).
COMPILE_ROWS = 4096
#: The helpers the loops call, compiled into them (inlined) once numba is loaded.
_HELPERS = ("_micro", "_digits", "_put_uint", "_put_int", "_put_fixed", "_put_value",
            "_put_text", "_put_seconds", "_put_quoted")
_compiled: dict[str, Any] = {}


def _compile() -> dict[str, Any]:
    """Load numba and compile the loops (from its cache after the first time)."""
    if not _compiled:
        from numba import njit

        module = globals()
        _memcpy()  # (before the helpers that call it are compiled)
        for name in _HELPERS:  # (rebound: the loops compiled next call the compiled ones)
            module[name] = njit(cache=True, inline="always")(module[name])
        _compiled["text_lines"] = njit(cache=True)(_text_lines)
        _compiled["records"] = njit(cache=True)(_records)
    return _compiled


def choose(compiled: bool | None) -> None:
    """Write every batch with the compiled loops (True), as Python (False), or by its
    size (None, the default): tests compare the two ways."""
    _MODE[0] = compiled


#: The way chosen (:func:`choose`).
_MODE: list[bool | None] = [None]


def _chosen(name: str, rows: int) -> Any:
    mode = _MODE[0]
    if mode is False:
        return globals()["_" + name]
    if _compiled or mode or rows >= COMPILE_ROWS:
        return _compile()[name]
    return globals()["_" + name]


def text_lines(rows: int, *args: Any) -> tuple[np.ndarray, int]:
    """:func:`_text_lines`, compiled for a batch of :data:`COMPILE_ROWS` rows or more."""
    return _chosen("text_lines", rows)(rows, *args)


def records(rows: int, *args: Any) -> tuple[np.ndarray, int]:
    """:func:`_records`, compiled for a batch of :data:`COMPILE_ROWS` rows or more."""
    return _chosen("records", rows)(rows, *args)
