"""Grouping rows by a key with a hash (pandas' factorize) rather than a sort."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["group"]


def group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by key, groups in order of first appearance: the group of each row,
    the distinct keys, and the first row of each group."""
    codes, distinct = pd.factorize(keys)
    if not len(codes):
        return codes, distinct, codes
    # Codes are handed out in order: a row is its group's first when it beats them all.
    first = np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]])
    return codes, distinct, first
