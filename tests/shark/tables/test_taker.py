"""The messages table takes the rows it keeps of a column as a gather would, whether
as slices joined (every row but a few) or by a gather (rows scattered)."""

from __future__ import annotations

import numpy as np

from shark.tables.messages import _taker


def test_rows_taken_as_a_gather_takes_them() -> None:
    rng = np.random.default_rng(3)
    column = rng.integers(0, 1000, 500)
    left_out = [np.array([], dtype=np.int64), np.array([0]), np.array([499]),
                np.array([3, 4, 90, 300]), np.sort(rng.choice(500, 200, replace=False))]
    for gone in left_out:
        rows = np.setdiff1d(np.arange(500), gone)
        assert np.array_equal(_taker(rows)(column), column[rows])
        assert np.array_equal(_taker(rows)(column > 500), (column > 500)[rows])
    assert len(_taker(np.array([], dtype=np.int64))(column)) == 0
    assert _taker(None)(column) is column
