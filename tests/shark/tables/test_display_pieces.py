"""Numbers alike written once (shark.tables.chunk._formatted): the same strings as
writing each, -0.0 apart from 0.0."""

from __future__ import annotations

import numpy as np
import pytest

from shark.tables.chunk import _assemble, _formatted
from shark.tables.display import (
    fixed,
    fixed_texts,
    integer_texts,
    integers,
    shortest,
    shortest_texts,
)


@pytest.mark.parametrize(("texts", "form"), [
    (shortest_texts, shortest), (integer_texts, integers),
    (lambda v: fixed_texts(v, 3), lambda v: fixed(v, 3))], ids=["shortest", "integers", "fixed"])
def test_alike_written_once_as_each(texts, form) -> None:
    rng = np.random.default_rng(5)
    pool = np.concatenate([np.round(rng.normal(0, 50, 300)), [0.0, -0.0]])
    if form is not integers:  # (integers: the values of integer DBR types)
        pool = np.concatenate([pool, rng.normal(0, 50, 300),
                               [1e-9, -1e300, np.nan, np.inf, -np.inf]])
    values = rng.choice(pool, 5000)
    rows = np.sort(rng.choice(7000, 5000, replace=False))
    piece = _formatted(rows, values, texts)
    assert piece[2] is not None  # (written once each)
    got = _assemble(7000, [piece]).to_pylist()
    want = [None] * 7000
    for row, text in zip(rows.tolist(), form(values).to_pylist(), strict=True):
        want[row] = text
    assert got == want
    assert "-0.0" in set(shortest(np.array([-0.0])).to_pylist())


def test_texts_in_parts_are_in_order() -> None:
    """Values written in parts (integral ones with ``.0``, some by Python) come back in
    order through the index."""
    values = np.array([2.0, 0.5, -0.0, 1e300, 7.0, np.nan, 1e-9, 3.25, -4.0, 0.0])
    strings, index = shortest_texts(values)
    assert index is not None
    assert strings.take(index).to_pylist() == [repr(v) for v in values.tolist()]
    edge = np.array([0.0005, 1.5, 2.0, 0.0015, 1e17])  # (halves Python rounds itself)
    strings, index = fixed_texts(edge, 3)
    assert index is not None
    assert strings.take(index).to_pylist() == [f"{v:.3f}" for v in edge.tolist()]
