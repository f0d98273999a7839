"""Numbers as text, a whole column at a time, exactly as Python writes each.

The ``display`` column (:attr:`shark.tables.chunk.Chunk.display`) shows every value as
:mod:`decoder.display` judges it: fixed decimals (``f"{v:.{p}f}"``) for a channel with
a precision, else Python's ``repr``. Formatting millions of values one Python call at a
time would cost more than building the rest of the table, so here it is numpy and
pyarrow over the column:

* fixed decimals and integers: ``v * 10**p`` rounded (half to even, as Python rounds
  the exact value) to an integer whose digits are written into a byte matrix, a row per
  value, with the sign and the decimal point, and the rows joined into an Arrow string
  array. Where the product could round otherwise than the exact value would (within an
  ulp of a half) or is too large to be an exact integer, and for NaN and infinities,
  Python formats the value itself;
* the shortest form: Arrow's float-to-string cast, which writes the same digits as
  ``repr`` and in the same notation for magnitudes from 1e-4 up to 1e10 (but for an
  integral value, which it writes without ``.0``: those are composed here, as fixed
  decimals of one place); Python writes the others (rare in practice).

The few values written another way are not put back into the Arrow strings (a copy of
them all): the ``*_texts`` functions give the strings with an index saying which each
value has (:data:`Texts`), and the table's one gather of a column
(:func:`shark.tables.chunk._gathering`) follows it.

Tests hold both to Python's own formatting, on many values.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shark.tables.bitstable import BitsTable
from shark.tables.grouping import distinct

__all__ = ["NUMBERS_KEPT", "Asked", "Texts", "Written", "fixed", "fixed_texts", "integer_texts",
           "integers", "shortest", "shortest_texts"]

#: Strings of values: the strings, and which of them each value has (None: one each,
#: in order). Values formatted in parts (most by numpy or Arrow, a few by Python) are
#: joined by the index, not by copying the strings back into order.
Texts = tuple[pa.Array, "np.ndarray | None"]

#: Magnitudes whose Arrow form is ``repr``'s (but for ``.0``).
_SHORTEST_RANGE = (1e-4, 1e10)
#: Below this a double holds every integer, and the ulp of a product is under a half.
_EXACT = float(2**52)
_MINUS, _POINT, _ZERO = b"-"[0], b"."[0], b"0"[0]


#: Fewer values than this are written as they are, alike or not.
_ALIKE_FROM = 256
#: Numbers a :class:`Written` keeps the texts of, at most.
NUMBERS_KEPT = 1 << 18
#: Ways of writing a :class:`Written` tells apart at once, at most (a tag of
#: :class:`shark.tables.bitstable.BitsTable` each).
_WAYS = 255
#: Calls a :class:`Written` leaves the numbers of a way alone for, at most, after they
#: did not pay.
_REST = 64
#: What a :class:`Written` is asked for: values, the way of writing them (a key), and
#: the function that does (one of the ``*_texts``).
Asked = tuple[Hashable, np.ndarray, Callable[[np.ndarray], Texts]]


class Written:
    """Numbers written before, kept for the values to come, by way of writing them.

    Every client that monitors a channel gets its values: the same numbers again and
    again in a chunk, and often from chunk to chunk (a channel read through a 16-bit
    ADC, or a ``RNDM`` calc, takes some 65536 values at most). Numbers are told apart by
    their bits (-0.0 is not 0.0), looked up in a table
    (:class:`shark.tables.bitstable.BitsTable`), which costs a fraction of writing
    them (some 20 ns a value against 60 to 200): those seen before are found, each
    new one is written once and kept (up to :data:`NUMBERS_KEPT`, or as many as it is
    told: past it, no more; none, and each call tells its values apart among
    themselves only).

    The texts of every way are kept in one array, :attr:`store` (appended to, so that a
    text keeps its place: :class:`_Strings`), which begins with an empty string: the
    values of a column found here are all gathered from it, without joining arrays
    first, and its rows of no value can take the empty string (and be marked null).

    Where few are found (under a quarter: values that seldom come again, or no more
    the ones kept), looking them up and keeping the new ones costs more than it saves
    (values that never come again: some 70 % more than writing them): none of that way
    is looked up for a while (1, 3, 7 ... up to :data:`_REST` calls), the values told
    apart among themselves only; before the longest rest, or once it is full and a call
    finds under a quarter, all that is kept is dropped (the values may have moved on),
    to be kept anew.
    """

    def __init__(self, kept: int = NUMBERS_KEPT) -> None:
        self._kept = kept
        self._forget()

    def _forget(self) -> None:
        #: Each way met (:data:`_WAYS` at most).
        self._ways: dict[Hashable, _Way] = {}
        self._table: BitsTable | None = None  # (made when first needed)
        self._strings = _Strings(self._kept)
        #: The texts kept, after an empty string.
        self.store: pa.Array = self._strings.array

    def texts(self, asked: list[Asked]) -> list[Texts]:
        """:data:`Texts` of the values of each of ``asked`` (those found or kept here:
        of :attr:`store` as it is after the call)."""
        out: list[Texts] = [(self.store, None)] * len(asked)
        size = len(self.store)
        found_here: list[tuple[int, np.ndarray]] = []
        forget = False
        for i, (way, values, form) in enumerate(asked):
            n = len(values)
            if n < _ALIKE_FROM:
                out[i] = form(values)
                continue
            if not self._kept:
                out[i] = _alike_once(values, form)
                continue
            known = self._ways.get(way)
            if known is None:
                if len(self._ways) == _WAYS:  # (more ways than tags: alike once, this call)
                    out[i] = _alike_once(values, form)
                    forget = True
                    continue
                known = self._ways[way] = _Way(len(self._ways))
            if known.resting:
                known.resting -= 1
                out[i] = _alike_once(values, form)
                continue
            if self._table is None:
                self._table = BitsTable(self._kept)
            bits = values.view(np.int64)
            at, new = self._table.find(bits, known.tag)
            if not len(new):
                known.rest = 0
                found_here.append((i, at))
                continue
            fresh, codes = distinct(bits[new])
            written = _in_order(form(fresh.view(np.float64)))
            if 4 * (n - len(new)) >= n:  # found a quarter: paid (or will, once kept)
                known.rest = 0
            elif known.kept >= n:  # kept enough to have found more: rest
                known.rest = known.resting = min(2 * known.rest + 1, _REST)
                forget = forget or known.rest == _REST  # (maybe the values moved on)
            if forget or size + len(fresh) > self._kept:  # not kept
                forget = forget or 4 * (n - len(new)) < n  # (maybe the values moved on)
                out[i] = _joined(at, new, codes, self.store, written)
                continue
            at[new] = codes + size
            self._table.put(fresh, known.tag, size)
            known.kept += len(fresh)
            self.store = self._strings.append(written)
            size += len(fresh)
            found_here.append((i, at))
        for i, at in found_here:
            out[i] = (self.store, at)
        if forget:
            self._forget()
        return out


class _Way:
    """What a :class:`Written` knows of one way of writing numbers: its tag, the
    numbers of it kept, and how long it rests (and rested last)."""

    __slots__ = ("tag", "kept", "rest", "resting")

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.kept = self.rest = self.resting = 0


class _Strings:
    """Strings appended to (``most`` of them, or more if told), in buffers with room
    to spare (twice what they hold, at most): an append copies the new strings only,
    where joining Arrow arrays would copy all those before them too (as many as
    :data:`NUMBERS_KEPT`, at each chunk that meets a new number). :attr:`array` is a
    view of them all, which later appends leave as it is (they write past its end, or
    into new buffers)."""

    def __init__(self, most: int) -> None:
        self._most = most + 1  # (strings held at most, the empty one too)
        self._offsets = np.zeros(min(1 << 10, self._most + 1), dtype=np.int64)
        self._data = np.zeros(1 << 13, dtype=np.uint8)
        self._count = 1  # (an empty string)
        self.array = self._view()

    def append(self, strings: pa.Array) -> pa.Array:
        """Append ``strings`` (none null) and give :attr:`array`."""
        strings = strings.cast(pa.large_string())
        n, count = len(strings), self._count
        if not n:
            return self.array
        _, offsets, data = strings.buffers()
        bounds = np.frombuffer(offsets, np.int64, n + 1, strings.offset * 8)
        low, high = int(bounds[0]), int(bounds[-1])
        end = int(self._offsets[count])
        self._offsets = _room(self._offsets, count + n + 1, self._most + 1)
        self._data = _room(self._data, end + high - low)
        self._offsets[count + 1 : count + n + 1] = bounds[1:] + (end - low)
        if high > low:
            self._data[end : end + high - low] = np.frombuffer(data, np.uint8, high - low, low)
        self._count = count + n
        self.array = self._view()
        return self.array

    def _view(self) -> pa.Array:
        count = self._count
        return pa.LargeStringArray.from_buffers(
            count, pa.py_buffer(self._offsets[: count + 1]),
            pa.py_buffer(self._data[: int(self._offsets[count])]))


def _room(buffer: np.ndarray, size: int, most: int | None = None) -> np.ndarray:
    """``buffer``, or a copy twice as large (or ``size``, if more; but no more than
    ``most`` where ``size`` is not) where it holds fewer than ``size`` items."""
    if size <= len(buffer):
        return buffer
    grown_size = max(size, 2 * len(buffer))
    grown = np.zeros(grown_size if most is None else max(size, min(grown_size, most)),
                     dtype=buffer.dtype)
    grown[: len(buffer)] = buffer
    return grown


def _joined(at: np.ndarray, new: np.ndarray, codes: np.ndarray, kept: pa.Array,
            written: pa.Array) -> Texts:
    """:data:`Texts` of values some of which (``at`` > 0) were found in ``kept``,
    the others (``new``) just ``written`` (``codes``: which each is), without joining
    all that is kept to them."""
    found = np.flatnonzero(at > 0)
    index = np.empty(len(at), dtype=np.int64)
    index[new] = codes
    index[found] = np.arange(len(written), len(written) + len(found))
    return pa.concat_arrays([written, kept.take(at[found])]), index


def _alike_once(values: np.ndarray, form: Callable[[np.ndarray], Texts]) -> Texts:
    """:data:`Texts` of ``values`` with each distinct one written once, when many are
    alike."""
    bits, index = distinct(values.view(np.int64))
    if 3 * len(bits) > 2 * len(values):  # (too few alike to be worth a gather)
        return form(values)
    strings, which = form(bits.view(np.float64))
    return strings, index if which is None else which[index]


def integers(values: np.ndarray) -> pa.Array:
    """Integral values (of an integer DBR type, held as floats) as ``str(int(v))``."""
    return _in_order(integer_texts(values))


def shortest(values: np.ndarray) -> pa.Array:
    """Floats as ``repr(float(v))``."""
    return _in_order(shortest_texts(values))


def fixed(values: np.ndarray, precision: int) -> pa.Array:
    """Floats as ``f"{v:.{precision}f}"`` (precision 0 to 17)."""
    return _in_order(fixed_texts(values, precision))


def integer_texts(values: np.ndarray) -> Texts:
    """:func:`integers` as :data:`Texts`."""
    values = np.asarray(values, dtype=np.float64)
    return _compose(values < 0, np.abs(values).astype(np.int64), 0), None


def shortest_texts(values: np.ndarray) -> Texts:
    """:func:`shortest` as :data:`Texts`: Arrow writes most; integral values, which
    Arrow writes without ``.0`` (``2`` for ``2.0``), are composed here with it."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    low, high = _SHORTEST_RANGE
    fast = ((magnitude >= low) & (magnitude < high)) | (values == 0)
    whole = fast & (values == np.floor(values))
    slow = ~fast & np.isfinite(values)  # (NaN and infinities: Arrow writes repr's)
    text = pc.cast(pa.array(values), pa.large_string())
    if not whole.any() and not slow.any():
        return text, None
    whole = np.flatnonzero(whole)
    return _over(text, [
        (whole, _compose(np.signbit(values[whole]),
                         (magnitude[whole] * 10).astype(np.int64), 1)),
        _python(np.flatnonzero(slow), values, repr)])


