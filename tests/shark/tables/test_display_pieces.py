"""Numbers alike written once (shark.tables.display.Written): the same strings as
writing each, -0.0 apart from 0.0, within a chunk's values and from one to the next."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pytest

from shark.tables.chunk import _gathered, _gathering
from shark.tables.display import (
    Written,
    _in_order,
    _Strings,
    fixed,
    fixed_texts,
    integer_texts,
    integers,
    shortest,
    shortest_texts,
)

FORMS = [(shortest_texts, shortest), (integer_texts, integers),
         (lambda v: fixed_texts(v, 3), lambda v: fixed(v, 3))]
IDS = ["shortest", "integers", "fixed"]


def _assemble(n: int, pieces: list) -> pa.Array:
    """A column of ``n`` strings from pieces, as Chunk.display gathers it."""
    return _gathered(_gathering(n, pieces), None)


def pool(rng: np.random.Generator, integral: bool) -> np.ndarray:
    values = np.concatenate([np.round(rng.normal(0, 50, 300)), [0.0, -0.0]])
    if not integral:  # (integers: the values of integer DBR types)
        values = np.concatenate([values, rng.normal(0, 50, 300),
                                 [1e-9, -1e300, np.nan, np.inf, -np.inf]])
    return values


@pytest.mark.parametrize(("texts", "form"), FORMS, ids=IDS)
def test_alike_written_once_as_each(texts, form) -> None:
    rng = np.random.default_rng(5)
    values = rng.choice(pool(rng, texts is integer_texts), 5000)
    rows = np.sort(rng.choice(7000, 5000, replace=False))
    [texts_of] = Written().texts([("way", values, texts)])
    piece = (rows, *texts_of)
    assert piece[2] is not None  # (written once each)
    got = _assemble(7000, [piece]).to_pylist()
    want = [None] * 7000
    for row, text in zip(rows.tolist(), form(values).to_pylist(), strict=True):
        want[row] = text
    assert got == want
    assert "-0.0" in set(shortest(np.array([-0.0])).to_pylist())


@pytest.mark.parametrize("kept", [2000, 0], ids=["some", "none"])
@pytest.mark.parametrize(("texts", "form"), FORMS, ids=IDS)
def test_kept_from_call_to_call(texts, form, kept) -> None:
    """Values met before, new ones, few or many, past what is kept, and values that do
    not come again (the lookups left alone for a while): each as written alone. Told
    to keep none (the TUI's stream), it keeps none."""
    rng = np.random.default_rng(7)
    integral = texts is integer_texts
    written = Written(kept=kept)
    alike = pool(rng, integral)
    for size in [5000, 3000, 100, 4000, 300, 6000, 5000, 5000, 5000, 5000, 2000]:
        fresh = np.round(rng.normal(0, 1e6, size)) if integral else rng.normal(0, 50, size)
        for values in (rng.choice(alike, size), fresh,
                       np.concatenate([rng.choice(alike, size), fresh[: size // 3]])):
            [(strings, index)] = written.texts([(("way", 1), values, texts)])
            got = (strings if index is None else strings.take(index)).to_pylist()
            assert got == form(values).to_pylist()
    assert len(written.store) > 1 if kept else len(written.store) == 1  # ("" alone)


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


def test_values_that_never_come_again() -> None:
    """Lookups that find nothing rest ever longer, the kept numbers dropped before the
    longest rest, then kept anew: the strings stay those written alone throughout."""
    rng = np.random.default_rng(11)
    written = Written()
    alike = rng.normal(0, 50, 50)
    for call in range(160):
        values = rng.normal(0, 50, 300) if call < 130 else rng.choice(alike, 300)
        [(strings, index)] = written.texts([("way", values, shortest_texts)])
        got = (strings if index is None else strings.take(index)).to_pylist()
        assert got == [repr(v) for v in values.tolist()]


def test_ways_asked_together_share_one_store() -> None:
    """Ways asked for at once (one twice), kept past what fits: each value as written
    alone; a column of them, with rows of no value, as the pieces say, nulls marked."""
    rng = np.random.default_rng(13)
    written = Written(kept=3000)
    alike = rng.normal(0, 50, 400)
    three = partial(fixed_texts, precision=3)
    for size in [2000, 900, 3000, 600, 2500]:
        asked = [("shortest", rng.choice(alike, size), shortest_texts),
                 (3, np.concatenate([rng.choice(alike, size), rng.normal(0, 9, 300)]), three),
                 ("shortest", rng.normal(0, 50, size // 2), shortest_texts)]
        texts = written.texts(asked)
        rows = np.sort(rng.choice(3 * size, sum(len(v) for _, v, _ in asked), replace=False))
        n = int(rows[-1]) + 5
        pieces, want, start = [], [None] * n, 0
        for (_, values, form), (strings, index) in zip(asked, texts, strict=True):
            alone = form(values)
            assert _in_order((strings, index)).to_pylist() == _in_order(alone).to_pylist()
            mine = rows[start : start + len(values)]
            start += len(values)
            pieces.append((mine, strings, index))
            for row, text in zip(mine.tolist(), _in_order(alone).to_pylist(), strict=True):
                want[row] = text
        column = _assemble(n, pieces)
        column.validate(full=True)
        assert column.to_pylist() == want
        assert column.null_count == want.count(None)


def test_strings_appended_keep_what_was_given() -> None:
    """The store's strings (shark.tables.display._Strings): appended from arrays of
    either string type, sliced or not, past the room first made; a view given before
    stays as it was."""
    strings = _Strings(3000)
    want = [""]
    views = [(strings.array, list(want))]
    rng = np.random.default_rng(17)
    for size in [3, 0, 700, 1, 5000, 40]:
        texts = [str(v) * int(rng.integers(0, 4)) for v in rng.normal(0, 1e6, size + 6)]
        part = pa.array(texts, pa.string() if size % 2 else pa.large_string()).slice(3, size)
        array = strings.append(part)
        want += texts[3 : 3 + size]
        array.validate(full=True)
        assert array.to_pylist() == want
        views.append((array, list(want)))
    for view, was in views:
        assert view.to_pylist() == was
