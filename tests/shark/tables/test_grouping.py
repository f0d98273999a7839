"""group(): the same groups whichever way the keys are grouped (a table over a small
range of integers, or a hash: Arrow's, held to pandas' factorize)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from shark.tables.grouping import _factorize, distinct, group


def _hashed(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups as pandas' factorize gives them (the reference)."""
    codes, distinct = pd.factorize(keys)
    first = np.array([int(np.flatnonzero(codes == c)[0]) for c in range(len(distinct))],
                     dtype=np.intp)
    return codes, distinct, first


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8,
                                   np.uint32, np.intp])
@pytest.mark.parametrize("rows", [0, 1, 2, 17, 1000])
@pytest.mark.parametrize("span", [1, 3, 100, 10**6])
def test_groups_alike(dtype: type, rows: int, span: int) -> None:
    rng = np.random.default_rng(rows * 7 + span)
    low = -5 if np.dtype(dtype).kind == "i" else 0
    keys = rng.integers(low, min(span, np.iinfo(dtype).max), rows).astype(dtype)
    codes, distinct, first = group(keys)
    want = _hashed(keys)
    np.testing.assert_array_equal(codes, want[0])
    np.testing.assert_array_equal(distinct, want[1])
    np.testing.assert_array_equal(first, want[2])
    assert distinct.dtype == keys.dtype


def test_wide_and_other_keys() -> None:
    ids = np.array([10**15, 5, 10**15, -(10**12), 5], dtype=np.int64)
    codes, distinct, first = group(ids)
    assert codes.tolist() == [0, 1, 0, 2, 1]
    assert distinct.tolist() == [10**15, 5, -(10**12)]
    assert first.tolist() == [0, 1, 3]
    codes, distinct, first = group(np.array([2.5, 1.0, 2.5]))
    assert codes.tolist() == [0, 1, 0] and first.tolist() == [0, 1]


@pytest.mark.parametrize("keys", [
    np.array([], dtype=np.int64),
    np.array([7], dtype=np.int64),
    np.array([10**15, 5, 10**15, -(10**12), 5, 5], dtype=np.int64),
    np.array([2**64 - 1, 0, 2**63, 0], dtype=np.uint64),
    np.array([3, 200, 3, 0], dtype=np.uint8),
    np.array([-1, 4, -1, 2**31 - 1], dtype=np.int32),
    np.array([2.5, 1.0, 2.5, -0.0, 1e300]),
    np.arange(40, dtype=np.int64)[::-3],  # (not contiguous)
    np.random.default_rng(5).integers(-(2**62), 2**62, 20_000) // 1000,
])
def test_arrow_hash_as_pandas(keys: np.ndarray) -> None:
    """The hash gives what pandas' gives: codes, distinct keys in order of first
    appearance, and their types."""
    codes, unique = _factorize(keys)
    want_codes, want_unique = pd.factorize(keys)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(unique, want_unique)
    assert codes.dtype == want_codes.dtype and unique.dtype == want_unique.dtype


def test_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """group() and distinct() give the same whether pandas is loaded or not."""
    keys = np.array([10**15, 5, 10**15, -(10**12), 5], dtype=np.int64)
    with_pandas = group(keys), distinct(keys)
    monkeypatch.delitem(sys.modules, "pandas")
    for got, want in zip((*group(keys), *distinct(keys)), (*with_pandas[0], *with_pandas[1]),
                         strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
