"""Marked rows of the log: what a person picked out to come back to, or to hand on.

A mark is a row's position in the store (:class:`shark.tables.store.BatchStore`),
which never changes, so marks survive filtering and a paused or following log alike.
``m`` toggles one, ``n`` / ``N`` go to the next and previous shown, and ``x`` exports the
marked rows (else the shown ones): their rows as Parquet, and their frames as a pcapng
slice (:func:`tui.export.export_slice`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .log import LogRow, LogRows, Positions, RowReader

__all__ = ["MARK_STYLE", "Marks"]

#: How a marked row shows in the log (over its own colour).
MARK_STYLE = "on #3a3a7a"
#: Put before a marked row's frame number.
MARKER = "●"


class Marks:
    """Store positions of the marked rows, sorted."""

    def __init__(self) -> None:
        self._positions: list[int] = []

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, position: object) -> bool:
        if not isinstance(position, int):
            return False
        at = bisect.bisect_left(self._positions, position)
        return at < len(self._positions) and self._positions[at] == position

    def toggle(self, position: int) -> bool:
        """Mark the row at ``position``, or unmark it; whether it is marked now."""
        positions = self._positions
        at = bisect.bisect_left(positions, position)
        if at < len(positions) and positions[at] == position:
            del positions[at]
            return False
        positions.insert(at, position)
        return True

    def clear(self) -> None:
        self._positions.clear()

    def positions(self) -> np.ndarray:
        return np.asarray(self._positions, dtype=np.int64)

    def rows(self, reader: RowReader) -> LogRows:
        """The marked rows, as the log's rows (for the export)."""
        index = Positions()
        index.append(self.positions())
        return LogRows(reader, index, index.start, index.end)

    def step(self, rows: LogRows, at: int | None, direction: int) -> int | None:
        """Which of ``rows`` is the first mark after (1) or before (-1) store position
        ``at`` (None: from the start or the end), among the marks ``rows`` shows."""
        positions = self._positions
        if direction > 0:
            start = 0 if at is None else bisect.bisect_right(positions, at)
            candidates: Sequence[int] = positions[start:]
        else:
            stop = len(positions) if at is None else bisect.bisect_left(positions, at)
            candidates = positions[:stop][::-1]
        for position in candidates:  # (marks are few: a person made each)
            number = rows.number_of(position)
            if number is not None:
                return number
        return None

    def style(self, base: Callable[[Any], str | None] | None
              ) -> Callable[[Any], str | None]:
        """The log's row style with marked rows on :data:`MARK_STYLE`."""

        def style(row: Any) -> str | None:
            own = base(row) if base is not None else None
            if isinstance(row, LogRow) and row.position in self:
                return f"{own} {MARK_STYLE}" if own else MARK_STYLE
            return own

        return style

    def cells(self, base: Callable[[Any], Sequence[Any]], width: int = 0
              ) -> Callable[[Any], Sequence[Any]]:
        """The log's cells with :data:`MARKER` at the left of a marked row's frame
        number (its column ``width`` cells wide, the number right-aligned: a marker that
        does not fit beside it is left out, never the number's digits)."""

        def cells(row: Any) -> Sequence[Any]:
            out = base(row)
            if isinstance(row, LogRow) and row.position in self and out:
                number = str(out[0])
                if not width:
                    out = [f"{MARKER} {number}", *out[1:]]
                elif len(number) < width:
                    out = [f"{MARKER}{number.rjust(width - 1)}", *out[1:]]
            return out

        return cells
