"""The table Written looks numbers up in (shark.tables.bitstable.BitsTable): keys found
where they were put, by tag, -0.0 apart from 0.0, nothing found in an empty slot, and
keys turned away when their slots are taken (found nowhere, never wrongly)."""

from __future__ import annotations

import numpy as np

from shark.tables.bitstable import BitsTable


def test_found_where_put_by_tag() -> None:
    rng = np.random.default_rng(3)
    table = BitsTable(4000)
    values = np.concatenate([rng.normal(0, 50, 1000), np.round(rng.normal(0, 50, 500)),
                             np.arange(1000) * (100 / 65535), [0.0]])
    values = values[~((values == 0) & np.signbit(values))]  # (-0.0: not put)
    keys = np.unique(values.view(np.int64))
    at, new = table.find(keys, 0)
    assert not at.any() and np.array_equal(new, np.arange(len(keys)))
    table.put(keys, 0, 1)
    asked = rng.choice(keys, 5000)
    at, new = table.find(asked, 0)
    assert not len(new)
    assert np.array_equal(keys[at - 1], asked)
    # Another tag: none of those (but 0.0's bits, 0, as a key of a tag not yet put).
    at, new = table.find(asked, 1)
    assert not at.any() and len(new) == len(asked)
    minus_zero = np.array([-0.0]).view(np.int64)
    assert table.find(minus_zero, 0)[0][0] == 0
    assert table.find(np.zeros(1, np.int64), 0)[0][0] == 1 + int(np.flatnonzero(keys == 0)[0])


def test_keys_turned_away_are_not_found() -> None:
    """A table far too small for the keys: those it keeps are found at their positions,
    the others not at all."""
    rng = np.random.default_rng(5)
    table = BitsTable(8)
    keys = np.unique(rng.integers(-(1 << 62), 1 << 62, 500))
    table.put(keys[:300], 2, 1)
    table.put(keys[300:], 2, 301)
    at, new = table.find(keys, 2)
    kept = at > 0
    assert 0 < kept.sum() < len(keys)
    assert np.array_equal(at[kept], np.flatnonzero(kept) + 1)
    assert np.array_equal(new, np.flatnonzero(~kept))
