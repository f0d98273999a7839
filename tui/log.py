"""The message log's rows: positions in the store of message batches, read a page at a
time for the screen.

The log shows rows of :class:`shark.tables.store.BatchStore` (every message of a file,
the last N of a live capture) either all of them, or those a filter kept: an index of
their positions (:class:`Positions`), kept up to date as batches arrive, one numpy
array per batch. Either way the screen sees a :class:`LogRows`, a sequence that keeps
its length while more rows arrive (the log freezes on one when the user moves), and
whose items are :class:`LogRow` objects made only for the rows drawn, a page of
consecutive rows at once (one Arrow slice, not one lookup per cell), and kept for the
next redraws: a row never changes once stored.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shark.tables.store import BatchStore

__all__ = ["LOG_FIELDS", "LogRow", "LogRows", "Positions", "RowReader"]

#: Columns a log row reads (``time`` as nanoseconds).
LOG_FIELDS = (
    "frame", "time", "src", "dst", "transport", "circuit", "sender", "command", "pv", "sid",
    "subscription", "data_type", "data_count", "display", "value_text", "status", "severity",
    "alarm_status", "fields", "latency", "anomaly", "reason", "size", "request_frame",
    "epics_time",
)
#: Rows read at once for the screen, and pages kept: enough for a screenful of the
#: log and the last values of a pane's channels (each on a page of its own), not for
#: every page the log went through while it followed the tail (each row costs ~1 kB).
PAGE = 64
PAGES = 64


class LogRow:
    """One row of the messages table, for the screen: its ``position`` in the store, a
    field per column of :data:`LOG_FIELDS` (``time`` in nanoseconds since the Unix
    epoch), and whether it shows a problem."""

    __slots__ = ("position", "problem", *LOG_FIELDS)

    frame: int
    time: int
    src: str
    dst: str
    transport: str
    circuit: int | None
    sender: str | None
    command: str
    pv: str | None
    latency: float | None

    def __init__(self, position: int, problem: bool) -> None:
        self.position = position
        self.problem = problem

    @property
    def command_name(self) -> str:
        """The command's name (as :attr:`shark.extract.record.Record.command_name`)."""
        return self.command

    @property
    def seconds(self) -> float:
        """The capture time in Unix seconds."""
        return self.time / 1e9

    def __repr__(self) -> str:
        return f"<LogRow {self.position}: frame {self.frame} {self.command} {self.pv}>"