def fixed_texts(values: np.ndarray, precision: int) -> Texts:
    """:func:`fixed` as :data:`Texts`."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(values * 10.0**precision)
        fraction = magnitude - np.floor(magnitude)
        exact = (magnitude < _EXACT) & (np.abs(fraction - 0.5) > np.spacing(magnitude))
    rounded = np.rint(np.where(exact, magnitude, 0)).astype(np.int64)
    text = _compose(np.signbit(values), rounded, precision)
    if exact.all():
        return text, None
    return _over(text, [_python(np.flatnonzero(~exact), values,
                                lambda v: f"{v:.{precision}f}")])


def _in_order(texts: Texts) -> pa.Array:
    strings, index = texts
    return strings if index is None else strings.take(index)


def _over(text: pa.Array, parts: list[tuple[np.ndarray, pa.Array]]) -> Texts:
    """:data:`Texts` of the values written in order as ``text``, but for those of each
    part's rows, written as its strings."""
    index = np.arange(len(text))
    offset = len(text)
    for rows, _ in parts:
        index[rows] = np.arange(offset, offset + len(rows))
        offset += len(rows)
    return pa.concat_arrays([text, *(strings for _, strings in parts)]), index


def _python(rows: np.ndarray, values: np.ndarray, form: Callable[[float], str]
            ) -> tuple[np.ndarray, pa.Array]:
    """The values at ``rows`` as Python writes them, with ``form`` (for those the
    vectorized way cannot be sure of)."""
    return rows, pa.array([form(v) for v in values[rows].tolist()], pa.large_string())


def _compose(negative: np.ndarray, digits: np.ndarray, point: int) -> pa.Array:
    """Per row, ``-`` where ``negative``, then the decimal digits of the non-negative
    ``digits`` with a point before the last ``point`` of them (and at least one digit
    before the point): written right-aligned into a byte matrix, a row per value,
    whose used bytes, taken row by row, are the strings one after the other."""
    n = len(digits)
    top = int(digits.max()) if n else 0
    places = max(len(str(top)), point + 1)
    width = places + (1 if point else 0) + 1
    matrix = np.empty((n, width), dtype=np.uint8)
    lengths = np.ones(n, dtype=np.int64)
    rest = digits
    column = width - 1
    for place in range(places):
        if point and place == point:
            matrix[:, column] = _POINT
            lengths += 1
            column -= 1
        quotient = rest // 10
        matrix[:, column] = rest - quotient * 10 + _ZERO
        if place:  # a digit is written when some remain, or to fill the decimals
            lengths += (rest > 0) if place > point else 1
        rest = quotient
        column -= 1
    lengths += negative
    start = width - lengths
    matrix[negative, start[negative]] = _MINUS
    data = matrix[np.arange(width) >= start[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
