"""group(): the same groups whichever way the keys are grouped (a table over a small
range of integers, or a hash)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shark.tables.grouping import group


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
