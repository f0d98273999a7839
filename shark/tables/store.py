"""A capture's message batches kept whole, or its latest rows, in bounded memory.

A viewer of a capture file must reach every message (scroll, jump to the first or the
last, filter all of them) without holding millions of Python objects: the rows stay
the Arrow batches the columnar pipeline made (:class:`shark.tables.stream.MessageStream`),
addressed by absolute position, 0 for the capture's first row. When the batches held
in memory pass a byte budget, the oldest are written to a temporary Arrow IPC file and
read back memory-mapped when asked for (zero-copy: the operating system pages them in
and out), so memory stays near the budget whatever the capture's length.

A live capture that may run for days keeps only its last ``keep`` rows instead: the
positions go on counting, and those of the rows let go read as None, so that a
position taken at one moment still means the same row, or nothing, later.

One thread appends while another reads: every change of the batch list and every
lookup happens under the store's own lock, held for microseconds; a batch, once
appended, never changes.
"""

from __future__ import annotations

import bisect
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

__all__ = ["DEFAULT_BUDGET", "BatchStore"]

#: Bytes of batches kept in memory before the oldest go to disk: little more than the
#: newest batch or two (those the screen shows while they come), since the rows on
#: disk read back memory-mapped as fast, and what is held here is resident memory.
DEFAULT_BUDGET = 8 << 20
#: Batches read back from disk kept at hand (the screen reads a few, many times).
_CACHED = 8


class _Entry:
    """One batch: its first row's position, its rows, and where it is (in memory,
    or ``length`` bytes at ``offset`` of the spill file)."""

    __slots__ = ("start", "rows", "nbytes", "batch", "offset", "length")

    def __init__(self, start: int, batch: pa.RecordBatch) -> None:
        self.start = start
        self.rows = batch.num_rows
        self.nbytes = batch.nbytes
        self.batch: pa.RecordBatch | None = batch
        self.offset = -1
        self.length = 0