class Positions:
    """Store positions in increasing order (a filter's matches, the rows with
    problems), appended a batch's worth at a time. Like the store, it numbers its
    entries from the first ever appended (``end`` counts them all); :meth:`trim` lets
    go of those before a store position, and then ``start`` is the first held.

    The decoding thread appends and trims while the screen reads: each does so under
    the object's own lock, for microseconds."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        #: Entry number of each chunk's first.
        self._firsts: list[int] = []
        self._lock = threading.Lock()
        self.start = 0
        self.end = 0

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, positions: np.ndarray) -> None:
        if len(positions):
            with self._lock:
                self._chunks.append(positions.astype(np.int64, copy=False))
                self._firsts.append(self.end)
                self.end += len(positions)

    def get(self, number: int) -> int | None:
        """The store position of entry ``number``, None if it was let go."""
        with self._lock:
            if not self.start <= number < self.end:
                return None
            at = bisect.bisect_right(self._firsts, number) - 1
            return int(self._chunks[at][number - self._firsts[at]])

    def trim(self, first: int) -> None:
        """Let go of the positions before store position ``first``."""
        with self._lock:
            chunks = self._chunks
            drop = 0
            while drop < len(chunks) and chunks[drop][-1] < first:
                drop += 1
            if drop:
                self.start = self._firsts[drop - 1] + len(chunks[drop - 1])
                del chunks[:drop]
                del self._firsts[:drop]
            if chunks:
                cut = int(np.searchsorted(chunks[0], first))
                self.start = max(self.start, self._firsts[0] + cut)

    def _parts(self) -> list[tuple[int, np.ndarray]]:
        """(entry number of its first, positions) of each chunk held, its entries
        before ``start`` cut off."""
        with self._lock:
            start = self.start
            return [(max(first, start), chunk[max(0, start - first):])
                    for first, chunk in zip(self._firsts, self._chunks, strict=True)]

    def index_of(self, position: int) -> int | None:
        """The entry number holding store position ``position`` (None if it is not
        one of them)."""
        for first, chunk in self._parts():
            if len(chunk) and chunk[-1] >= position:
                at = int(np.searchsorted(chunk, position))
                return first + at if at < len(chunk) and chunk[at] == position else None
        return None

    def first_from(self, position: int) -> int | None:
        """The entry number of the first position at ``position`` or after (None if
        none)."""
        for first, chunk in self._parts():
            if len(chunk) and chunk[-1] >= position:
                return first + int(np.searchsorted(chunk, position))
        return None

    def all(self) -> Iterator[np.ndarray]:
        """The positions held, a chunk at a time."""
        for _first, chunk in self._parts():
            yield chunk


class RowReader:
    """Makes :class:`LogRow` objects from a store, a page at a time, and keeps the
    latest pages (rows never change once stored). ``problem(position)`` says whether a
    row shows a problem."""

    def __init__(self, store: BatchStore, problems: Positions) -> None:
        self.store = store
        self.problems = problems
        self._pages: OrderedDict[int, list[LogRow]] = OrderedDict()
        self._lock = threading.Lock()

    def row(self, position: int) -> LogRow | None:
        """The row at ``position``, None if it is not held."""
        page, at = divmod(position, PAGE)
        with self._lock:
            rows = self._pages.get(page)
            if rows is not None:
                self._pages.move_to_end(page)
        if rows is None or at >= len(rows):  # (not read, or rows came since)
            rows = self._read(page)
        return rows[at] if at < len(rows) else None

    def _read(self, page: int) -> list[LogRow | None]:
        first = page * PAGE
        store = self.store
        table = store.slice(first, first + PAGE, list(LOG_FIELDS))
        if table is None:
            return []
        start = max(first, store.start)
        columns: dict[str, list[Any]] = {}
        for name in LOG_FIELDS:
            column = table.column(name)
            if name == "time":
                column = column.cast(pa.int64())
            elif name == "epics_time":
                column = pc.cast(column, pa.int64())
            columns[name] = column.to_pylist()
        problems = {p for chunk in self.problems.all() for p in
                    chunk[(chunk >= start) & (chunk < start + table.num_rows)].tolist()}
        rows: list[LogRow | None] = [None] * (start - first)
        for offset in range(table.num_rows):
            position = start + offset
            row = LogRow(position, position in problems)
            for name in LOG_FIELDS:
                setattr(row, name, columns[name][offset])
            rows.append(row)
        with self._lock:  # (a page still filling is read again when a later row is asked)
            self._pages[page] = rows
            self._pages.move_to_end(page)
            if len(self._pages) > PAGES:
                self._pages.popitem(last=False)
        return rows

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


class LogRows(Sequence):
    """Rows ``first`` to ``last`` of the store (``index`` None) or of a filter's index,
    as :class:`LogRow` objects (None once let go), numbered from 0."""

    __slots__ = ("reader", "index", "first", "last")

    def __init__(self, reader: RowReader, index: Positions | None, first: int,
                 last: int) -> None:
        self.reader = reader
        self.index = index
        self.first = first
        self.last = last

    def __len__(self) -> int:
        return self.last - self.first

    def position(self, number: int) -> int | None:
        """The store position of row ``number`` of these."""
        if self.index is None:
            return self.first + number
        return self.index.get(self.first + number)

    def __getitem__(self, number: int) -> LogRow | None:  # type: ignore[override]
        if not 0 <= number < self.last - self.first:
            raise IndexError(number)
        position = self.position(number)
        return None if position is None else self.reader.row(position)

    def __iter__(self) -> Iterator[LogRow | None]:
        return (self[number] for number in range(len(self)))

    def number_at(self, position: int) -> int | None:
        """Which of these rows is the first at store position ``position`` or after,
        None if none."""
        if self.index is None:
            number = max(position, self.first) - self.first
        else:
            entry = self.index.first_from(position)
            number = None if entry is None else max(entry, self.first) - self.first
        return number if number is not None and number < len(self) else None

    def number_of(self, position: int) -> int | None:
        """Which of these rows is store position ``position``, None if none."""
        if self.index is None:
            number = position - self.first
        else:
            entry = self.index.index_of(position)
            number = None if entry is None else entry - self.first
        return number if number is not None and 0 <= number < len(self) else None
