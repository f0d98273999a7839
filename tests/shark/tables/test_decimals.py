"""The precision each floating row of a chunk is shown with (Chunk._decimals), worked
out over whole columns, against the rule for one row at a time: the value's own where
it carries one (-1 where it cannot be used), else its channel's (-1 for none)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from decoder.display import MAX_PRECISION
from shark.tables.chunk import Chunk


def one_at_a_time(floating, keys, channels, has, own) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for row in np.flatnonzero(floating).tolist():
        if has[row]:
            p = int(own[row]) if 0 <= own[row] <= MAX_PRECISION else -1
        else:
            c = channels[keys[row]] if keys[row] >= 0 else None
            p = c.precision if c is not None and c.precision is not None else -1
            p = p if 0 <= p <= MAX_PRECISION else -1
        groups.setdefault(p, []).append(row)
    return groups


@pytest.mark.parametrize("seed", range(12))
def test_decimals_as_one_row_at_a_time(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    kinds = [[3], [None], [3, 3], [2, 5, None, 40], [], [-3], [17, 0]][seed % 7]
    channels = [None if p is None and rng.random() < 0.3 else SimpleNamespace(precision=p)
                for p in kinds]
    keys = rng.integers(-1, len(channels), n) if rng.random() < 0.7 or not channels \
        else rng.integers(0, len(channels), n)
    has = rng.random(n) < [0.0, 0.3, 1.0][seed % 3]
    own = np.where(rng.random(n) < 0.8, rng.integers(0, 4, n) * 3,
                   rng.integers(-5, 30, n)).astype(np.int16)
    if seed % 4 == 0:  # (own precisions all usable, few)
        own = np.full(n, 2 + seed % 3, dtype=np.int16)
    own[~has] = 0
    floating = rng.random(n) < 0.9
    values = SimpleNamespace(has_precision=has, precision=own)
    got = Chunk._decimals(SimpleNamespace(values=values), floating, keys, channels)
    want = one_at_a_time(floating, keys, channels, has, own)
    assert [p for p, _ in got] == sorted(want)
    for p, rows in got:
        assert rows.tolist() == want[p]