class BatchStore:
    """Record batches (one schema's rows, in order) by absolute row position.

    ``budget``: bytes of batches held in memory before the oldest are spilled to a
    temporary file in ``directory`` (the system's by default); None never spills.
    ``keep``: only the last ``keep`` rows are kept (None: every row).
    """

    def __init__(self, budget: int | None = DEFAULT_BUDGET, keep: int | None = None,
                 directory: str | Path | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be positive: {keep}")
        self.budget = budget
        self.keep = keep
        self.directory = directory
        #: Position of the next row appended (= rows ever appended).
        self.end = 0
        #: Position of the first row still held.
        self.start = 0
        #: Bytes of the batches in memory, and of those written to disk.
        self.held_bytes = 0
        self.spilled_bytes = 0
        self._entries: list[_Entry] = []
        self._starts: list[int] = []
        self._lock = threading.RLock()
        self._path: Path | None = None
        self._file = None
        self._map: pa.MemoryMappedFile | None = None
        self._read: OrderedDict[int, pa.RecordBatch] = OrderedDict()
        self._spill_from = 0  # index of the first entry still in memory
        self._cleanup: weakref.finalize | None = None

    def __len__(self) -> int:
        """Rows held (``end - start``)."""
        return self.end - self.start

    @property
    def spilled(self) -> bool:
        """Whether any batch went to disk."""
        return self.spilled_bytes > 0

    # -- the writer's side -------------------------------------------------------------

    def append(self, batch: pa.RecordBatch) -> int:
        """Add ``batch``'s rows after those appended before; the position of its first.
        Empty batches add nothing."""
        with self._lock:
            start = self.end
            if not batch.num_rows:
                return start
            entry = _Entry(start, batch)
            self._entries.append(entry)
            self._starts.append(start)
            self.end += entry.rows
            self.held_bytes += entry.nbytes
            if self.keep is not None:
                self._trim(self.end - self.keep)
            if self.budget is not None and self.held_bytes > self.budget:
                self._spill()
            return start

    def _trim(self, first: int) -> None:
        """Let go of the rows before position ``first``: whole batches only leave
        memory; the first one held may start before ``start``."""
        if first <= self.start:
            return
        self.start = first
        entries = self._entries
        drop = 0
        while drop < len(entries) and entries[drop].start + entries[drop].rows <= first:
            if entries[drop].batch is not None:
                self.held_bytes -= entries[drop].nbytes
            drop += 1
        if drop:
            del entries[:drop]
            del self._starts[:drop]
            self._spill_from = max(0, self._spill_from - drop)
            self._read.clear()

    def _spill(self) -> None:
        """Write the oldest batches in memory to the spill file until half the budget
        is left (the newest batch stays: it is the one the screen shows)."""
        target = (self.budget or 0) // 2
        entries = self._entries
        if self._file is None:
            folder = Path(tempfile.mkdtemp(prefix="shark-store-", dir=self.directory))
            self._path = folder / "messages.arrows"
            self._file = pa.OSFile(str(self._path), "wb")
            self._cleanup = weakref.finalize(self, _remove, self._file, folder)
        out = self._file
        index = self._spill_from
        while self.held_bytes > target and index < len(entries) - 1:
            entry = entries[index]
            index += 1
            batch = entry.batch
            if batch is None:
                continue
            offset = out.tell()
            with pa.ipc.new_stream(out, batch.schema) as writer:  # (straight to the file)
                writer.write_batch(batch)
            out.flush()
            entry.offset, entry.length = offset, out.tell() - offset
            self.spilled_bytes += entry.length
            self.held_bytes -= entry.nbytes
            entry.batch = None  # (after its place on disk is known: readers look there)
        self._spill_from = index

    def close(self) -> None:
        """Remove the spill file (also done when the store is collected)."""
        with self._lock:
            self._map = None
            self._read.clear()
            if self._cleanup is not None:
                self._cleanup()

    # -- the reader's side -------------------------------------------------------------

    def locate(self, position: int) -> tuple[pa.RecordBatch, int] | None:
        """(the batch holding row ``position``, the row's index in it), or None if the
        row was let go or is not there yet."""
        with self._lock:
            if not self.start <= position < self.end:
                return None
            at = bisect.bisect_right(self._starts, position) - 1
            entry = self._entries[at]
            return self._batch(entry), position - entry.start

    def _batch(self, entry: _Entry, keep: bool = True) -> pa.RecordBatch:
        """An entry's batch, read back from disk if it went there: through the store's
        own map and kept at hand (``keep``: the screen's reads, a few rows many times),
        or through a map of its own that goes with the batch (a pass over every row:
        the pages it touched leave this process's memory with it)."""
        batch = entry.batch
        if batch is not None:
            return batch
        if not keep:
            return _read(pa.memory_map(str(self._path), "r"), entry)
        cached = self._read.get(entry.start)
        if cached is not None:
            self._read.move_to_end(entry.start)
            return cached
        if self._map is None or entry.offset + entry.length > self._map.size():
            self._map = pa.memory_map(str(self._path), "r")
        batch = _read(self._map, entry)
        self._read[entry.start] = batch
        if len(self._read) > _CACHED:
            self._read.popitem(last=False)
        return batch

    def batches(self, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(position of its first row, batch) of the batches holding rows ``start`` to
        ``stop`` (default: the end as it is now), in order; the first and last are cut
        to those rows."""
        with self._lock:
            stop = self.end if stop is None else min(stop, self.end)
            start = max(start, self.start)
            if start >= stop:
                return
            first = bisect.bisect_right(self._starts, start) - 1
            entries = self._entries[first:]
        for entry in entries:
            if entry.start >= stop:
                break
            with self._lock:
                batch = self._batch(entry, keep=False)
            lo = max(start, entry.start) - entry.start
            hi = min(stop, entry.start + entry.rows) - entry.start
            if lo or hi < entry.rows:
                batch = batch.slice(lo, hi - lo)
            yield entry.start + lo, batch

    def slice(self, start: int, stop: int, columns: list[str] | None = None
              ) -> pa.Table | None:
        """Rows ``start`` to ``stop`` held (those let go are left out), as a table of
        ``columns`` (default all); None when no row of them is held."""
        pieces = [batch if columns is None else batch.select(columns)
                  for _position, batch in self.batches(start, stop)]
        return pa.Table.from_batches(pieces) if pieces else None


def _read(mapped: pa.MemoryMappedFile, entry: _Entry) -> pa.RecordBatch:
    """An entry's batch from the map of the spill file, zero-copy: its columns are views
    of the mapped pages (``read_at`` would copy the batch's bytes into a Python bytes
    object: a spilled batch read for one row cost its whole size in memory). The map's
    position moves: callers hold the store's lock, or a map of their own."""
    mapped.seek(entry.offset)
    return pa.ipc.open_stream(mapped.read_buffer(entry.length)).read_next_batch()


def _remove(file: object, folder: Path) -> None:
    try:
        file.close()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
