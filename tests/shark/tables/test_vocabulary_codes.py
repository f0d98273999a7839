"""``Vocabulary.codes`` names numbers as one name at a time would, whichever way it
takes (a lookup table for small numbers, a grouping for others), and only the rows
asked for: a number of a row left out neither gets a code nor takes one."""

from __future__ import annotations

import numpy as np

from shark.tables.chunk import Vocabulary


def _name(number: int) -> str:
    return f"N{number}"


def _one_at_a_time(numbers: np.ndarray, where: np.ndarray | None,
                   vocabulary: Vocabulary) -> list[int]:
    """The codes, names added as ``codes`` adds them: those met first in increasing
    order where the numbers asked for are all small, else in order of appearance."""
    chosen = np.ones(len(numbers), dtype=bool) if where is None else where
    asked = numbers[chosen].tolist()
    if asked and 0 <= min(asked) and max(asked) < 1 << 16:
        asked = sorted(asked)
    for n in asked:
        vocabulary.code(_name(n))
    return [vocabulary.code(_name(n)) if ok else -1
            for n, ok in zip(numbers.tolist(), chosen.tolist(), strict=True)]


def test_codes_as_one_at_a_time_rows_left_out_named_never() -> None:
    rng = np.random.default_rng(7)
    cases = [
        (rng.integers(0, 40, 1000), rng.random(1000) < 0.5),  # small numbers
        (rng.integers(0, 40, 1000).astype(np.int32), rng.random(1000) < 0.3),  # int32
        (np.array([5, 70000, 3, -4, 5]), np.array([True, False, True, False, True])),
        (np.array([5, 70000, 3]), np.array([True, True, False])),  # large: grouped
        (np.array([9, 2, 9]), None),
        (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)),
    ]
    mine, reference = Vocabulary(), Vocabulary()
    for numbers, where in cases:
        codes = mine.codes(numbers, _name, where)
        assert codes.dtype == np.int32
        assert codes.tolist() == _one_at_a_time(numbers, where, reference)
        assert mine.values == reference.values  # (the same names, in the same order)
