"""Grouping rows by a key: by a lookup table over the keys' range where it is small,
else with a hash (:func:`_factorize`); never with a sort. And the index arithmetic the
tables share: runs of rows spelt out (:func:`ranges`), rows found among others
(:func:`found_in`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["distinct", "found_in", "group", "ranges"]

#: A range of integer keys at most this many times the rows (and a little) is looked
#: up in a table of the range: endpoint, command and circuit codes, small numbers. Past
#: it (object ids, addresses) a hash table costs less.
_RANGE_PER_ROW = 4
_SMALL_RANGE = 1 << 12


def group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by key, groups in order of first appearance: the group of each row,
    the distinct keys, and the first row of each group."""
    n = len(keys)
    if n and keys.dtype.kind in "iu":
        low, high = int(keys.min()), int(keys.max())
        if high - low < _RANGE_PER_ROW * n + _SMALL_RANGE:
            return _group_range(keys, low, high)
    codes, distinct = _factorize(keys)
    if not len(codes):
        return codes, distinct, codes
    # Codes are handed out in order: a row is its group's first when it beats them all.
    first = np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]])
    return codes, distinct, first


def _group_range(keys: np.ndarray, low: int, high: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`group` of integer keys from ``low`` to ``high``: the first row of each
    key found in a table over the range, the groups numbered in the order of those."""
    n = len(keys)
    offsets = keys.astype(np.intp) - low
    first_row = np.full(high - low + 1, n, dtype=np.intp)
    np.minimum.at(first_row, offsets, np.arange(n, dtype=np.intp))
    present = np.flatnonzero(first_row < n)
    first = first_row[present]
    order = np.argsort(first, kind="stable")
    first = first[order]
    code = np.empty(high - low + 1, dtype=np.intp)
    code[present[order]] = np.arange(len(order), dtype=np.intp)
    return code[offsets], keys[first], first


def distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, in order of first appearance, and which of them each row's is
    (a hash: for keys of any range, where the first row of each is not wanted)."""
    codes, unique = _factorize(keys)
    return unique, codes


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the distinct keys (in order of first appearance) each row's is, and
    those keys, with pandas' ``factorize``'s types (codes of ``intp``, keys of their
    own): by Arrow's dictionary encoding, whose dictionary is in order of first
    appearance too. Not pandas' own: ``shark read`` makes no DataFrame, and loading
    pandas for this would cost 0.15 s (a test holds the two to the same answers)."""
    encoded = pa.array(keys).dictionary_encode()
    return (encoded.indices.to_numpy().astype(np.intp),
            encoded.dictionary.to_numpy(zero_copy_only=False))


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[0], starts[0] + 1, ... (lengths[0] of them), starts[1], ...``"""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def found_in(among: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``values`` is in ``among`` (sorted, distinct), and whether it is
    there at all."""
    positions = np.searchsorted(among, values)
    inside = positions < len(among)
    inside[inside] = among[positions[inside]] == values[inside]
    return positions, inside
