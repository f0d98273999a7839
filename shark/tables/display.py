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
  ``repr`` and in the same notation for magnitudes from 1e-4 up to 1e10 (an integral
  value lacks ``.0``, added here); Python writes the others (rare in practice).

Tests hold both to Python's own formatting, on many values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fixed", "integers", "shortest"]

#: Magnitudes whose Arrow form is ``repr``'s (but for ``.0``).
_SHORTEST_RANGE = (1e-4, 1e10)
#: Below this a double holds every integer, and the ulp of a product is under a half.
_EXACT = float(2**52)
_MINUS, _POINT, _ZERO = b"-"[0], b"."[0], b"0"[0]
_DOT_ZERO, _EMPTY = pa.scalar(".0", pa.large_string()), pa.scalar("", pa.large_string())


def integers(values: np.ndarray) -> pa.Array:
    """Integral values (of an integer DBR type, held as floats) as ``str(int(v))``."""
    values = np.asarray(values, dtype=np.float64)
    return _compose(values < 0, np.abs(values).astype(np.int64), 0)


def shortest(values: np.ndarray) -> pa.Array:
    """Floats as ``repr(float(v))``."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    low, high = _SHORTEST_RANGE
    fast = ((magnitude >= low) & (magnitude < high)) | (values == 0)
    text = pc.cast(pa.array(values), pa.large_string())
    whole = fast & (values == np.floor(values))
    if whole.any():  # Arrow writes 2.0 as "2"
        text = pc.replace_with_mask(text, pa.array(whole), pc.binary_join_element_wise(
            text.filter(pa.array(whole)), _DOT_ZERO, _EMPTY))
    return _python_where(text, ~fast & np.isfinite(values), values, repr)


def fixed(values: np.ndarray, precision: int) -> pa.Array:
    """Floats as ``f"{v:.{precision}f}"`` (precision 0 to 17)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(values * 10.0**precision)
        fraction = magnitude - np.floor(magnitude)
        exact = (magnitude < _EXACT) & (np.abs(fraction - 0.5) > np.spacing(magnitude))
    rounded = np.rint(np.where(exact, magnitude, 0)).astype(np.int64)
    text = _compose(np.signbit(values), rounded, precision)
    return _python_where(text, ~exact, values, lambda v: f"{v:.{precision}f}")


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


def _python_where(text: pa.Array, where: np.ndarray, values: np.ndarray,
                  form: Callable[[float], str]) -> pa.Array:
    """``text`` with the entries at ``where`` replaced by ``form(value)`` (Python's own
    formatting, for the values the vectorized way cannot be sure of)."""
    if not where.any():
        return text
    return pc.replace_with_mask(text, pa.array(where), pa.array(
        [form(v) for v in values[where].tolist()], pa.large_string()))
