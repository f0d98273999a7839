"""Typed tables of a capture: pandas DataFrames, Arrow tables, Parquet row groups.

:class:`Capture` (``shark.open(path)``) gives the tables of a capture file;
:class:`TableBuilder` builds them from records as they come (a live capture, a TUI);
:data:`SCHEMAS` documents every column (``print(SCHEMAS["searches"].describe())``).

Importing this package is cheap: the modules that need pandas and pyarrow load on first
use of what they define, so that every ``shark`` command does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import Any

from shark.tables.names import PER_MESSAGE, TABLES

__all__ = ["PER_MESSAGE", "SCHEMAS", "TABLES", "Capture", "TableBuilder"]

_LAZY = {"Capture": ".capture", "SCHEMAS": ".builder", "TableBuilder": ".builder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
